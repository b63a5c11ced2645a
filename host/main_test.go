package host

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Servers and clients start goroutines (engine, socket pumps, watcher,
// transport): none may outlive Close. The test binary doubles as the
// no-disk sink client of BenchmarkFanoutSink (FMQ_SINK set).
func TestMain(m *testing.M) {
	if ep := os.Getenv(sinkEnv); ep != "" {
		os.Exit(sinkMain(ep))
	}
	goleak.VerifyTestMain(m)
}

// waitUntil polls cond (every few ms, 10 s at most) and fails the test
// with what(), which says what was waited for and what was seen.
func waitUntil(t testing.TB, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
	}
}
