package interp

import (
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fmq/fmq/codec"
)

// instance is one running copy of a machine (one per peer on a server).
type instance struct {
	id      string
	ms      *mstate
	state   *State
	peer    any
	vars    reflect.Value   // *struct of the machine's [vars] (set, vars.NAME)
	live    *atomic.Uint64  // the engine's live instances (guards: sessions)
	out     []codec.Message // send scratch, by message index
	log     *slog.Logger
	dead    bool
	removed bool
	// overflowed: ended by a mailbox overflow (the dispatching goroutine's
	// copy): however its machine ends it, what waited is dropped.
	overflowed bool

	expiry, heartbeat time.Duration
	expiryFrom        time.Time // the expiry runs from here (last inbound frame); see expiryAt
	heartbeatAt       time.Time // zero: off
	afters            []timer   // the current state's `after` timers
	wakeups           []timer   // ctx.Wakeup
	next              time.Time // earliest deadline while in the heap
	heapIdx           int
	// timersSet is true when a deadline may have moved earlier since the
	// instance was last placed in the timer heap. touch only moves the
	// expiry later, so it leaves it false: the per-message path then never
	// looks at the heap.
	timersSet bool
	// armed and armedAt are the dispatching side's copy of its heap key
	// (next and heapIdx belong to the heap, under Engine.tmu).
	armed   bool
	armedAt time.Time

	pubState atomic.Pointer[State] // state, readable from any goroutine

	// The mailbox (session.go), under mu; pushes also hold Engine.mu.
	mu       sync.Mutex
	box      []item
	boxHead  int
	active   bool // a goroutine (or Tick) will run the mailbox
	gone     bool // removed: the mailbox is closed
	overflow bool // an input was refused: the session ends
	detached bool // out of the peer map (Engine.mu)
	// forgotten: the host said the peer is gone; sends are refused (its
	// identity may belong to a new connection by now).
	forgotten atomic.Bool
}

type timer struct {
	ev int
	at time.Time
}

func (i *instance) outMsg(idx int) codec.Message {
	if idx < len(i.out) && i.out[idx] != nil {
		return i.out[idx]
	}
	return i.newOut(idx)
}

func (i *instance) newOut(idx int) codec.Message {
	m := i.ms.m
	if i.out == nil {
		i.out = make([]codec.Message, m.nMsgs)
	}
	i.out[idx] = m.Events[idx].Msg.New()
	return i.out[idx]
}

// touch restarts the expiry: no time arithmetic per message, the deadline
// is computed when the timers are looked at.
func (i *instance) touch(now time.Time) { i.expiryFrom = now }

// expiryAt is the expiry deadline, zero when it is off.
func (i *instance) expiryAt() time.Time {
	if i.expiry <= 0 {
		return time.Time{}
	}
	return i.expiryFrom.Add(i.expiry)
}

func (i *instance) setExpiry(now time.Time, d time.Duration) {
	i.timersSet = true
	i.expiry = d
	i.expiryFrom = now
}

func (i *instance) setHeartbeat(now time.Time, d time.Duration) {
	i.timersSet = true
	i.heartbeat = d
	i.heartbeatAt = time.Time{}
	if d > 0 {
		i.heartbeatAt = now.Add(d)
	}
}

func (i *instance) armAfters(now time.Time) {
	if len(i.afters) == 0 && len(i.state.After) == 0 {
		return
	}
	i.timersSet = true
	i.afters = i.afters[:0]
	for _, a := range i.state.After {
		i.afters = append(i.afters, timer{ev: a.ev, at: now.Add(max(i.ms.dur(a.Dur), time.Nanosecond))})
	}
}

func (i *instance) setWakeup(ev int, at time.Time) {
	i.timersSet = true
	for k := range i.wakeups {
		if i.wakeups[k].ev == ev {
			i.wakeups[k].at = at
			return
		}
	}
	i.wakeups = append(i.wakeups, timer{ev: ev, at: at})
}

func (i *instance) cancelWakeup(ev int) {
	i.timersSet = true
	for k := range i.wakeups {
		if i.wakeups[k].ev == ev {
			i.wakeups = append(i.wakeups[:k], i.wakeups[k+1:]...)
			return
		}
	}
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (i *instance) nextDeadline() time.Time {
	var t time.Time
	t = earlier(t, i.expiryAt())
	t = earlier(t, i.heartbeatAt)
	for _, a := range i.afters {
		t = earlier(t, a.at)
	}
	for _, w := range i.wakeups {
		t = earlier(t, w.at)
	}
	return t
}

// popDue removes the earliest timer due at now and returns its event,
// re-arming the periodic ones.
func (i *instance) popDue(now time.Time) (int, bool) {
	kind, idx := -1, -1
	var best time.Time
	consider := func(k, j int, at time.Time) {
		if !at.IsZero() && !at.After(now) && (best.IsZero() || at.Before(best)) {
			kind, idx, best = k, j, at
		}
	}
	consider(0, 0, i.expiryAt())
	consider(1, 0, i.heartbeatAt)
	for j, a := range i.afters {
		consider(2, j, a.at)
	}
	for j, w := range i.wakeups {
		consider(3, j, w.at)
	}
	m := i.ms.m
	i.timersSet = true
	switch kind {
	case 0:
		i.expiryFrom = now // fires again after another silent period
		return m.evExpired, true
	case 1:
		i.heartbeatAt = i.heartbeatAt.Add(i.heartbeat)
		if !i.heartbeatAt.After(now) {
			i.heartbeatAt = now.Add(i.heartbeat)
		}
		return m.evHeart, true
	case 2:
		ev := i.afters[idx].ev
		i.afters = append(i.afters[:idx], i.afters[idx+1:]...)
		return ev, true
	case 3:
		ev := i.wakeups[idx].ev
		i.wakeups = append(i.wakeups[:idx], i.wakeups[idx+1:]...)
		return ev, true
	}
	return 0, false
}

// timerHeap orders instances by their earliest deadline.
type timerHeap []*instance

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(a, b int) bool { return h[a].next.Before(h[b].next) }
func (h timerHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].heapIdx = a
	h[b].heapIdx = b
}
func (h *timerHeap) Push(x any) {
	inst := x.(*instance)
	inst.heapIdx = len(*h)
	*h = append(*h, inst)
}
func (h *timerHeap) Pop() any {
	old := *h
	inst := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	inst.heapIdx = -1
	return inst
}
