//go:build race

package host

// raceSlowdown scales latency bounds under the race detector, which makes
// every goroutine several times slower and changes how they interleave.
const raceSlowdown = 4
