package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The limit rises to twice a large live heap and falls back to the base
// once that heap is garbage; GOGC stays off.
func TestFollowsLiveHeap(t *testing.T) {
	oldLimit, oldPct := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit); debug.SetGCPercent(oldPct) })

	const base = 8 << 20
	f := Start(base)
	defer f.Stop()
	if pct := debug.SetGCPercent(-1); pct != -1 {
		t.Fatalf("GC percent %d, want -1 (off)", pct)
	}
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("limit %d, want the base %d", got, base)
	}
	// wait collects until cond holds (finalizers run after the cycle, on
	// the runtime's finalizer goroutine)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: limit stayed at %d", what, f.Limit())
			}
			runtime.GC()
			time.Sleep(time.Millisecond) // let the finalizer goroutine run
		}
	}
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
		live[i][0] = 1
	}
	wait("64 MiB live", func() bool { return f.Limit() >= 128<<20 })
	if got := debug.SetMemoryLimit(-1); got != f.Limit() {
		t.Errorf("runtime limit %d, follower says %d", got, f.Limit())
	}
	runtime.KeepAlive(live)
	live = nil
	wait("live heap released", func() bool { return f.Limit() == base })

	f.Stop()
	debug.SetMemoryLimit(base)
	before := f.Limit()
	big := make([]byte, 64<<20)
	big[0] = 1
	for range 3 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	runtime.KeepAlive(big)
	if f.Limit() != before {
		t.Errorf("limit moved after Stop: %d -> %d", before, f.Limit())
	}
}

func TestStartNoBase(t *testing.T) {
	if f := Start(0); f != nil {
		t.Errorf("Start(0) = %v, want nil", f)
	}
	(*Follower)(nil).Stop()
}
