package host

import (
	"os"
	"testing"

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
