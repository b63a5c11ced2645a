package interp

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/fmq/fmq/codec"
)

type queued struct {
	ev    int
	value any
	err   error
}

// disp is the scratch of one dispatching goroutine: the run-to-completion
// queue, the action context, the guard VM, the encode buffer, the decode
// scratch messages and the counters not yet published. The engine has one
// for Input, Tick and a client's Run; under Run each busy server session
// borrows one from a pool.
type disp struct {
	e   *Engine
	now time.Time
	q   []queued
	qi  int
	env genv
	vm  vm.VM
	buf []byte
	ctx Ctx
	rx  []codec.Message // decode scratch by message id
	gt  *Transition     // the transition whose guard is being evaluated (for a panic report)

	n, pub counters
	own    bool // the engine's own dispatcher: stores into Engine.sdStats
	// release gives back the frame being dispatched (DeliverOwned), once
	// its dispatch is over, unless an action took it (Ctx.Hold).
	release     func()
	cold        bool // a counter other than frames, events, sent moved
	unpublished int
	// sends counts the messages of the macrostep (Batcher); held is the
	// peer held from its second on, flushed when the macrostep ends.
	sends   int
	held    string
	holding bool
	// holdNotes (a client's Run) keeps the notifications of a busy
	// dispatcher in notes until it is about to wait, or notesBatch of them
	// are held: the application's goroutine wakes once per batch instead of
	// once per notification (once per received file, Engine.flushNotes).
	holdNotes bool
	notes     []Notification
}

// Scratch larger than this is released after use rather than kept for the
// dispatcher's lifetime (a 12 MB ICANHAZ must not stay pinned; a thousand
// sessions must not each keep a chunk-sized encode buffer).
const (
	keepSmall = 64 << 10
	keepFrame = 64 << 10
)

func (e *Engine) newDisp() *disp {
	d := &disp{e: e}
	d.ctx.e, d.ctx.d = e, d
	maxID := 0
	for _, mi := range e.proto.Messages() {
		maxID = max(maxID, int(mi.ID))
	}
	d.rx = make([]codec.Message, maxID+1)
	return d
}

// publish makes the dispatcher's counters visible to Stats.
func (d *disp) publish() {
	d.unpublished = 0
	if d.own {
		d.store()
		return
	}
	n, p, s := &d.n, &d.pub, &d.e.stats
	if n.frames != p.frames {
		s.frames.Add(n.frames - p.frames)
	}
	if n.events != p.events {
		s.events.Add(n.events - p.events)
	}
	if n.sent != p.sent {
		s.sent.Add(n.sent - p.sent)
	}
	if d.cold {
		d.cold = false
		s.badSig.Add(n.badSig - p.badSig)
		s.malformed.Add(n.malformed - p.malformed)
		s.unhandled.Add(n.unhandled - p.unhandled)
		s.sendErr.Add(n.sendErr - p.sendErr)
		s.exceptions.Add(n.exceptions - p.exceptions)
		s.loops.Add(n.loops - p.loops)
		s.notifyDropped.Add(n.notifyDropped - p.notifyDropped)
		*p = *n
		return
	}
	p.frames, p.events, p.sent = n.frames, n.events, n.sent
}

// store publishes the engine's own dispatcher: only it writes sdStats, so
// a store (not a read-modify-write) is enough, and the rarely moving
// counters are stored only when one moved.
func (d *disp) store() {
	n, p, s := &d.n, &d.pub, &d.e.sdStats
	if n.frames != p.frames {
		s.frames.Store(n.frames)
	}
	if n.events != p.events {
		s.events.Store(n.events)
	}
	if n.sent != p.sent {
		s.sent.Store(n.sent)
	}
	if d.cold {
		d.cold = false
		s.badSig.Store(n.badSig)
		s.malformed.Store(n.malformed)
		s.unhandled.Store(n.unhandled)
		s.sendErr.Store(n.sendErr)
		s.exceptions.Store(n.exceptions)
		s.loops.Store(n.loops)
		s.notifyDropped.Store(n.notifyDropped)
	}
	p.frames, p.events, p.sent = n.frames, n.events, n.sent // the only fields of pub compared
}

func (d *disp) start() {
	e := d.e
	if e.role != RoleClient || e.client != nil {
		return
	}
	e.client = d.newInstance("")
}

// tick runs an engine driven without Run (or a client's Run): commands,
// mailbox input, due timers, all on this goroutine.
func (d *disp) tick(now time.Time) {
	e := d.e
	d.now = now
	d.start()
	e.mu.Lock()
	cmds := e.cmds
	e.cmds, e.spare = e.spare, nil // a client's frames come through cmds: reuse the storage
	took := e.backlog > 0
	e.backlog = 0
	e.mu.Unlock()
	if took {
		select {
		case e.room <- struct{}{}:
		default:
		}
	}
	for i := range cmds {
		if e.departed {
			// The connection is gone: what came after is dropped.
			for _, c := range cmds[i:] {
				if c.release != nil {
					c.release()
				}
			}
			break
		}
		d.command(cmds[i])
	}
	if cap(cmds) <= 4*clientBacklog {
		clear(cmds)
		e.mu.Lock()
		if e.spare == nil {
			e.spare = cmds[:0]
		}
		e.mu.Unlock()
	}
	d.runReady()
	for {
		e.tmu.Lock()
		if len(e.timers) == 0 || e.timers[0].next.After(now) {
			e.tmu.Unlock()
			break
		}
		inst := e.timers[0]
		e.tmu.Unlock()
		ev, ok := inst.popDue(now)
		if !ok {
			d.rescheduleNow(inst) // a lazily kept early key: fix it now
			continue
		}
		d.guarded(inst, ev, nil, nil, nil)
	}
}

func (d *disp) command(c command) {
	e := d.e
	switch c.kind {
	case cmdPost:
		if inst, ok := e.insts[c.peer]; ok {
			d.hostEvent(inst, c.event, c.value)
		} else {
			e.log.Debug("post to unknown peer dropped", "peer", c.peer, "event", c.event)
		}
	case cmdCall:
		if e.client != nil && !e.client.dead {
			d.adopt(e.client)
			d.hostEvent(e.client, c.event, c.value)
		}
	case cmdBroadcast:
		ids := make([]string, 0, len(e.insts))
		for id := range e.insts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if inst, ok := e.insts[id]; ok {
				d.hostEvent(inst, c.event, c.value)
			}
		}
	case cmdForget:
		if e.role == RoleClient {
			e.departed = true
		} else if inst, ok := e.insts[c.peer]; ok {
			d.remove(inst, "forgotten")
		}
	case cmdFrame:
		d.unpublished++
		d.release = c.release
		d.input("", c.body)
		if r := d.release; r != nil { // no action took it over (Ctx.Hold)
			d.release = nil
			r()
		}
		if e.hasReady.Load() {
			d.runReady() // its ctx.Later and ctx.Go events, as Input does
		}
	}
}

func (d *disp) hostEvent(inst *instance, event string, value any) {
	ev, ok := inst.ms.m.Event(event)
	if !ok {
		d.e.log.Warn("event unknown to the instance's machine (reloaded?)", "peer", inst.id, "event", event)
		return
	}
	d.guarded(inst, ev.ID, nil, value, nil)
}

// input handles one frame on the dispatcher's goroutine (no Run).
func (d *disp) input(peer string, body []byte) {
	e := d.e
	var inst *instance
	if e.role == RoleServer {
		if inst = e.insts[peer]; inst == nil {
			if len(body) < 2 || body[0] != e.sig[0] || body[1] != e.sig[1] {
				d.n.frames++
				d.badSignature(peer, body)
				return
			}
			inst = e.newInstance(peer, d.now)
			e.mu.Lock()
			e.insts[peer] = inst
			e.mu.Unlock()
			if d.begin(inst); inst.dead {
				return
			}
		}
	} else {
		d.start()
		inst = e.client
	}
	d.frame(inst, body)
}

// frame decodes one frame for inst and dispatches it; a panic of an action
// or guard ends inst only.
func (d *disp) frame(inst *instance, body []byte) {
	defer d.contain(inst)
	e := d.e
	d.n.frames++
	if len(body) < 2 || body[0] != e.sig[0] || body[1] != e.sig[1] {
		d.badSignature(inst.id, body)
		return
	}
	if inst.dead {
		return
	}
	m := inst.ms.m
	var msg codec.Message
	var derr error
	ev := m.evMalform
	if len(body) >= 3 && int(body[2]) < len(d.rx) {
		if msg = d.rx[body[2]]; msg == nil {
			msg = d.newRx(body[2])
		}
	}
	if msg != nil {
		if derr = msg.Decode(body, e.lim); derr == nil {
			ev = m.msgEv[body[2]]
		}
	}
	if msg == nil || derr != nil {
		derr = d.malformed(body, derr)
		msg = nil
	}
	inst.touch(d.now)
	if e.opts.WireTo != nil {
		e.wireIn(inst.id, body, msg, derr)
	}
	// macrostep, inline
	d.bind(inst, msg)
	d.step(inst, ev, nil, derr)
	d.drain(inst, 1)
	if len(body) > keepFrame && msg != nil {
		// A large frame grew the scratch message (a big cache map, long
		// lists): let it go rather than keep it for the dispatcher's life.
		// (body's bytes are not read after the dispatch: an action may
		// have released the frame, Ctx.Hold.)
		msg.Reset()
		d.rx[msg.Info().ID] = nil
		d.ctx.msg = nil
	}
}

func (d *disp) badSignature(peer string, body []byte) {
	d.n.badSig++
	d.cold = true
	if d.e.opts.Trace {
		d.e.log.Debug("frame without signature dropped", "peer", peer, "len", len(body))
	}
}

// newRx makes the decode scratch message of a message id (nil if the
// protocol has no such message).
func (d *disp) newRx(id byte) codec.Message {
	mi, ok := d.e.proto.ByID(id)
	if !ok {
		return nil
	}
	msg := mi.New()
	d.rx[id] = msg
	return msg
}

// malformed counts a frame that did not decode and returns the protocol's
// error for it.
func (d *disp) malformed(body []byte, derr error) error {
	if _, err := d.e.proto.Decode(body, d.e.lim); err != nil {
		derr = err
	}
	d.n.malformed++
	d.cold = true
	return derr
}

func (e *Engine) wireIn(peer string, body []byte, msg codec.Message, derr error) {
	if msg != nil {
		e.opts.WireTo(peer, FormatMessage(dirLetter(peerRole(e.role)), msg), body)
	} else {
		e.opts.WireTo(peer, dirLetter(peerRole(e.role))+": malformed "+fmt.Sprint(derr), body)
	}
}

// newInstance makes an instance in the initial state, its timers counted
// from now; begin runs its initial entry.
func (e *Engine) newInstance(id string, now time.Time) *instance {
	ms := e.cur.Load()
	m := ms.m
	inst := &instance{id: id, ms: ms, state: m.Initial, heapIdx: -1, vars: m.newVars(), live: &e.stats.instances}
	inst.pubState.Store(m.Initial)
	if m.Library.NewPeer != nil {
		inst.peer = m.Library.NewPeer(id)
	}
	if e.opts.NewPeer != nil {
		inst.peer = e.opts.NewPeer(id)
	}
	inst.setExpiry(now, ms.dur(m.Expiry))
	inst.setHeartbeat(now, ms.dur(m.Heartbeat))
	inst.armAfters(now)
	e.stats.instances.Add(1)
	if e.opts.Trace {
		e.log.Debug("instance created", "peer", id, "state", m.Initial.Name)
	}
	return inst
}

// begin runs the initial state's entry actions of a new instance.
func (d *disp) begin(inst *instance) {
	defer d.contain(inst)
	m := inst.ms.m
	if len(m.Initial.Entry) == 0 {
		d.reschedule(inst)
		return
	}
	d.bind(inst, nil)
	c := &d.ctx
	c.evID, c.value, c.err = -1, nil, nil // entry of the initial state runs under no event: ctx.Event() is ""
	if ex, err := d.runActions(inst, m.Initial.Entry); ex >= 0 {
		d.push(ex, nil, err)
	}
	d.drain(inst, 0)
}

func (d *disp) newInstance(id string) *instance {
	inst := d.e.newInstance(id, d.now)
	d.begin(inst)
	return inst
}

// remove ends an instance: out of the peer map and the timer heap, its
// peer value closed. Inputs still in its mailbox are routed again (frames
// and departures to whatever instance the peer has next, the rest dropped).
func (d *disp) remove(inst *instance, why string) {
	if inst.removed {
		return
	}
	inst.removed = true
	inst.dead = true
	if inst.overflowed {
		why = whyOverflow
	}
	if d.ctx.inst == inst {
		d.ctx.inst, d.ctx.msg = nil, nil
	}
	if d.env.inst == inst {
		d.env = genv{}
	}
	e := d.e
	e.unplace(inst)
	e.detach(inst, why != whyOverflow)
	e.stats.instances.Add(^uint64(0))
	e.closePeer(inst)
	if e.opts.Trace {
		e.log.Debug("instance ended", "peer", inst.id, "why", why, "state", inst.state.Name)
	}
	if inst == e.client {
		e.doneMu.Do(func() { close(e.done) })
	}
}

// whyOverflow is the removal of a session whose mailbox overflowed: what
// it had waiting is dropped, not routed to a new session.
const whyOverflow = "mailbox full"

// reschedule updates the instance's place in the timer heap. A deadline
// that only moved later (the expiry, pushed back by every message) keeps
// its earlier key: the timer then finds nothing due and fixes it. This
// keeps the heap out of the per-message path.
func (d *disp) reschedule(inst *instance) {
	if inst.removed || !inst.timersSet && inst.armed {
		return
	}
	inst.timersSet = false
	next := inst.nextDeadline()
	if inst.armed && !next.IsZero() && !next.Before(inst.armedAt) || !inst.armed && next.IsZero() {
		return
	}
	d.e.place(inst, next)
}

func (d *disp) rescheduleNow(inst *instance) {
	if !inst.removed {
		inst.timersSet = false
		d.e.place(inst, inst.nextDeadline())
	}
}

// ---- run to completion ----

func (d *disp) resetQueue() {
	clear(d.q)
	d.q = d.q[:0]
	d.qi = 0
}

func (d *disp) push(ev int, v any, err error) {
	d.q = append(d.q, queued{ev: ev, value: v, err: err})
}

// pushNext queues an exception event before every pending one.
func (d *disp) pushNext(ev int, err error) {
	d.q = append(d.q, queued{})
	copy(d.q[d.qi+1:], d.q[d.qi:])
	d.q[d.qi] = queued{ev: ev, err: err}
}

// bind points the action context at inst and the input's message, once
// per macrostep; step sets only what changes per event, and the guard
// inputs are filled only when a guard runs.
func (d *disp) bind(inst *instance, msg codec.Message) {
	c := &d.ctx
	c.inst, c.msg = inst, msg
}

// unbind drops the references to values the context holds after a
// macrostep (the instance and message stay: they are replaced by the next).
func (d *disp) unbind() {
	c := &d.ctx
	if c.value != nil || c.err != nil {
		c.value, c.err = nil, nil
	}
	if g := &d.env; g.value != nil {
		g.value = nil
	}
}

// guarded is macrostep with containment: a panic ends inst only.
func (d *disp) guarded(inst *instance, ev int, msg codec.Message, value any, err error) {
	defer d.contain(inst)
	if inst.dead {
		return
	}
	d.macrostep(inst, ev, msg, value, err)
}

// macrostep handles one input and every internal event it raises. The
// input's own event does not go through the queue.
func (d *disp) macrostep(inst *instance, ev int, msg codec.Message, value any, err error) {
	d.bind(inst, msg)
	d.step(inst, ev, value, err)
	d.drain(inst, 1)
}

// contain is deferred around every dispatch: a panic in an action, a guard,
// a codec or the sender ends that instance only, logged with the machine
// position and the event; the dispatcher is left clean for the next input.
func (d *disp) contain(inst *instance) {
	r := recover()
	if r == nil {
		return
	}
	e := d.e
	e.stats.panics.Add(1)
	m := inst.ms.m
	c := &d.ctx
	where, what := errAt(m, inst.state.Pos), "state "+inst.state.Name
	switch {
	case d.gt != nil:
		where, what = errAt(m, d.gt.Pos), fmt.Sprintf("guard %q", d.gt.When)
	case c.action != nil:
		where, what = errAt(m, c.action.Pos), fmt.Sprintf("action %q", c.action.Name)
	}
	event := ""
	if c.evID >= 0 && c.evID < len(m.Events) {
		event = m.Events[c.evID].Name
	}
	e.log.Error("panic in "+what+"; session ended", "at", where, "peer", inst.id, "state", inst.state.Name,
		"event", event, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	d.gt, c.action, c.raiseErr = nil, nil, nil
	d.resetQueue()
	d.unbind()
	d.flushSends()
	c.inst, c.msg = nil, nil
	d.env = genv{}
	inst.dead = true
	d.remove(inst, "panic")
}

// flushSends ends a macrostep's sending: what the Batcher held goes out.
func (d *disp) flushSends() {
	d.sends = 0
	if d.holding {
		d.holding = false
		d.e.batch.Flush(d.held)
	}
}

// drain handles the queued events (steps have been taken already), then
// removes or reschedules the instance.
func (d *disp) drain(inst *instance, steps int) {
	if d.qi < len(d.q) {
		ms := inst.ms
		for d.qi < len(d.q) && !inst.dead {
			it := d.q[d.qi]
			d.qi++
			steps++
			if steps > ms.maxSteps {
				d.n.loops++
				d.cold = true
				d.e.log.Error("input stopped: internal step limit reached; instance terminated", "peer", inst.id,
					"state", inst.state.Name, "event", ms.m.Events[it.ev].Name, "max_steps", ms.maxSteps)
				inst.dead = true
				break
			}
			d.step(inst, it.ev, it.value, it.err)
		}
	}
	if len(d.q) > 0 {
		d.resetQueue()
	}
	d.unbind()
	d.flushSends()
	if inst.dead {
		d.remove(inst, "terminated")
		return
	}
	if !inst.timersSet && inst.armed {
		return // no deadline moved earlier (reschedule's first test, inline)
	}
	d.reschedule(inst)
}

func (d *disp) step(inst *instance, evID int, value any, err error) {
	st := inst.state
	d.n.events++
	c := &d.ctx
	c.evID, c.value, c.err = evID, value, err
	alts := st.row[evID]
	var t *Transition
	if len(alts) > 0 && alts[0].guard == nil {
		t = alts[0].t // the common case: one alternative, no guard
	} else if len(alts) > 0 {
		g := &d.env
		if g.inst != inst { // the guard inputs of another instance: rebind
			g.inst, g.peer, g.settings = inst, inst.peer, inst.ms.settings
			g.bound &^= boundPeer
		}
		// state and event are literals in the row's fast guards: only the
		// VM reads them (g.st, g.ev are set for it).
		g.msg, g.value = c.msg, value
		g.bound &^= boundMsg
		for i := range alts {
			alt := &alts[i]
			if alt.guard == nil {
				t = alt.t
				break
			}
			var ok bool
			var gerr error
			d.gt = alt.t
			if f := alt.fast; f != nil { // guard.eval, inline
				g.bad = 0
				ok = f(g)
				if g.bad != 0 {
					ok, gerr = false, guardErr[g.bad]
				}
			} else {
				g.st, g.ev = st, inst.ms.m.Events[evID]
				ok, gerr = alt.guard.eval(g, &d.vm)
			}
			d.gt = nil
			if d.e.opts.Trace {
				d.e.traceGuard(inst, alt.t, ok, gerr)
			}
			if gerr != nil {
				d.guardFailed(inst, alt.t, gerr)
				return
			}
			if ok {
				t = alt.t
				break
			}
		}
	}
	if d.e.opts.Trace {
		d.e.log.Debug("event", "peer", inst.id, "state", st.Name, "event", inst.ms.m.Events[evID].Name, "handled", t != nil)
	}
	if t == nil {
		d.unhandled(inst, inst.ms.m.Events[evID], err)
		return
	}
	mark := len(d.q)
	if ex, aerr := d.runActions(inst, t.Actions); ex >= 0 {
		d.q = d.q[:mark]
		d.pushNext(ex, aerr)
		return
	}
	if t.Next == nil {
		return
	}
	if ex, aerr := d.runActions(inst, st.Exit); ex >= 0 {
		d.q = d.q[:mark]
		d.pushNext(ex, aerr)
		return
	}
	inst.state = t.Next
	inst.pubState.Store(t.Next)
	inst.armAfters(d.now)
	if d.e.opts.Trace {
		d.e.log.Debug("transition", "peer", inst.id, "from", st.Name, "to", t.Next.Name, "event", t.Event)
	}
	if ex, aerr := d.runActions(inst, t.Next.Entry); ex >= 0 {
		d.pushNext(ex, aerr)
	}
}

func (d *disp) unhandled(inst *instance, ev *EventInfo, err error) {
	switch ev.Kind {
	case KindMessage, KindMalformed:
		d.n.unhandled++
		d.cold = true
		d.e.log.Debug("unhandled message ignored", "peer", inst.id, "state", inst.state.Name, "event", ev.Name)
	case KindError:
		d.e.log.Error("unhandled error; instance terminated", "peer", inst.id, "state", inst.state.Name, "err", err)
		inst.dead = true
	case KindInternal:
		d.n.exceptions++
		d.cold = true
		d.pushNext(inst.ms.m.evError, fmt.Errorf("event %q is not handled in state %s", ev.Name, inst.state.Name))
	default: // timers and host events a state does not care about
		if d.e.opts.Trace {
			d.e.log.Debug("event ignored", "peer", inst.id, "state", inst.state.Name, "event", ev.Name)
		}
	}
}

// runActions runs an action list; on failure it returns the exception
// event to raise (>= 0) and the error.
func (d *disp) runActions(inst *instance, acts []*Action) (int, error) {
	if len(acts) == 0 {
		return -1, nil
	}
	trace := d.e.opts.Trace
	c := &d.ctx
	for _, a := range acts {
		if trace {
			d.e.log.Debug("action", "peer", inst.id, "state", inst.state.Name, "action", a.Name)
		}
		var err error
		switch a.Kind {
		case ActCall:
			c.action = a
			err = a.fn(c)
			c.action = nil
			if c.raiseErr != nil {
				if err == nil {
					err = c.raiseErr
				}
				c.raiseErr = nil
			}
		case ActSend:
			msg := inst.outMsg(a.msgIdx)
			if len(a.fields) > 0 {
				err = d.fill(inst, msg, a)
			}
			if err == nil {
				err = d.sendChecked(inst, msg) // the direction was checked at load
			}
			msg.Reset()
		case ActSet:
			err = d.set(inst, a)
		case ActLog:
			err = d.logLine(inst, a)
		case ActRaise:
			d.push(a.ev, nil, nil)
		case ActTerminate:
			inst.dead = true
		}
		if err != nil {
			return d.actionFailed(inst, a, err)
		}
	}
	return -1, nil
}

// actionFailed counts a failed action and returns the exception event to
// raise and the error.
func (d *disp) actionFailed(inst *instance, a *Action, err error) (int, error) {
	m := inst.ms.m
	d.n.exceptions++
	d.cold = true
	ex := m.evError
	var exc *Exception
	if errors.As(err, &exc) {
		if i, ok := m.eventIdx[exc.Event]; ok && m.Events[i].Kind == KindInternal {
			ex = i
		} else {
			err = fmt.Errorf("action %q raised unknown exception event %q: %w", a.Name, exc.Event, err)
		}
	}
	if ex == m.evError {
		d.e.log.Warn("action failed", "at", errAt(m, a.Pos), "peer", inst.id, "state", inst.state.Name, "action", a.Name, "err", err)
	} else if d.e.opts.Trace {
		d.e.log.Debug("action failed", "peer", inst.id, "state", inst.state.Name, "action", a.Name, "err", err, "raises", m.Events[ex].Name)
	}
	return ex, err
}

func (e *Engine) traceGuard(inst *instance, alt *Transition, ok bool, gerr error) {
	e.log.Debug("guard", "peer", inst.id, "state", inst.state.Name, "event", alt.Event, "when", alt.When, "result", ok, "err", gerr)
}

// guardFailed counts a guard that failed at run time and queues error.
func (d *disp) guardFailed(inst *instance, alt *Transition, gerr error) {
	d.n.exceptions++
	d.cold = true
	err := fmt.Errorf("guard %q of on.%s in state %s: %w", alt.When, alt.Event, alt.From.Name, gerr)
	d.e.log.Warn("guard failed", "at", errAt(inst.ms.m, alt.Pos), "peer", inst.id, "event", alt.Event, "err", err)
	d.pushNext(inst.ms.m.evError, err)
}

func (d *disp) send(inst *instance, msg codec.Message) error {
	if msg == nil {
		return fmt.Errorf("interp: send of a nil message")
	}
	mi := msg.Info()
	if mi.From&ownRole(d.e.role) == 0 {
		return fmt.Errorf("%w: a %s sending %s", ErrDirection, d.e.role, mi.Name)
	}
	return d.sendChecked(inst, msg)
}

// sendChecked encodes and sends a message this role may send. A large
// message whose last field is a chunk goes to a SplitSender as its head and
// the chunk where it lies, not copied; another large message (a chunk) is
// encoded into a buffer lent by the engine for the send only, so that
// sessions sending at once do not each keep one.
func (d *disp) sendChecked(inst *instance, msg codec.Message) error {
	if n := msg.Length(); n > keepSmall {
		if h, ok := msg.(codec.Headed); ok && d.e.sendSplit != nil {
			tail := h.Tail()
			head, err := h.AppendHead(d.buf[:0], len(tail))
			if err != nil {
				return err
			}
			d.buf = head
			return d.emit(inst, msg, head, tail)
		}
		bp := d.e.bigBuf(n)
		buf, err := msg.Append((*bp)[:0])
		if err == nil {
			*bp = buf
			err = d.emit(inst, msg, buf, nil)
		}
		d.e.big.Put(bp)
		return err
	}
	buf, err := msg.Append(d.buf[:0])
	if err != nil {
		return err
	}
	d.buf = buf
	return d.emit(inst, msg, buf, nil)
}

func (e *Engine) bigBuf(n int) *[]byte {
	if bp, ok := e.big.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, 0, n)
	return &b
}

// emit hands an encoded frame to the sender: buf, or buf then tail when
// tail is not nil (sendSplit; WireTo is nil then).
func (d *disp) emit(inst *instance, msg codec.Message, buf, tail []byte) error {
	e := d.e
	if e.opts.WireTo != nil {
		e.opts.WireTo(inst.id, FormatMessage(dirLetter(ownRole(e.role)), msg), buf)
	}
	if inst.forgotten.Load() {
		// The peer is gone: its identity may already belong to a new
		// connection, which must never receive this session's output.
		d.n.sendErr++
		d.cold = true
		return ErrForgotten
	}
	if e.batch != nil {
		if d.holding && d.held != inst.id {
			d.flushSends() // not expected: one macrostep, one peer
		}
		if d.sends++; d.sends == 2 {
			e.batch.Hold(inst.id)
			d.held, d.holding = inst.id, true
		}
	}
	var err error
	if tail != nil {
		err = e.sendSplit(inst.id, buf, tail)
	} else {
		err = e.sendFn(inst.id, buf)
	}
	if err != nil {
		d.n.sendErr++
		d.cold = true
		return err
	}
	d.n.sent++
	return nil
}
