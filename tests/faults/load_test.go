package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/host"
)

// TestHundredClients: 100 in-process clients sync the same tree (50 files,
// about 10 MiB: enough for a thousand transfers a second under -race, small
// enough to keep the package fast) from one server at once. All must finish
// with identical trees, and no goroutine may be left behind once the
// clients have left (the server keeps running).
//
// Memory: each client allows the server at most one credit window of
// content it has not consumed yet, so what may legitimately be in flight,
// server queues and client buffers together (both ends live in this
// process), is clients x window; 64 MiB covers the tree's metadata, the
// per-connection buffers and the runtime: the budget, 164 MiB. A server
// that read whole files per client would need clients x tree = 1 GiB. The
// live heap is sampled after a forced GC every 250ms; on a loaded machine
// (and under -race) the 100 clients keep allocating while that GC marks,
// and what they allocate meanwhile counts as live (measured: 122 MiB
// alone, 178 MiB beside another test run). So the live heap must
// stay under twice the budget, still a third of what the whole-file
// server needs; the heap in use between collections (up to as much
// garbage again, GOGC=100) under twice that.
func TestHundredClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const (
		clients = 100
		window  = 1 << 20
	)
	pub := t.TempDir()
	tr := makeTree(t, pub, 0x10ad, 50, 100_000, 320_000)
	total := tr.total()
	srv := startServer(t, pub, map[string]string{"chunk_size": "262144"})
	runtime.GC()
	before := goleak.IgnoreCurrent()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var peak, live atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				if n%10 == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > live.Load() {
						live.Store(ms.HeapInuse)
					}
				}
			}
		}
	}()

	work := t.TempDir()
	t0 := time.Now()
	cls := make([]*host.Client, clients)
	for i := range cls {
		cl, err := host.StartClient(host.ClientConfig{
			Connect: srv.Endpoint(), Inbox: filepath.Join(work, fmt.Sprintf("in%03d", i)),
			Once: true, Logger: quiet,
			Settings: map[string]string{"window": fmt.Sprint(window), "slice": fmt.Sprint(window / 4)},
		})
		if err != nil {
			t.Fatal(err)
		}
		cls[i] = cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	for i, cl := range cls {
		if err := cl.Wait(ctx); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if got := cl.Stats().Bytes.Load(); got != total {
			t.Errorf("client %d received %d bytes, want %d", i, got, total)
		}
		if p := cl.Stats().Problems.Load() + cl.Stats().Refused.Load(); p != 0 {
			t.Errorf("client %d: %d problems/refusals", i, p)
		}
	}
	elapsed := time.Since(t0)
	close(stop)
	sampler.Wait()
	for _, cl := range cls {
		if err := cl.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	for i := range cls {
		sameTree(t, filepath.Join(work, fmt.Sprintf("in%03d", i)), tr)
	}

	budget := uint64(clients*window) + 64<<20
	bound := 2 * budget
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	t.Logf("%d clients x %s (%d files) in %v (%.0f MiB/s aggregate); heap in use: base %.1f MiB, live peak %.1f MiB (%.0f%% of the %.0f MiB budget; bound twice that), peak between GCs %.1f MiB (%.0f%% of twice the bound)",
		clients, fmtBytes(total), len(tr), elapsed.Round(time.Millisecond), float64(clients)*float64(total)/(1<<20)/elapsed.Seconds(),
		mib(base.HeapInuse), mib(live.Load()), 100*float64(live.Load())/float64(budget), mib(budget), mib(peak.Load()), 50*float64(peak.Load())/float64(bound))
	if live.Load() > bound {
		t.Errorf("live heap peaked at %d bytes, over the bound %d", live.Load(), bound)
	}
	if peak.Load() > 2*bound {
		t.Errorf("heap in use peaked at %d bytes, over twice the bound %d", peak.Load(), bound)
	}

	// The clients have left: the server forgets every session and keeps no
	// goroutine for them.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Engine().Stats().Instances != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still holds %d sessions 10s after the clients left", srv.Engine().Stats().Instances)
		}
		time.Sleep(10 * time.Millisecond)
	}
	goleak.VerifyNone(t, before)
}
