//go:build !race

package host

// raceSlowdown scales latency bounds under the race detector (off here).
const raceSlowdown = 1
