package host

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

// The test binary doubles as a sink client of BenchmarkFanoutSink (a
// separate process, so that the server's CPU is measured alone): sinkEnv
// names the server endpoint, sinkKindEnv the client ("zmtp", the default:
// testutil.Sink over a hand-written ZMTP connection; "zmq4": a FileMQ
// client on the project's transport, zmq4's receive path and all).
const (
	sinkEnv     = "FMQ_SINK"
	sinkKindEnv = "FMQ_SINK_KIND"
	sinkWindow  = 16 << 20
)

// sinkMain runs one sink: it opens a peering, prints "ready", waits for a
// line on stdin, receives the tree, and prints "<bytes> <files> <its own
// CPU ns since the go>".
func sinkMain(ep string) int {
	var cpu0 time.Duration
	ready := func() {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		cpu0, _ = cpuSelfChildren()
	}
	var res testutil.SinkResult
	var err error
	if os.Getenv(sinkKindEnv) == "zmq4" {
		res, err = zmq4Sink(ep, ready)
	} else {
		var z *testutil.ZMTPDealer
		if z, err = testutil.DialZMTP(ep, ""); err == nil {
			res, err = testutil.Sink(z, "/", sinkWindow, ready)
			z.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cpu1, _ := cpuSelfChildren()
	fmt.Println(res.Bytes, res.Files, (cpu1 - cpu0).Nanoseconds())
	return 0
}

// zmq4Sink is a FileMQ client on transport.Dealer that reads and discards:
// OHAI, ICANHAZ "/" with RESYNC, SYNCED and INLINE-EOF, a credit window
// refilled as chunks arrive, until the synced marker.
func zmq4Sink(ep string, ready func()) (testutil.SinkResult, error) {
	var res testutil.SinkResult
	d, err := transport.Dial(ep, transport.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	defer d.Close()
	send := func(m interface{ Append([]byte) ([]byte, error) }) error {
		b, err := m.Append(nil)
		if err == nil {
			err = d.Send(b)
		}
		return err
	}
	if err := send(filemq.NewOhai()); err != nil {
		return res, err
	}
	if m, ok := <-d.Recv(); !ok || len(m.Body) < 3 || m.Body[2] != filemq.IDOhaiOk {
		return res, fmt.Errorf("sink: no OHAI-OK")
	}
	ready()
	if err := send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1"}}); err != nil {
		return res, err
	}
	if err := send(&filemq.Nom{Credit: sinkWindow}); err != nil {
		return res, err
	}
	var owed int64
	var msg filemq.Cheezburger
	for m := range d.Recv() {
		if len(m.Body) < 3 || m.Body[2] != filemq.IDCheezburger {
			continue
		}
		if err := msg.Decode(m.Body, nil); err != nil {
			return res, err
		}
		if msg.Operation == 3 {
			return res, nil
		}
		res.Bytes += int64(len(msg.Chunk))
		if msg.EOF == 1 {
			res.Files++
		}
		if owed += int64(len(msg.Chunk)); owed >= sinkWindow/4 {
			if err := send(&filemq.Nom{Credit: uint64(owed)}); err != nil {
				return res, err
			}
			owed = 0
		}
	}
	return res, fmt.Errorf("sink: connection lost")
}

func cpuSelfChildren() (self, children time.Duration) {
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(s.Utime) + tv(s.Stime), tv(c.Utime) + tv(c.Stime)
}

// machineIdle returns the idle time of all CPUs so far (/proc/stat: idle
// and iowait), false where it cannot be read.
func machineIdle() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, false
	}
	var idle, wait int64
	if _, err := fmt.Sscan(f[4]+" "+f[5], &idle, &wait); err != nil {
		return 0, false
	}
	return time.Duration(idle+wait) * time.Second / 100, true // USER_HZ
}

// sinkProc is one running sink process.
type sinkProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startSink(b *testing.B, ep, kind string) *sinkProc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sinkEnv+"="+ep, sinkKindEnv+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &sinkProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	if line, err := s.out.ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("sink did not get ready: %q %v", line, err)
	}
	return s
}

// BenchmarkFanoutSink serves a 128 MiB tree (4 large files, 500 small
// ones) to 1 and to 8 sink clients at once: separate processes that read
// and discard, either the hand-written ZMTP sink (sink=zmtp: it costs
// little, so the server is what is measured) or a client on the project's
// transport (sink=zmq4). The sinks connect and open their peering first;
// the clock and the server's CPU count from the moment all of them
// subscribe to the moment the last one has the whole tree (each checks
// sequence and offsets and reports the bytes and files it received,
// which must be the tree's). Metrics: the aggregate rate (MiB/s), the
// server's CPU seconds per GiB delivered, its utilisation (CPU seconds
// per wall second: 2 means both cores of a 2-core machine), the sinks'
// own CPU seconds per GiB, the machine's idle cores during the run
// (Linux: when it is near 0, the machine, shared with the sinks and
// whatever else runs, was the limit, not the server), and the server's
// share of the CPU that everything else left it (its CPU over its CPU
// plus the idle time), and its utilisation while all the sinks were
// still receiving (up to the first one's end: in the run's tail, fewer
// and fewer sinks cannot load the server as much). On a machine with more
// than one core, the 8-sink run is repeated with the server confined to
// one core (GOMAXPROCS 1, the sessions then taking turns on it), the
// same-run baseline for what running sessions in parallel adds.
func BenchmarkFanoutSink(b *testing.B) {
	pub := b.TempDir()
	var total, files int64
	put := func(name string, n int) {
		data := make([]byte, n)
		rand.Read(data)
		p := filepath.Join(pub, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
		total += int64(n)
		files++
	}
	for i := 0; i < 4; i++ {
		put(fmt.Sprintf("big%d.bin", i), 24<<20)
	}
	for i := 0; i < 500; i++ {
		put(fmt.Sprintf("small/%02d/f%03d.bin", i%20, i), 64<<10)
	}
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	type run struct {
		kind  string
		n     int
		procs int // the server's GOMAXPROCS (0: as it is)
	}
	runs := []run{{"zmtp", 1, 0}, {"zmtp", 8, 0}, {"zmq4", 1, 0}, {"zmq4", 8, 0}}
	if runtime.GOMAXPROCS(0) > 1 {
		// today's server confined to one core, beside it: what the
		// parallel sessions add on this machine
		runs = append(runs, run{"zmtp", 8, 1})
	}
	for _, r := range runs {
		kind, n := r.kind, r.n
		name := fmt.Sprintf("sink=%s/clients=%d", kind, n)
		if r.procs > 0 {
			name += fmt.Sprintf("/server-procs=%d", r.procs)
		}
		b.Run(name, func(b *testing.B) {
			if r.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(r.procs))
			}
			var wall, cpu, sinkCPU, idle, allWall, allCPU time.Duration
			idleOK := true
			var bytesOut int64
			for i := 0; i < b.N; i++ {
				sinks := make([]*sinkProc, n)
				for k := range sinks {
					sinks[k] = startSink(b, srv.Endpoint(), kind)
				}
				// the measured span, as a region of a go test -trace
				region := trace.StartRegion(context.Background(), "fanout")
				self0, _ := cpuSelfChildren()
				idle0, ok0 := machineIdle()
				t0 := time.Now()
				for _, s := range sinks {
					io.WriteString(s.stdin, "go\n")
				}
				// Each sink's line as it finishes; the first one ends
				// the span in which all of them were loading the server.
				type done struct {
					k    int
					line string
				}
				lines := make(chan done, n)
				for k, s := range sinks {
					go func() {
						line, _ := s.out.ReadString('\n')
						lines <- done{k, line}
					}()
				}
				for i := range sinks {
					d := <-lines
					if i == 0 {
						allWall += time.Since(t0)
						self, _ := cpuSelfChildren()
						allCPU += self - self0
					}
					k, line, s := d.k, d.line, sinks[d.k]
					if err := s.cmd.Wait(); err != nil {
						b.Fatalf("sink %d: %v", k, err)
					}
					var got, gotFiles, ns int64
					if _, err := fmt.Sscan(strings.TrimSpace(line), &got, &gotFiles, &ns); err != nil || got != total || gotFiles != files {
						b.Fatalf("sink %d received %q (bytes files cpu-ns), want %d bytes, %d files", k, line, total, files)
					}
					bytesOut += got
					sinkCPU += time.Duration(ns)
				}
				wall += time.Since(t0)
				region.End()
				idle1, ok1 := machineIdle()
				idle += idle1 - idle0
				idleOK = idleOK && ok0 && ok1
				self1, _ := cpuSelfChildren()
				cpu += self1 - self0 // the server (and this benchmark's idle loop)
			}
			gib := float64(bytesOut) / (1 << 30)
			b.ReportMetric(cpu.Seconds()/gib, "server-cpu-s/GiB")
			b.ReportMetric(cpu.Seconds()/wall.Seconds(), "server-cores")
			if n > 1 {
				// while every sink was still receiving (up to the
				// first one's end): the server loaded by all of them
				b.ReportMetric(allCPU.Seconds()/allWall.Seconds(), "server-cores-all-loading")
			}
			b.ReportMetric(sinkCPU.Seconds()/gib, "sink-cpu-s/GiB")
			b.ReportMetric(float64(bytesOut)/(1<<20)/wall.Seconds(), "MiB/s")
			if idleOK {
				// what nobody used: near 0 means the machine was the limit
				b.ReportMetric(idle.Seconds()/wall.Seconds(), "idle-cores")
				// the share the server took of the CPU that the
				// sinks and everything else left: near 1, the
				// server was not what held the rate back
				b.ReportMetric(cpu.Seconds()/(cpu+idle).Seconds(), "server-share-of-free")
			}
		})
	}
}
