package interp

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"time"
)

// The concurrent runtime of a server under Run (spec/machines.md section
// 11). Each instance has a mailbox; whoever routes an input to it (the
// hosting pump, Post, Broadcast, Forget, a timer, finished off-dispatch
// work) appends under Engine.mu, and a goroutine runs the instance while
// its mailbox holds input: one input at a time, in order, each to
// completion. Different instances run at the same time.

// item kinds.
const (
	itFrame uint8 = iota + 1
	itHost
	itTimer
	itForget
	itResult
	itStart
)

// item is one input waiting in a mailbox.
type item struct {
	kind  uint8
	ev    int    // itResult: event id
	name  string // itHost: event name
	body  []byte // itFrame
	value any
	err   error
}

// yieldAfter: a session goroutine that spent longer than this on one
// input yields the processor before taking the next.
const yieldAfter = 200 * time.Microsecond

// ErrForgotten fails a send of a session whose peer the host said is gone
// (Forget): the identity may already belong to a new connection.
var ErrForgotten = errors.New("interp: the peer is gone (forgotten); nothing more is sent to it")

// ErrOverflow ends a session whose mailbox overflowed.
var ErrOverflow = errors.New("interp: session mailbox full: the session cannot keep up with its input")

// Deliver routes one received frame to its peer's instance (creating it
// for a new peer). The engine keeps body until the frame is handled. Calls
// from one goroutine are handled in order, and in order with that
// goroutine's Forget calls: the one hosting pump per socket calls both.
// A client's frames (peer is ignored) are handled in order with its Call
// and Forget calls; Deliver waits while clientBacklog frames are not yet
// taken by Run (the connection is then not read), until Run returns.
func (e *Engine) Deliver(peer string, body []byte) {
	if e.role == RoleClient {
		e.deliverClient(body)
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	refused := e.routeFrame(peer, body)
	e.mu.Unlock()
	if refused && e.opts.Refuse != nil {
		e.opts.Refuse(peer)
	}
}

// DeliverOwned is Deliver for a frame whose buffer the caller wants back:
// release (called at most once, from the engine's goroutine) says that
// nothing of the engine or its actions references body any more. The
// engine calls it once the frame's dispatch is over (the macrostep its
// actions ran in), unless an action took it over with Ctx.Hold, or when it
// drops the frame (the client departed, the engine stopped). It may never
// be called (a server's frames, an engine that stopped with the frame
// still queued): the collector then frees the buffer. Decoded messages
// alias their frame (chunk and octets fields), so the release is what an
// action that keeps such a field must take over.
func (e *Engine) DeliverOwned(peer string, body []byte, release func()) {
	if e.role != RoleClient || release == nil {
		e.Deliver(peer, body)
		return
	}
	e.deliverClientOwned(body, release)
}

func (e *Engine) deliverClient(body []byte) { e.deliverClientOwned(body, nil) }

func (e *Engine) deliverClientOwned(body []byte, release func()) {
	e.mu.Lock()
	for e.backlog >= clientBacklog && !e.closed {
		e.mu.Unlock()
		select {
		case <-e.room:
		case <-e.stopped:
		}
		e.mu.Lock()
	}
	if e.closed {
		e.mu.Unlock()
		if release != nil {
			release()
		}
		return
	}
	e.backlog++
	e.cmds = append(e.cmds, command{kind: cmdFrame, body: body, release: release})
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// routeFrame queues a frame for peer's instance; e.mu held. It reports a
// new peer refused by MaxSessions.
func (e *Engine) routeFrame(peer string, body []byte) bool {
	inst := e.insts[peer]
	if inst == nil {
		if len(body) < 2 || body[0] != e.sig[0] || body[1] != e.sig[1] {
			e.stats.frames.Add(1)
			e.stats.badSig.Add(1)
			return false
		}
		if e.opts.MaxSessions > 0 && len(e.insts) >= e.opts.MaxSessions {
			e.stats.frames.Add(1)
			e.stats.refused.Add(1)
			e.log.Warn("session refused: max_sessions reached", "peer", peer, "max_sessions", e.opts.MaxSessions)
			return true
		}
		inst = e.newInstance(peer, e.opts.Now())
		e.insts[peer] = inst
		e.push(inst, item{kind: itStart})
	}
	e.push(inst, item{kind: itFrame, body: body})
	return false
}

// route delivers a command under Run; e.mu held.
func (e *Engine) route(c command) {
	switch c.kind {
	case cmdPost:
		if inst, ok := e.insts[c.peer]; ok {
			e.push(inst, item{kind: itHost, name: c.event, value: c.value})
		} else {
			e.log.Debug("post to unknown peer dropped", "peer", c.peer, "event", c.event)
		}
	case cmdCall:
		e.cmds = append(e.cmds, c) // a client's Run takes it at its next turn
		select {
		case e.wake <- struct{}{}:
		default:
		}
	case cmdBroadcast:
		ids := make([]string, 0, len(e.insts))
		for id := range e.insts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			e.push(e.insts[id], item{kind: itHost, name: c.event, value: c.value})
		}
	case cmdForget:
		if inst, ok := e.insts[c.peer]; ok {
			// Out of the map now: the peer's next frame starts a new
			// instance, which never sees this one's state.
			delete(e.insts, c.peer)
			inst.detached = true
			inst.forgotten.Store(true)
			e.push(inst, item{kind: itForget})
		}
	}
}

// push appends to inst's mailbox and makes sure something will run it;
// e.mu held. A full mailbox marks the instance to be ended.
func (e *Engine) push(inst *instance, it item) {
	inst.mu.Lock()
	if inst.gone {
		inst.mu.Unlock()
		return
	}
	if len(inst.box)-inst.boxHead >= e.opts.Mailbox && it.kind != itForget {
		if !inst.overflow {
			inst.overflow = true
			e.stats.overflows.Add(1)
		}
		inst.mu.Unlock()
		return
	}
	inst.box = append(inst.box, it)
	idle := !inst.active
	inst.active = true
	inst.mu.Unlock()
	if !idle {
		return
	}
	switch {
	case e.closed:
	case e.live:
		e.wg.Add(1)
		go e.serve(inst)
	default:
		e.ready = append(e.ready, inst) // Input or Tick runs it
		e.hasReady.Store(true)
	}
}

// pop takes inst's next input. It returns false, and marks the instance
// idle, when there is none (or the engine is closing). over reports an
// overflowed mailbox.
func (e *Engine) pop(inst *instance) (it item, ok, over bool) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.boxHead == len(inst.box) || inst.gone || e.bg.Err() != nil {
		inst.active = false
		clear(inst.box)
		inst.box, inst.boxHead = inst.box[:0], 0
		if cap(inst.box) > 256 {
			inst.box = nil // a burst is over: do not keep its storage
		}
		return item{}, false, false
	}
	it = inst.box[inst.boxHead]
	inst.box[inst.boxHead] = item{}
	inst.boxHead++
	return it, true, inst.overflow
}

// serve is an instance's goroutine: it runs while the mailbox has input.
func (e *Engine) serve(inst *instance) {
	defer e.wg.Done()
	d := e.pool.Get().(*disp)
	defer func() {
		d.publish()
		d.ctx.inst, d.ctx.msg, d.env = nil, nil, genv{}
		e.pool.Put(d)
	}()
	d.drainBox(inst, publishEvery)
}

// drainBox handles inst's mailbox until it is empty; every `every` inputs
// it publishes the counters (-1: never).
func (d *disp) drainBox(inst *instance, every int) {
	e := d.e
	for {
		it, ok, over := e.pop(inst)
		if !ok {
			return
		}
		d.now = e.opts.Now()
		if over && !inst.dead {
			// The machine may answer (an error reply) before the session
			// ends; what the mailbox held is dropped.
			e.log.Error("session ended: mailbox full", "peer", inst.id, "state", inst.state.Name, "mailbox", e.opts.Mailbox)
			inst.overflowed = true
			d.guarded(inst, inst.ms.m.evOverflow, nil, nil, ErrOverflow)
			d.remove(inst, whyOverflow)
			continue
		}
		d.handle(inst, &it)
		if d.unpublished++; every > 0 && d.unpublished >= every {
			d.publish()
		}
		if every > 0 && e.opts.Now().Sub(d.now) > yieldAfter {
			// A long input (a slice of a large credit): let the other
			// sessions' goroutines run before this one takes its next.
			runtime.Gosched()
		}
	}
}

// handle runs one mailbox input.
func (d *disp) handle(inst *instance, it *item) {
	switch it.kind {
	case itStart:
		d.begin(inst)
	case itFrame:
		d.frame(inst, it.body)
	case itHost:
		d.hostEvent(inst, it.name, it.value)
	case itForget:
		d.remove(inst, "forgotten")
	case itResult:
		if it.err != nil {
			d.guarded(inst, inst.ms.m.evError, nil, nil, it.err)
		} else {
			d.guarded(inst, it.ev, nil, it.value, nil)
		}
	case itTimer:
		d.timers(inst)
	}
}

// timers fires inst's due timers (the scheduler took it out of the heap).
func (d *disp) timers(inst *instance) {
	for n := 0; n < 64 && !inst.dead; n++ {
		ev, ok := inst.popDue(d.now)
		if !ok {
			break
		}
		d.guarded(inst, ev, nil, nil, nil)
	}
	d.rescheduleNow(inst)
}

// detach takes a removed instance out of the peer map and closes its
// mailbox. Frames and departures still waiting are routed again, in order,
// so they reach the peer's next instance as they would have without a
// mailbox (unless reroute is false); other inputs are dropped.
//
// A session ended by an overflow (reroute false) stays in the peer map,
// closed, until the host forgets its peer: the rest of its connection's
// flood is dropped, not answered by a fresh session.
func (e *Engine) detach(inst *instance, reroute bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !reroute && !inst.detached && e.insts[inst.id] == inst && !e.closed && e.role == RoleServer {
		inst.mu.Lock()
		inst.gone = true
		inst.box, inst.boxHead = nil, 0
		inst.mu.Unlock()
		return
	}
	if !inst.detached && e.insts[inst.id] == inst {
		delete(e.insts, inst.id)
	}
	inst.detached = true
	inst.mu.Lock()
	inst.gone = true
	left := inst.box[inst.boxHead:]
	inst.box, inst.boxHead = nil, 0
	inst.mu.Unlock()
	if e.closed || !reroute || inst.forgotten.Load() {
		return // (a forgotten session's inputs came from a departed connection)
	}
	for _, it := range left {
		switch it.kind {
		case itFrame:
			e.routeFrame(inst.id, it.body)
		case itForget:
			e.route(command{kind: cmdForget, peer: inst.id})
		}
	}
}

// Run serves until ctx ends, in closes, or (client) the instance
// terminates. A server's frames may come through in or, from a hosting
// pump, through Deliver (in may then be nil). When Run returns, every
// session has stopped and every peer value has been closed.
func (e *Engine) Run(ctx context.Context, in <-chan Frame) error {
	if e.role == RoleClient {
		return e.runClient(ctx, in)
	}
	return e.runServer(ctx, in)
}

func (e *Engine) runServer(ctx context.Context, in <-chan Frame) error {
	e.inRun = true
	e.mu.Lock()
	e.live = true
	cmds, ready := e.cmds, e.ready
	e.cmds, e.ready = nil, nil
	for _, c := range cmds {
		e.route(c)
	}
	for _, inst := range ready {
		e.wg.Add(1)
		go e.serve(inst)
	}
	e.mu.Unlock()
	defer e.shutdown()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := e.opts.Now()
		next := e.fireDue(now)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		if next.IsZero() {
			t.Reset(time.Hour)
		} else {
			t.Reset(max(next.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f, ok := <-in:
			if !ok {
				return nil
			}
			e.Deliver(f.Peer, f.Body)
		case <-e.wake:
		case <-t.C:
		}
	}
}

// fireDue hands every instance with a due timer an itTimer input and
// returns the next deadline.
func (e *Engine) fireDue(now time.Time) time.Time {
	e.tmu.Lock()
	due := e.due[:0]
	for len(e.timers) > 0 && !e.timers[0].next.After(now) {
		due = append(due, e.timers[0])
		heap.Pop(&e.timers)
	}
	var next time.Time
	if len(e.timers) > 0 {
		next = e.timers[0].next
	}
	e.tmu.Unlock()
	if len(due) > 0 {
		e.mu.Lock()
		for _, inst := range due {
			e.push(inst, item{kind: itTimer})
		}
		e.mu.Unlock()
		clear(due)
	}
	e.due = due[:0]
	return next
}

// shutdown stops every session: no more input is routed, the session
// goroutines finish their current input, off-dispatch work is cancelled
// and awaited, and every instance's peer value is closed.
func (e *Engine) shutdown() {
	e.mu.Lock()
	e.live, e.closed = false, true
	e.mu.Unlock()
	e.bgCancel()
	e.wg.Wait()
	e.mu.Lock()
	insts := make([]*instance, 0, len(e.insts))
	for _, inst := range e.insts {
		insts = append(insts, inst)
	}
	e.mu.Unlock()
	for _, inst := range insts {
		e.sd.remove(inst, "engine closed")
	}
	e.sd.publish()
	e.inRun = false
}

// runClient is a client's Run: its one instance runs on this goroutine.
func (e *Engine) runClient(ctx context.Context, in <-chan Frame) error {
	d := e.sd
	e.inRun = true
	d.holdNotes = cap(e.notify) >= 2*notesBatch // a small buffer: one at a time, as the application reads
	defer func() {
		e.inRun = false
		d.holdNotes = false
		e.flushNotes(d)
		d.publish()
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		close(e.stopped)
		e.bgCancel()
		e.wg.Wait()
	}()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var armed time.Time // the deadline t is set for (zero: none, t is an hour away)
	armedOK := false    // false: reset t at the next turn
	now := e.opts.Now()
	for {
		d.tick(now)
		if e.client != nil && e.client.dead {
			return nil
		}
		if e.departed {
			return ErrForgotten
		}
		next, _ := e.NextDeadline()
		if !armedOK || !next.Equal(armed) {
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			if !next.IsZero() {
				t.Reset(max(next.Sub(now), 0))
			} else {
				t.Reset(time.Hour)
			}
			armed, armedOK = next, true
		}
		if d.unpublished < publishEvery {
			// Busy: take a waiting frame without publishing the counters.
			select {
			case f, ok := <-in:
				if !ok {
					return nil
				}
				d.unpublished++
				d.now = e.opts.Now()
				d.input(f.Peer, f.Body)
				now = d.now // the input's clock read serves the next turn
				continue
			default:
			}
		}
		d.publish() // about to wait: Stats is exact while the engine is idle
		e.flushNotes(d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f, ok := <-in:
			if !ok {
				return nil
			}
			d.unpublished++
			d.now = e.opts.Now()
			d.input(f.Peer, f.Body)
			now = d.now
			continue
		case <-e.wake:
		case <-t.C:
			armedOK = false
		}
		now = e.opts.Now()
	}
}

// later queues an event for inst at the back of its mailbox.
func (e *Engine) later(inst *instance, it item) {
	e.mu.Lock()
	e.push(inst, it)
	e.mu.Unlock()
	if e.role == RoleClient {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// Later queues event (with v, read as ctx.Value()) at the back of the
// instance's mailbox: it is handled after the inputs already waiting, in
// a dispatch of its own. An action cuts long work into slices this way,
// so that one input does a bounded amount of work. The event must be in
// the action's Raises.
func (c *Ctx) Later(event string, v any) {
	ev, err := c.checkRaise(event)
	if err != nil {
		c.raiseErr = err
		return
	}
	c.e.later(c.inst, item{kind: itResult, ev: ev, value: v})
}

// Go runs work off the dispatch path (on a goroutine of its own; inline,
// before Input returns, for an engine driven without Run) and delivers its
// result to the instance as event, with the result as
// ctx.Value(); an error raises "error" instead, with ctx.Err(). The context
// passed to work is cancelled when the engine stops. The event must be in
// the action's Raises. If the instance has ended by then, the result is
// dropped.
func (c *Ctx) Go(event string, work func(context.Context) (any, error)) {
	ev, err := c.checkRaise(event)
	if err != nil {
		c.raiseErr = err
		return
	}
	e, inst := c.e, c.inst
	if !e.inRun {
		// Driven by hand (Input, Tick): nothing runs concurrently, the
		// work runs here and its event is handled before Input returns.
		v, werr := runWork(e, event, work)
		e.later(inst, item{kind: itResult, ev: ev, value: v, err: werr})
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		v, werr := runWork(e, event, work)
		e.later(inst, item{kind: itResult, ev: ev, value: v, err: werr})
	}()
}

// runWork runs off-dispatch work; a panic becomes its error.
func runWork(e *Engine, event string, work func(context.Context) (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.stats.panics.Add(1)
			err = fmt.Errorf("off-dispatch work for %q panicked: %v", event, r)
		}
	}()
	return work(e.bg)
}

// runReady handles, on the calling goroutine, the mailboxes of an engine
// driven by hand (the events of ctx.Later and ctx.Go).
func (d *disp) runReady() {
	e := d.e
	for n := 0; n < 1<<20; n++ {
		e.mu.Lock()
		ready := e.ready
		e.ready = nil
		e.hasReady.Store(false)
		e.mu.Unlock()
		if len(ready) == 0 {
			return
		}
		for _, inst := range ready {
			d.drainBox(inst, -1)
		}
	}
}
