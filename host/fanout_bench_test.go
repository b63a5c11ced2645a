package host

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

// sinkEnv names the server endpoint when the test binary runs as a sink.
const sinkEnv = "FMQ_SINK"

// runSink is a FileMQ client that reads and discards: OHAI, ICANHAZ "/"
// with RESYNC and SYNCED, a credit window refilled as chunks arrive, until
// the synced marker. It prints the content bytes received. Costing almost
// nothing, it leaves the measured CPU to the server.
func runSink(ep string) int {
	d, err := transport.Dial(ep, transport.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Close()
	send := func(m interface{ Append([]byte) ([]byte, error) }) bool {
		b, err := m.Append(nil)
		return err == nil && d.Send(b) == nil
	}
	const window = 16 << 20
	if !send(filemq.NewOhai()) ||
		!send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1"}}) ||
		!send(&filemq.Nom{Credit: window}) {
		return 1
	}
	var got, owed int64
	var msg filemq.Cheezburger
	for m := range d.Recv() {
		if len(m.Body) < 3 || m.Body[2] != filemq.IDCheezburger {
			continue
		}
		if err := msg.Decode(m.Body, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if msg.Operation == 3 {
			fmt.Println(got)
			return 0
		}
		got += int64(len(msg.Chunk))
		if owed += int64(len(msg.Chunk)); owed >= 1<<20 {
			if !send(&filemq.Nom{Credit: uint64(owed)}) {
				return 1
			}
			owed = 0
		}
	}
	fmt.Fprintln(os.Stderr, "sink: connection lost")
	return 1
}

func cpuSelfChildren() (self, children time.Duration) {
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(s.Utime) + tv(s.Stime), tv(c.Utime) + tv(c.Stime)
}

// BenchmarkFanoutSink serves a 128 MiB tree (4 large files, 500 small
// ones) to 1 and to 8 sink clients at once (separate processes that read
// and discard) and reports the server's CPU seconds per GiB delivered, its
// utilisation (CPU seconds per wall second: above 1 means it uses more
// than one core) and the aggregate rate.
func BenchmarkFanoutSink(b *testing.B) {
	pub := b.TempDir()
	var total int64
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
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			var wall, cpu time.Duration
			var bytesOut int64
			for i := 0; i < b.N; i++ {
				cmds := make([]*exec.Cmd, n)
				outs := make([]*bytes.Buffer, n)
				self0, _ := cpuSelfChildren()
				t0 := time.Now()
				for k := range cmds {
					outs[k] = &bytes.Buffer{}
					cmds[k] = exec.Command(os.Args[0], "-test.run=^$")
					cmds[k].Env = append(os.Environ(), sinkEnv+"="+srv.Endpoint())
					cmds[k].Stdout, cmds[k].Stderr = outs[k], os.Stderr
					if err := cmds[k].Start(); err != nil {
						b.Fatal(err)
					}
				}
				for k, c := range cmds {
					if err := c.Wait(); err != nil {
						b.Fatalf("sink %d: %v", k, err)
					}
					got, err := strconv.ParseInt(string(bytes.TrimSpace(outs[k].Bytes())), 10, 64)
					if err != nil || got != total {
						b.Fatalf("sink %d received %q bytes, want %d", k, outs[k].String(), total)
					}
					bytesOut += got
				}
				wall += time.Since(t0)
				self1, _ := cpuSelfChildren()
				cpu += self1 - self0 // the server (and this benchmark's idle loop)
			}
			gib := float64(bytesOut) / (1 << 30)
			b.ReportMetric(cpu.Seconds()/gib, "server-cpu-s/GiB")
			b.ReportMetric(cpu.Seconds()/wall.Seconds(), "server-util")
			b.ReportMetric(float64(bytesOut)/(1<<20)/wall.Seconds(), "MiB/s")
		})
	}
}
