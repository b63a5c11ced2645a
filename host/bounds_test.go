package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	rtrace "runtime/trace"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

func startTestServer(t *testing.T, pub string, settings map[string]string) *Server {
	t.Helper()
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Settings: settings, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// bigFile publishes a file of size bytes (sparse: quick to make, read as zeros).
func bigFile(t *testing.T, dir, name string, size int64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, name), old, old)
}

// probe measures OHAI -> OHAI-OK and HUGZ -> HUGZ-OK round trips of a new
// client, at least min HUGZ and then until busy returns false (at most
// 2000). It returns the round trips, sorted, and how many completed while
// busy was still true.
func probe(t *testing.T, ep string, min int, busy func() bool) ([]time.Duration, int) {
	t.Helper()
	p := dialRaw(t, ep, "")
	var rtts []time.Duration
	during := 0
	rt := func(send func(), want string) {
		t0 := time.Now()
		reg := rtrace.StartRegion(context.Background(), "rtt") // for go test -trace

		send()
		p.expect(want)
		reg.End()
		rtts = append(rtts, time.Since(t0))
		if busy() {
			during++
		}
	}
	rt(func() { p.send(filemq.NewOhai()) }, "OHAI-OK")
	for i := 0; i < 2000 && (i < min || busy()); i++ {
		rt(func() { p.send(&filemq.Hugz{}) }, "HUGZ-OK")
	}
	p.d.Close()
	sort.Slice(rtts, func(a, b int) bool { return rtts[a] < rtts[b] })
	return rtts, during
}

// A greedy client (a window far beyond the tree) and clients whose cache
// claims a prefix of a large file (hashed off the dispatch path) do not
// delay another client's OHAI-OK and HUGZ-OK.
func TestGreedyAndPrefixClaimsDoNotStallOthers(t *testing.T) {
	pub := t.TempDir()
	const size = 96 << 20 // sparse: long enough a transfer for the probes, with the fast no-disk sink
	bigFile(t, pub, "big1.bin", size)
	bigFile(t, pub, "big2.bin", size)
	srv := startTestServer(t, pub, nil)
	defer srv.Close()
	ep := srv.Endpoint()
	base, _ := probe(t, ep, 100, func() bool { return false })

	// The greedy client: a 1 GiB window, reads and discards everything. It
	// is the no-disk sink (testutil.Sink: one reused buffer, chunks dropped
	// in the kernel), so that what the round trips measure is the server,
	// not this process collecting the garbage of a client receiving 96 MiB.
	z, err := testutil.DialZMTP(ep, "")
	if err != nil {
		t.Fatal(err)
	}
	greedyDone := make(chan struct{})
	var greedyRes testutil.SinkResult
	var greedyErr error
	go func() {
		defer close(greedyDone)
		greedyRes, greedyErr = testutil.Sink(z, "/", 1<<30, nil)
	}()
	// Clients claiming a prefix of both files: the server hashes ~2 x 96 MiB per ICANHAZ.
	claim := map[string]string{
		"/big1.bin": strings.Repeat("0", 40) + fmt.Sprintf("@%d", size-1),
		"/big2.bin": strings.Repeat("0", 40) + fmt.Sprintf("@%d", size-1),
	}
	var claimers []*rawPeer
	for i := 0; i < 3; i++ {
		c := dialRaw(t, ep, "")
		c.send(filemq.NewOhai())
		c.expect("OHAI-OK")
		for j := 0; j < 3; j++ {
			c.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}, Cache: claim})
		}
		claimers = append(claimers, c)
	}
	transferring := func() bool {
		select {
		case <-greedyDone:
			return false
		default:
			return true
		}
	}
	m0 := readSched()
	load, during := probe(t, ep, 100, transferring)
	t.Logf("during the load, this process's %s", schedDiff(m0, readSched()))
	<-greedyDone
	z.Close()
	if greedyErr != nil || greedyRes.Bytes != 2*size {
		t.Errorf("greedy client: %d bytes of %d, err %v", greedyRes.Bytes, 2*size, greedyErr)
	}
	for _, c := range claimers {
		c.d.Close()
	}
	pc := func(r []time.Duration, p int) time.Duration { return r[(len(r)-1)*p/100] }
	t.Logf("OHAI-OK/HUGZ-OK round trip: idle server median %v p90 %v worst %v; under load (%d probes, %d during the greedy transfer) median %v p90 %v p99 %v worst %v; greedy client got %d MiB",
		pc(base, 50), pc(base, 90), pc(base, 100), len(load), during, pc(load, 50), pc(load, 90), pc(load, 99), pc(load, 100), greedyRes.Bytes>>20)
	// Before the concurrent runtime, a round trip made during the transfer
	// waited for all of it (0.6-1 s), so hardly any completed while it
	// lasted. Now they go on throughout: 100 ms, plus what the idle server
	// shows this machine adds, for the median, the 90th and the 99th
	// percentile. The worst case is logged, not judged: on a shared 2-core
	// machine (load average 12-20 while this was tuned) the process is
	// descheduled now and then, whatever it runs (an idle server's worst
	// round trip reached 0.76 s once). A trace of the slowest round trips
	// (go test -trace; each is a region "rtt") showed, besides that: the
	// garbage of a greedy client in this process (96 MiB of zmq4 frames,
	// 16-19 collections a run; the sink makes it 4-7), the server's copies
	// of queued chunks (transport writeQueue), and hashing goroutines
	// filling both processors.
	// Stalled, a probe made during the transfer waited for all of it (0 or
	// 1 completed); 10 is far above that and below what a loaded machine
	// fits in the transfer (13 in 96 MiB at p90 8 ms, with the sink).
	if during < 10 {
		t.Errorf("only %d round trips completed while the greedy transfer ran", during)
	}
	limit := raceSlowdown*100*time.Millisecond + 4*pc(base, 100)
	for _, p := range []int{50, 90, 99} {
		if v := pc(load, p); v > limit {
			t.Errorf("round trip percentile %d under load is %v, over %v", p, v, limit)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// 169 KiB of repeated ICANHAZ over a published tree keeps the server's
// heap bounded: superseded jobs do not accumulate, resyncs of one
// subscription collapse, the decode scratch does not keep a large frame.
func TestRepeatedIcanhazBoundedHeap(t *testing.T) {
	pub := t.TempDir()
	for i := 0; i < 1000; i++ {
		writeFile(t, filepath.Join(pub, fmt.Sprintf("d%02d/f%04d.txt", i%50, i)), []byte("x"))
	}
	srv := startTestServer(t, pub, nil)
	defer srv.Close()
	c := dialRaw(t, srv.Endpoint(), "")
	c.send(filemq.NewOhai())
	c.expect("OHAI-OK")
	before := heapInUse()
	frame := mustAppend(t, &filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}})
	sent := 0
	for batch := 0; batch < 30; batch++ {
		for i := 0; i < 200; i++ {
			if err := c.d.Send(frame); err != nil {
				t.Fatal(err)
			}
			sent += len(frame)
		}
		c.send(&filemq.Hugz{})
		for m := c.recv(10 * time.Second); ; m = c.recv(10 * time.Second) {
			if m == nil {
				t.Fatalf("session ended after %d bytes of ICANHAZ", sent)
			}
			if m.Info().Name == "HUGZ-OK" {
				break
			}
		}
	}
	// one large ICANHAZ (a 12 MB cache) must not stay pinned either
	big := map[string]string{}
	for i := 0; len(big) < 150_000; i++ {
		big[fmt.Sprintf("/nothere/%06d/%s", i, strings.Repeat("p", 40))] = ""
	}
	c.send(&filemq.Icanhaz{Path: "/nothere", Options: map[string]string{"RESYNC": "1"}, Cache: big})
	c.send(&filemq.Hugz{})
	for m := c.recv(30 * time.Second); m == nil || m.Info().Name != "HUGZ-OK"; m = c.recv(30 * time.Second) {
		if m == nil {
			t.Fatal("session ended")
		}
	}
	big = nil
	// let the resyncs finish, then measure
	deadline := time.Now().Add(30 * time.Second)
	var after uint64
	for {
		after = heapInUse()
		if after < before+16<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d KiB of ICANHAZ and one 12 MB ICANHAZ: heap in use %d -> %d KiB", sent>>10, before>>10, after>>10)
	if after > before+16<<20 {
		t.Errorf("heap grew by %d MiB", (after-before)>>20)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// Files are opened only when there is credit to send from them, and
// closing the server closes every session's file.
func TestNoDescriptorLeftOpen(t *testing.T) {
	pub := t.TempDir()
	for i := 0; i < 10; i++ {
		bigFile(t, pub, fmt.Sprintf("f%d.bin", i), 1<<20)
	}
	fdBase := openFDs(t)
	srv := startTestServer(t, pub, nil)
	var peers []*rawPeer
	for i := 0; i < 10; i++ {
		p := dialRaw(t, srv.Endpoint(), "")
		p.send(filemq.NewOhai())
		p.expect("OHAI-OK")
		p.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}})
		p.expect("ICANHAZ-OK")
		peers = append(peers, p)
	}
	withServer := openFDs(t)
	// credit for part of a file: each session holds one file open, waiting for more
	for _, p := range peers {
		p.send(&filemq.Nom{Credit: 1000})
		p.expect("CHEEZBURGER")
	}
	if n := openFDs(t); n != withServer+10 {
		t.Logf("descriptors: %d with the sessions, %d with credit given (want +10)", withServer, n)
	}
	srv.Close()
	for _, p := range peers {
		p.d.Close()
	}
	waitUntil(t, func() bool { return openFDs(t) <= fdBase }, func() string {
		return fmt.Sprintf("%d descriptors open after Close, %d before the server", openFDs(t), fdBase)
	})
}

// MaxSessions caps established sessions: a client beyond it is cut at its
// first frame; the others go on, and a place freed is taken again.
func TestMaxSessions(t *testing.T) {
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: publishOne(t), Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		MaxSessions: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, b, c := dialRaw(t, srv.Endpoint(), ""), dialRaw(t, srv.Endpoint(), ""), dialRaw(t, srv.Endpoint(), "")
	a.send(filemq.NewOhai())
	a.expect("OHAI-OK")
	b.send(filemq.NewOhai())
	b.expect("OHAI-OK")
	c.send(filemq.NewOhai())
	if m := c.recv(10 * time.Second); m != nil {
		t.Fatalf("a third session was served (%s) with max 2", m.Info().Name)
	}
	select {
	case <-c.d.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the refused client was not disconnected")
	}
	if st := srv.Engine().Stats(); st.Refused != 1 || st.Instances != 2 {
		t.Errorf("stats %+v", st)
	}
	a.send(&filemq.Hugz{})
	a.expect("HUGZ-OK")
	b.send(&filemq.Kthxbai{})
	waitUntil(t, func() bool { return srv.Engine().Stats().Instances == 1 }, func() string { return "the departed session stayed" })
	d := dialRaw(t, srv.Endpoint(), "")
	d.send(filemq.NewOhai())
	d.expect("OHAI-OK")
}

// A session whose mailbox overflows (a peer that floods without reading,
// its session stuck sending to it) gets an RTFM before it ends, not a
// silent drop; the other sessions' round trips go on meanwhile.
func TestFloodedSessionGetsRTFM(t *testing.T) {
	pub := t.TempDir()
	bigFile(t, pub, "big.bin", 256<<20)
	// Without a write queue the session's send waits for the peer to read:
	// it cannot take its input while the peer does not read.
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Transport: transport.Options{WriteQueue: -1, WriteTimeout: time.Minute}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ep := srv.Endpoint()
	flood := dialRaw(t, ep, "")
	flood.send(filemq.NewOhai())
	flood.expect("OHAI-OK")
	flood.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}})
	flood.expect("ICANHAZ-OK")
	flood.send(&filemq.Nom{Credit: 1 << 30})
	hugz := mustAppend(t, &filemq.Hugz{})
	sent := 0
	for srv.Engine().Stats().Overflows == 0 {
		if sent >= 1_000_000 {
			t.Fatalf("no overflow after %d HUGZ", sent)
		}
		if err := flood.d.Send(hugz); err != nil {
			t.Fatalf("flooding peer cut after %d HUGZ: %v", sent, err)
		}
		sent++
	}
	// The flooder's session is stuck; another client is served as usual.
	rtts, _ := probe(t, ep, 50, func() bool { return false })
	pc := func(p int) time.Duration { return rtts[(len(rtts)-1)*p/100] }
	t.Logf("flooded after %d HUGZ; another client's round trips meanwhile: median %v p90 %v worst %v", sent, pc(50), pc(90), pc(100))
	if limit := raceSlowdown * 100 * time.Millisecond; pc(90) > limit {
		t.Errorf("another client's round trips: p90 %v, over %v", pc(90), limit)
	}
	// The flooder reads at last: what its session sent (chunks, the
	// answers to the HUGZ it took before it was stuck), then the RTFM.
	chunks, answered := 0, 0
	for {
		m := flood.recv(30 * time.Second)
		if m == nil {
			t.Fatalf("connection ended (or silent) after %d chunks and %d HUGZ-OK, without RTFM", chunks, answered)
		}
		switch m.Info().Name {
		case "CHEEZBURGER":
			chunks++
			continue
		case "HUGZ-OK":
			answered++
			continue
		}
		if r, ok := m.(*filemq.Rtfm); ok {
			if !strings.Contains(r.Reason, "too much input") {
				t.Errorf("RTFM reason %q", r.Reason)
			}
			break
		}
		t.Fatalf("got %s after %d chunks, want RTFM", m.Info().Name, chunks)
	}
	t.Logf("the flooder read %d chunks and %d HUGZ-OK, then the RTFM", chunks, answered)
	if answered >= sent {
		t.Errorf("all %d HUGZ answered: no overflow", sent)
	}
	if st := srv.Engine().Stats(); st.Overflows != 1 {
		t.Errorf("%d overflows, want 1", st.Overflows)
	}
	waitUntil(t, func() bool { return srv.Engine().Stats().Instances == 0 }, func() string { return fmt.Sprintf("sessions left: %v", srv.Engine().Peers()) })
}

// readSched samples the runtime's scheduling latencies (how long
// goroutines waited, runnable, for a processor) and stop-the-world pauses.
func readSched() []metrics.Sample {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	return s
}

// schedDiff words the histograms' growth from a to b: count, p99, max.
func schedDiff(a, b []metrics.Sample) string {
	var out []string
	for i := range a {
		ha, hb := a[i].Value.Float64Histogram(), b[i].Value.Float64Histogram()
		var tot uint64
		for j := range hb.Counts {
			tot += hb.Counts[j] - ha.Counts[j]
		}
		q := func(p float64) time.Duration {
			var c uint64
			for j := range hb.Counts {
				if c += hb.Counts[j] - ha.Counts[j]; c > 0 && float64(c) >= p*float64(tot) {
					return time.Duration(min(hb.Buckets[j+1], 1e3) * 1e9)
				}
			}
			return 0
		}
		out = append(out, fmt.Sprintf("%s: %d, p99 %v, max %v", a[i].Name, tot, q(0.99), q(1)))
	}
	return strings.Join(out, "; ")
}
