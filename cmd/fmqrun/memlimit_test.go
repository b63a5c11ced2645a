package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

// The client's collector runs at a soft memory limit sized to the credit
// window, GOGC off; GOMEMLIMIT or GOGC in the environment keep the runtime's
// own settings.
func TestClientMemoryLimit(t *testing.T) {
	oldLimit, oldPct := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit); debug.SetGCPercent(oldPct) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")

	setClientMemoryLimit(map[string]string{"window": "10000000"}, log).Stop()
	if got, want := debug.SetMemoryLimit(-1), int64(8<<20+20_000_000); got != want {
		t.Errorf("limit for a 10 MB window: %d, want %d", got, want)
	}
	if pct := debug.SetGCPercent(100); pct != -1 {
		t.Errorf("GC percent %d, want -1 (off)", pct)
	}
	setClientMemoryLimit(nil, log).Stop() // the machine's default window
	if got, want := debug.SetMemoryLimit(-1), int64(8<<20+8_000_000); got != want {
		t.Errorf("limit for the default window: %d, want %d", got, want)
	}

	for _, env := range []string{"GOMEMLIMIT", "GOGC"} {
		debug.SetMemoryLimit(1 << 40)
		debug.SetGCPercent(100)
		t.Setenv(env, "1")
		if f := setClientMemoryLimit(map[string]string{"window": "10000000"}, log); f != nil {
			t.Errorf("with %s set: the limit follows the heap", env)
		}
		if got := debug.SetMemoryLimit(-1); got != 1<<40 {
			t.Errorf("with %s set: limit changed to %d", env, got)
		}
		if pct := debug.SetGCPercent(100); pct != 100 {
			t.Errorf("with %s set: GC percent changed to %d", env, pct)
		}
		t.Setenv(env, "")
	}
}
