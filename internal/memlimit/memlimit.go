// Package memlimit runs the Go collector the way a streaming receiver wants
// it: GOGC off and a soft memory limit of a fixed budget (what the credit
// window keeps in flight plus fixed buffers) while the live heap is small,
// so a stream of short-lived chunks does not start a collection every few
// megabytes; and never less than twice the live heap, so a large live set
// (a cache of a million files) is collected as under GOGC=100 instead of
// pinning the collector at the limit.
//
// The limit follows the live heap after every collection, from a finalizer
// re-armed at each cycle: no goroutine of its own.
package memlimit

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Follower keeps the soft memory limit at max(base, 2 x live heap).
type Follower struct {
	base    int64
	stopped atomic.Bool
	sample  []metrics.Sample // used by adjust only (the finalizer goroutine)
	limit   atomic.Int64
}

// sentinel is allocated per cycle; its finalizer runs after the collection
// that found it unreachable.
type sentinel struct{ f *Follower }

// Start turns GOGC off, sets the limit to base and follows the live heap
// until Stop. It returns nil (and changes nothing) when base <= 0.
func Start(base int64) *Follower {
	if base <= 0 {
		return nil
	}
	f := &Follower{base: base, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.limit.Store(base)
	debug.SetMemoryLimit(base)
	debug.SetGCPercent(-1)
	f.arm()
	return f
}

func (f *Follower) arm() {
	s := &sentinel{f: f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.adjust()
		s.f.arm()
	})
}

// adjust sets the limit from the live heap the last collection marked. It
// runs on the runtime's one finalizer goroutine, one cycle at a time.
func (f *Follower) adjust() {
	metrics.Read(f.sample)
	live := int64(0)
	if f.sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(f.sample[0].Value.Uint64())
	}
	limit := max(f.base, 2*live)
	if limit != f.limit.Load() {
		f.limit.Store(limit)
		debug.SetMemoryLimit(limit)
	}
}

// Limit is the limit in force.
func (f *Follower) Limit() int64 { return f.limit.Load() }

// Stop ends the following; the last limit and GOGC stay as they are.
func (f *Follower) Stop() {
	if f != nil {
		f.stopped.Store(true)
	}
}
