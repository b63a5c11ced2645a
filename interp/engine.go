package interp

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"

	"github.com/fmq/fmq/codec"
)

// Sender delivers encoded frames to peers. Send must not block (queue or
// drop instead: the engine serves every peer on one goroutine) and must not
// keep body after it returns (the engine reuses the buffer).
type Sender interface {
	Send(peer string, body []byte) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(peer string, body []byte) error

// Send calls f.
func (f SenderFunc) Send(peer string, body []byte) error { return f(peer, body) }

// Frame is one received protocol frame and the identity of its sender.
type Frame struct {
	Peer string
	Body []byte
}

// Notification is what an action reports to the application with ctx.Notify.
type Notification struct {
	Peer  string
	Name  string
	Value any
}

// Options configure an engine.
type Options struct {
	Sender Sender
	// Settings override the machine's defaults, by name, as strings
	// ("5s", "1000", "true"). An unknown name or a bad value is an error.
	Settings map[string]string
	// NewPeer and Shared override the machine library's factories.
	NewPeer func(id string) any
	Shared  any
	Logger  *slog.Logger
	// Trace logs every event, guard outcome, action and transition at
	// debug level.
	Trace bool
	// Wire receives the compact line form of every message received and
	// sent ("C: NOM credit=1000 sequence=0"). It must not block.
	Wire func(line string)
	// Now is the clock (tests pass a fake one and call Tick). Default time.Now.
	Now    func() time.Time
	Limits *codec.Limits
	// NotifyBuffer is the capacity of the Notifications channel (default 1024).
	NotifyBuffer int
}

// Stats are engine counters.
type Stats struct {
	Frames        uint64 // frames received
	BadSignature  uint64 // frames without the protocol signature, dropped
	Malformed     uint64 // frames that failed to decode
	Unhandled     uint64 // messages no handler took
	Events        uint64 // events dispatched
	Sent          uint64 // frames sent
	SendErrors    uint64
	Exceptions    uint64 // failed actions and guards
	Loops         uint64 // inputs stopped by max_steps
	NotifyDropped uint64
	Instances     uint64 // live instances
}

// mstate is a machine with its resolved settings.
type mstate struct {
	m        *Machine
	settings reflect.Value // *struct, for guards
	setPtr   unsafe.Pointer
	vals     []any // by setting index
	maxSteps int
}

func resolveSettings(m *Machine, over map[string]string) (*mstate, error) {
	ms := &mstate{m: m, settings: reflect.New(m.settingsT.Elem()), vals: make([]any, len(m.Settings))}
	for i, s := range m.Settings {
		ms.vals[i] = s.Default
	}
	var errs []error
	names := make([]string, 0, len(over))
	for k := range over {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		i, ok := m.settingIdx[k]
		if !ok {
			errs = append(errs, fmt.Errorf("machine %s has no setting %q", m.Name, k))
			continue
		}
		v, err := m.Settings[i].Type.parse(over[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("setting %s: %v", k, err))
			continue
		}
		ms.vals[i] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, v := range ms.vals {
		ms.settings.Elem().Field(i).Set(reflect.ValueOf(v))
	}
	ms.setPtr = ms.settings.UnsafePointer()
	ms.maxSteps = int(ms.vals[m.maxStepsIx].(int64))
	if ms.maxSteps < 1 {
		return nil, fmt.Errorf("setting max_steps must be at least 1")
	}
	return ms, nil
}

func (ms *mstate) dur(d Duration) time.Duration {
	if d.Setting != "" {
		return ms.vals[d.set].(time.Duration)
	}
	return d.Lit
}

type queued struct {
	ev    int
	value any
	err   error
}

type command struct {
	kind  uint8
	peer  string
	event string
	value any
}

const (
	cmdPost uint8 = iota + 1
	cmdBroadcast
	cmdForget
	cmdCall
)

// Engine runs a machine: one instance per peer identity for a server, one
// instance for a client. All instances run on the goroutine that calls
// Run (or Input and Tick); Post, Broadcast, Forget, Call, Reload, Stats and
// Notifications are safe from any goroutine.
type Engine struct {
	role   string
	cur    atomic.Pointer[mstate]
	opts   Options
	log    *slog.Logger
	shared any
	proto  codec.Protocol
	sig    [2]byte
	lim    *codec.Limits

	insts  map[string]*instance
	timers timerHeap
	client *instance
	done   chan struct{}
	doneMu sync.Once

	mu   sync.Mutex
	cmds []command
	wake chan struct{}

	notify chan Notification

	// dispatch scratch, engine goroutine only
	now time.Time
	q   []queued
	qi  int
	env genv
	vm  vm.VM
	buf []byte
	ctx Ctx
	rx  []codec.Message // decode scratch by message id
	// sendFn is Options.Sender's Send.
	sendFn func(peer string, body []byte) error

	// Counters are plain fields on the engine goroutine (n), published to
	// atomics (stats) for Stats: at the end of every Input, Tick and Start
	// called directly, and under Run before it waits for input and at
	// least every publishEvery inputs while it is busy.
	n           counters
	pubN        counters // what stats holds
	inRun       bool
	coldDirty   bool // a counter other than frames, events, sent moved
	unpublished int
	stats       struct {
		frames, badSig, malformed, unhandled, events, sent, sendErr, exceptions, loops, notifyDropped, instances atomic.Uint64
	}
}

type counters struct {
	frames, badSig, malformed, unhandled, events, sent, sendErr, exceptions, loops, notifyDropped, instances uint64
}

// publishEvery bounds how many inputs Stats may lag behind while Run is busy.
const publishEvery = 64

// publish makes the engine's counters visible to Stats. Only the engine
// goroutine writes the atomics, so a store (not a read-modify-write) is
// enough; the rarely moving counters are stored only when one moved.
func (e *Engine) publish() {
	e.unpublished = 0
	n, p, s := &e.n, &e.pubN, &e.stats
	if n.frames != p.frames {
		s.frames.Store(n.frames)
	}
	if n.events != p.events {
		s.events.Store(n.events)
	}
	if n.sent != p.sent {
		s.sent.Store(n.sent)
	}
	if e.coldDirty {
		e.coldDirty = false
		s.badSig.Store(n.badSig)
		s.malformed.Store(n.malformed)
		s.unhandled.Store(n.unhandled)
		s.sendErr.Store(n.sendErr)
		s.exceptions.Store(n.exceptions)
		s.loops.Store(n.loops)
		s.notifyDropped.Store(n.notifyDropped)
		s.instances.Store(n.instances)
	}
	p.frames, p.events, p.sent = n.frames, n.events, n.sent // the only fields of pubN compared
}

// NewServer returns an engine running m (role server), one instance per peer.
func NewServer(m *Machine, opts Options) (*Engine, error) { return newEngine(m, RoleServer, opts) }

// NewClient returns an engine running m (role client), one instance.
func NewClient(m *Machine, opts Options) (*Engine, error) { return newEngine(m, RoleClient, opts) }

func newEngine(m *Machine, role string, opts Options) (*Engine, error) {
	if m.Role != role {
		return nil, fmt.Errorf("%w: %s is a %s machine", ErrWrongRole, m.Name, m.Role)
	}
	ms, err := resolveSettings(m, opts.Settings)
	if err != nil {
		return nil, err
	}
	e := &Engine{role: role, opts: opts, proto: m.Proto, insts: map[string]*instance{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	e.ctx.e = e
	e.cur.Store(ms)
	e.log = opts.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.log = e.log.With("machine", m.Name)
	if e.opts.Now == nil {
		e.opts.Now = time.Now
	}
	if e.opts.Sender == nil {
		e.opts.Sender = SenderFunc(func(string, []byte) error { return nil })
	}
	if f, ok := e.opts.Sender.(SenderFunc); ok {
		e.sendFn = f // one indirect call per frame, not two
	} else {
		e.sendFn = e.opts.Sender.Send
	}
	e.shared = opts.Shared
	if e.shared == nil && m.Library.NewShared != nil {
		e.shared = m.Library.NewShared()
	}
	n := opts.NotifyBuffer
	if n <= 0 {
		n = 1024
	}
	e.notify = make(chan Notification, n)
	e.lim = opts.Limits
	sig := m.Proto.Signature()
	e.sig = [2]byte{byte(sig >> 8), byte(sig)}
	maxID := 0
	for _, mi := range m.Proto.Messages() {
		maxID = max(maxID, int(mi.ID))
	}
	e.rx = make([]codec.Message, maxID+1)
	e.now = e.opts.Now()
	return e, nil
}

// Machine returns the machine new instances start with.
func (e *Engine) Machine() *Machine { return e.cur.Load().m }

// Reload makes new instances run m; instances already running finish on
// the machine they started with. m must have the same role and protocol.
func (e *Engine) Reload(m *Machine) error {
	old := e.cur.Load().m
	if m.Role != old.Role || m.Protocol != old.Protocol {
		return fmt.Errorf("interp: reload of %s: role and protocol must stay %s/%s", m.Name, old.Role, old.Protocol)
	}
	ms, err := resolveSettings(m, e.opts.Settings)
	if err != nil {
		return err
	}
	e.cur.Store(ms)
	return nil
}

// Notifications delivers what actions report with ctx.Notify.
func (e *Engine) Notifications() <-chan Notification { return e.notify }

// Done is closed when a client's instance has terminated.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Stats returns a snapshot of the counters. It is exact after Input, Tick
// or Start return and whenever Run is waiting for input; while Run is busy
// it may lag by up to publishEvery (64) inputs.
func (e *Engine) Stats() Stats {
	s := &e.stats
	return Stats{Frames: s.frames.Load(), BadSignature: s.badSig.Load(), Malformed: s.malformed.Load(),
		Unhandled: s.unhandled.Load(), Events: s.events.Load(), Sent: s.sent.Load(), SendErrors: s.sendErr.Load(),
		Exceptions: s.exceptions.Load(), Loops: s.loops.Load(), NotifyDropped: s.notifyDropped.Load(), Instances: s.instances.Load()}
}

// Peers lists live instance ids, sorted.
func (e *Engine) Peers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.insts))
	for id := range e.insts {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// PeerState returns the state of a peer's instance (for tests and tools;
// call it from the engine goroutine or when the engine is idle).
func (e *Engine) PeerState(peer string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, ok := e.insts[peer]
	if !ok {
		return "", false
	}
	return inst.state.Name, true
}

func (e *Engine) enqueue(c command) {
	e.mu.Lock()
	e.cmds = append(e.cmds, c)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) checkHostEvent(event string) error {
	ev, ok := e.cur.Load().m.Event(event)
	if !ok || ev.Kind != KindHost {
		return fmt.Errorf("%w: %q is not declared in [events] of %s", ErrUnknownEvent, event, e.cur.Load().m.Name)
	}
	return nil
}

// Post delivers a declared event to one peer's instance, with a value.
func (e *Engine) Post(peer, event string, value any) error {
	if err := e.checkHostEvent(event); err != nil {
		return err
	}
	e.enqueue(command{kind: cmdPost, peer: peer, event: event, value: value})
	return nil
}

// Broadcast delivers a declared event to every instance.
func (e *Engine) Broadcast(event string, value any) error {
	if err := e.checkHostEvent(event); err != nil {
		return err
	}
	e.enqueue(command{kind: cmdBroadcast, event: event, value: value})
	return nil
}

// Forget removes a peer's instance without running anything (the
// transport says the peer is gone).
func (e *Engine) Forget(peer string) { e.enqueue(command{kind: cmdForget, peer: peer}) }

// Call delivers an API command to a client's instance. args must hold
// every argument the [events] entry declares.
func (e *Engine) Call(event string, args map[string]any) error {
	if e.role != RoleClient {
		return ErrWrongRole
	}
	if err := e.checkHostEvent(event); err != nil {
		return err
	}
	ev, _ := e.cur.Load().m.Event(event)
	for _, a := range ev.Args {
		if _, ok := args[a]; !ok {
			return fmt.Errorf("interp: call %s: missing argument %q", event, a)
		}
	}
	e.enqueue(command{kind: cmdCall, event: event, value: args})
	return nil
}

// Run serves until ctx ends, in closes, or (client) the instance
// terminates. It is the engine goroutine.
func (e *Engine) Run(ctx context.Context, in <-chan Frame) error {
	e.inRun = true
	defer func() {
		e.inRun = false
		e.publish()
	}()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var armed time.Time // the deadline t is set for (zero: none, t is an hour away)
	armedOK := false    // false: reset t at the next turn
	now := e.opts.Now()
	for {
		e.tick(now)
		if e.role == RoleClient && e.client != nil && e.client.dead {
			return nil
		}
		d, _ := e.NextDeadline()
		if !armedOK || !d.Equal(armed) {
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			if !d.IsZero() {
				t.Reset(max(d.Sub(now), 0))
			} else {
				t.Reset(time.Hour)
			}
			armed, armedOK = d, true
		}
		if e.unpublished < publishEvery {
			// Busy: take a waiting frame without publishing the counters.
			select {
			case f, ok := <-in:
				if !ok {
					return nil
				}
				e.unpublished++
				e.input(f.Peer, f.Body)
				now = e.now // the input's clock read serves the next turn
				continue
			default:
			}
		}
		e.publish() // about to wait: Stats is exact while the engine is idle
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f, ok := <-in:
			if !ok {
				return nil
			}
			e.unpublished++
			e.input(f.Peer, f.Body)
			now = e.now
			continue
		case <-e.wake:
		case <-t.C:
			armedOK = false
		}
		now = e.opts.Now()
	}
}

// Start creates the client's instance and runs its initial entry actions.
// Run and Tick call it; it does nothing for a server or when done already.
func (e *Engine) Start() {
	e.start()
	if !e.inRun {
		e.publish()
	}
}

func (e *Engine) start() {
	if e.role != RoleClient || e.client != nil {
		return
	}
	e.client = e.newInstance("")
}

// NextDeadline is the earliest pending timer.
func (e *Engine) NextDeadline() (time.Time, bool) {
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return e.timers[0].next, true
}

// Tick sets the clock to now, delivers commands posted from other
// goroutines, and fires every timer due at now.
func (e *Engine) Tick(now time.Time) {
	e.tick(now)
	if !e.inRun {
		e.publish()
	}
}

func (e *Engine) tick(now time.Time) {
	e.now = now
	e.start()
	e.mu.Lock()
	cmds := e.cmds
	e.cmds = nil
	e.mu.Unlock()
	for _, c := range cmds {
		e.command(c)
	}
	for len(e.timers) > 0 && !e.timers[0].next.After(now) {
		inst := e.timers[0]
		ev, ok := inst.popDue(now)
		if !ok {
			e.rescheduleNow(inst) // a lazily kept early key: fix it now
			continue
		}
		e.macrostep(inst, ev, nil, nil, nil)
	}
}

func (e *Engine) command(c command) {
	switch c.kind {
	case cmdPost:
		if inst, ok := e.insts[c.peer]; ok {
			e.hostEvent(inst, c.event, c.value)
		} else {
			e.log.Debug("post to unknown peer dropped", "peer", c.peer, "event", c.event)
		}
	case cmdCall:
		if e.client != nil && !e.client.dead {
			e.hostEvent(e.client, c.event, c.value)
		}
	case cmdBroadcast:
		ids := make([]string, 0, len(e.insts))
		for id := range e.insts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if inst, ok := e.insts[id]; ok {
				e.hostEvent(inst, c.event, c.value)
			}
		}
	case cmdForget:
		if inst, ok := e.insts[c.peer]; ok {
			e.remove(inst, "forgotten")
		}
	}
}

func (e *Engine) hostEvent(inst *instance, event string, value any) {
	ev, ok := inst.ms.m.Event(event)
	if !ok {
		e.log.Warn("event unknown to the instance's machine (reloaded?)", "peer", inst.id, "event", event)
		return
	}
	e.macrostep(inst, ev.ID, nil, value, nil)
}

// Input processes one received frame from peer (ignored for a client).
func (e *Engine) Input(peer string, body []byte) { e.input(peer, body) }

// input handles one frame at the clock's time (the one clock read of the
// input) and, outside Run, publishes the counters.
func (e *Engine) input(peer string, body []byte) {
	e.inputFrame(peer, body)
	if !e.inRun {
		e.publish()
	}
}

func (e *Engine) inputFrame(peer string, body []byte) {
	e.now = e.opts.Now()
	e.n.frames++
	if len(body) < 2 || body[0] != e.sig[0] || body[1] != e.sig[1] {
		e.badSignature(peer, body)
		return
	}
	var inst *instance
	if e.role == RoleServer {
		if inst = e.insts[peer]; inst == nil {
			if inst = e.newInstance(peer); inst.dead {
				return
			}
		}
	} else {
		e.start()
		if inst = e.client; inst.dead {
			return
		}
	}
	m := inst.ms.m
	var msg codec.Message
	var derr error
	ev := m.evMalform
	if len(body) >= 3 && int(body[2]) < len(e.rx) {
		if msg = e.rx[body[2]]; msg == nil {
			msg = e.newRx(body[2])
		}
	}
	if msg != nil {
		if derr = msg.Decode(body, e.lim); derr == nil {
			ev = m.msgEv[body[2]]
		}
	}
	if msg == nil || derr != nil {
		derr = e.malformed(body, derr)
		msg = nil
	}
	inst.touch(e.now)
	if e.opts.Wire != nil {
		e.wireIn(msg, derr)
	}
	// macrostep, inline
	e.bind(inst, msg)
	e.step(inst, ev, nil, derr)
	e.drain(inst, 1)
}

func (e *Engine) badSignature(peer string, body []byte) {
	e.n.badSig++
	e.coldDirty = true
	if e.opts.Trace {
		e.log.Debug("frame without signature dropped", "peer", peer, "len", len(body))
	}
}

// newRx makes the decode scratch message of a message id (nil if the
// protocol has no such message).
func (e *Engine) newRx(id byte) codec.Message {
	mi, ok := e.proto.ByID(id)
	if !ok {
		return nil
	}
	msg := mi.New()
	e.rx[id] = msg
	return msg
}

// malformed counts a frame that did not decode and returns the protocol's
// error for it.
func (e *Engine) malformed(body []byte, derr error) error {
	if _, err := e.proto.Decode(body, e.lim); err != nil {
		derr = err
	}
	e.n.malformed++
	e.coldDirty = true
	return derr
}

func (e *Engine) wireIn(msg codec.Message, derr error) {
	if msg != nil {
		e.opts.Wire(FormatMessage(dirLetter(peerRole(e.role)), msg))
	} else {
		e.opts.Wire(dirLetter(peerRole(e.role)) + ": malformed " + fmt.Sprint(derr))
	}
}

func dirLetter(d codec.Direction) string {
	if d == codec.FromClient {
		return "C"
	}
	return "S"
}

func (e *Engine) newInstance(id string) *instance {
	ms := e.cur.Load()
	m := ms.m
	inst := &instance{id: id, ms: ms, state: m.Initial, heapIdx: -1}
	if m.Library.NewPeer != nil {
		inst.peer = m.Library.NewPeer(id)
	}
	if e.opts.NewPeer != nil {
		inst.peer = e.opts.NewPeer(id)
	}
	inst.setExpiry(e.now, ms.dur(m.Expiry))
	inst.setHeartbeat(e.now, ms.dur(m.Heartbeat))
	inst.armAfters(e.now)
	e.mu.Lock()
	if e.role == RoleServer {
		e.insts[id] = inst
	}
	e.mu.Unlock()
	e.n.instances++
	e.coldDirty = true
	if e.opts.Trace {
		e.log.Debug("instance created", "peer", id, "state", m.Initial.Name)
	}
	if len(m.Initial.Entry) > 0 {
		e.bind(inst, nil)
		c := &e.ctx
		c.evID, c.value, c.err = -1, nil, nil // entry of the initial state runs under no event: ctx.Event() is ""
		if ex, err := e.runActions(inst, m.Initial.Entry); ex >= 0 {
			e.push(ex, nil, err)
		}
		e.drain(inst, 0)
	} else {
		e.reschedule(inst)
	}
	return inst
}

func (e *Engine) remove(inst *instance, why string) {
	if inst.removed {
		return
	}
	inst.removed = true
	inst.dead = true
	if e.ctx.inst == inst {
		e.ctx.inst, e.ctx.msg = nil, nil
	}
	if e.env.inst == inst {
		e.env = genv{}
	}
	if inst.heapIdx >= 0 {
		heap.Remove(&e.timers, inst.heapIdx)
	}
	e.mu.Lock()
	if e.insts[inst.id] == inst {
		delete(e.insts, inst.id)
	}
	e.mu.Unlock()
	e.n.instances--
	e.coldDirty = true
	if c, ok := inst.peer.(io.Closer); ok {
		// The peer value owns resources (an open file): free them now.
		if err := c.Close(); err != nil {
			e.log.Warn("closing peer state failed", "peer", inst.id, "err", err)
		}
	}
	if e.opts.Trace {
		e.log.Debug("instance ended", "peer", inst.id, "why", why, "state", inst.state.Name)
	}
	if inst == e.client {
		e.doneMu.Do(func() { close(e.done) })
	}
}

// reschedule updates the instance's place in the timer heap. A deadline
// that only moved later (the expiry, pushed back by every message) keeps
// its earlier key: Tick finds nothing due then and fixes it. This keeps the
// heap out of the per-message path.
func (e *Engine) reschedule(inst *instance) {
	if inst.removed || !inst.timersSet && inst.heapIdx >= 0 {
		return
	}
	inst.timersSet = false
	next := inst.nextDeadline()
	if inst.heapIdx >= 0 && !next.IsZero() && !next.Before(inst.next) {
		return
	}
	e.place(inst, next)
}

func (e *Engine) rescheduleNow(inst *instance) {
	if !inst.removed {
		inst.timersSet = false
		e.place(inst, inst.nextDeadline())
	}
}

func (e *Engine) place(inst *instance, next time.Time) {
	switch {
	case next.IsZero() && inst.heapIdx >= 0:
		heap.Remove(&e.timers, inst.heapIdx)
	case next.IsZero():
	case inst.heapIdx >= 0:
		inst.next = next
		heap.Fix(&e.timers, inst.heapIdx)
	default:
		inst.next = next
		heap.Push(&e.timers, inst)
	}
}

// ---- run to completion ----

func (e *Engine) resetQueue() {
	clear(e.q)
	e.q = e.q[:0]
	e.qi = 0
}

func (e *Engine) push(ev int, v any, err error) {
	e.q = append(e.q, queued{ev: ev, value: v, err: err})
}

// pushNext queues an exception event before every pending one.
func (e *Engine) pushNext(ev int, err error) {
	e.q = append(e.q, queued{})
	copy(e.q[e.qi+1:], e.q[e.qi:])
	e.q[e.qi] = queued{ev: ev, err: err}
}

// bind points the action context at inst and the input's message, once
// per macrostep; step sets only what changes per event, and the guard
// inputs are filled only when a guard runs.
func (e *Engine) bind(inst *instance, msg codec.Message) {
	c := &e.ctx
	c.inst, c.msg = inst, msg
}

// unbind drops the references to values the context holds after a
// macrostep (the instance and message stay: they are replaced by the next).
func (e *Engine) unbind() {
	c := &e.ctx
	if c.value != nil || c.err != nil {
		c.value, c.err = nil, nil
	}
	if g := &e.env; g.value != nil {
		g.value = nil
	}
}

// macrostep handles one input and every internal event it raises. The
// input's own event does not go through the queue.
func (e *Engine) macrostep(inst *instance, ev int, msg codec.Message, value any, err error) {
	e.bind(inst, msg)
	e.step(inst, ev, value, err)
	e.drain(inst, 1)
}

// drain handles the queued events (steps have been taken already), then
// removes or reschedules the instance.
func (e *Engine) drain(inst *instance, steps int) {
	if e.qi < len(e.q) {
		ms := inst.ms
		for e.qi < len(e.q) && !inst.dead {
			it := e.q[e.qi]
			e.qi++
			steps++
			if steps > ms.maxSteps {
				e.n.loops++
				e.coldDirty = true
				e.log.Error("input stopped: internal step limit reached; instance terminated", "peer", inst.id,
					"state", inst.state.Name, "event", ms.m.Events[it.ev].Name, "max_steps", ms.maxSteps)
				inst.dead = true
				break
			}
			e.step(inst, it.ev, it.value, it.err)
		}
	}
	if len(e.q) > 0 {
		e.resetQueue()
	}
	e.unbind()
	if inst.dead {
		e.remove(inst, "terminated")
		return
	}
	if !inst.timersSet && inst.heapIdx >= 0 {
		return // no deadline moved earlier (reschedule's first test, inline)
	}
	e.reschedule(inst)
}

func (e *Engine) step(inst *instance, evID int, value any, err error) {
	st := inst.state
	e.n.events++
	c := &e.ctx
	c.evID, c.value, c.err = evID, value, err
	alts := st.row[evID]
	var t *Transition
	if len(alts) > 0 && alts[0].guard == nil {
		t = alts[0].t // the common case: one alternative, no guard
	} else if len(alts) > 0 {
		g := &e.env
		if g.inst != inst { // the guard inputs of another instance: rebind
			g.inst, g.peer, g.settings, g.setPtr = inst, inst.peer, inst.ms.settings, inst.ms.setPtr
		}
		// state and event are literals in the row's fast guards: only the
		// VM reads them (g.st, g.ev are set for it).
		g.msg, g.value = c.msg, value
		for i := range alts {
			alt := &alts[i]
			if alt.guard == nil {
				t = alt.t
				break
			}
			var ok bool
			var gerr error
			if f := alt.fast; f != nil { // guard.eval, inline
				g.bad = 0
				ok = f(g)
				if g.bad != 0 {
					ok, gerr = false, guardErr[g.bad]
				}
			} else {
				g.st, g.ev = st, inst.ms.m.Events[evID]
				ok, gerr = alt.guard.eval(g, &e.vm)
			}
			if e.opts.Trace {
				e.traceGuard(inst, alt.t, ok, gerr)
			}
			if gerr != nil {
				e.guardFailed(inst, alt.t, gerr)
				return
			}
			if ok {
				t = alt.t
				break
			}
		}
	}
	if e.opts.Trace {
		e.log.Debug("event", "peer", inst.id, "state", st.Name, "event", inst.ms.m.Events[evID].Name, "handled", t != nil)
	}
	if t == nil {
		e.unhandled(inst, inst.ms.m.Events[evID], err)
		return
	}
	mark := len(e.q)
	if ex, aerr := e.runActions(inst, t.Actions); ex >= 0 {
		e.q = e.q[:mark]
		e.pushNext(ex, aerr)
		return
	}
	if t.Next == nil {
		return
	}
	if ex, aerr := e.runActions(inst, st.Exit); ex >= 0 {
		e.q = e.q[:mark]
		e.pushNext(ex, aerr)
		return
	}
	inst.state = t.Next
	inst.armAfters(e.now)
	if e.opts.Trace {
		e.log.Debug("transition", "peer", inst.id, "from", st.Name, "to", t.Next.Name, "event", t.Event)
	}
	if ex, aerr := e.runActions(inst, t.Next.Entry); ex >= 0 {
		e.pushNext(ex, aerr)
	}
}

func (e *Engine) unhandled(inst *instance, ev *EventInfo, err error) {
	switch ev.Kind {
	case KindMessage, KindMalformed:
		e.n.unhandled++
		e.coldDirty = true
		e.log.Debug("unhandled message ignored", "peer", inst.id, "state", inst.state.Name, "event", ev.Name)
	case KindError:
		e.log.Error("unhandled error; instance terminated", "peer", inst.id, "state", inst.state.Name, "err", err)
		inst.dead = true
	case KindInternal:
		e.n.exceptions++
		e.coldDirty = true
		e.pushNext(inst.ms.m.evError, fmt.Errorf("event %q is not handled in state %s", ev.Name, inst.state.Name))
	default: // timers and host events a state does not care about
		if e.opts.Trace {
			e.log.Debug("event ignored", "peer", inst.id, "state", inst.state.Name, "event", ev.Name)
		}
	}
}

// runActions runs an action list; on failure it returns the exception
// event to raise (>= 0) and the error.
func (e *Engine) runActions(inst *instance, acts []*Action) (int, error) {
	if len(acts) == 0 {
		return -1, nil
	}
	trace := e.opts.Trace
	c := &e.ctx
	for _, a := range acts {
		if trace {
			e.log.Debug("action", "peer", inst.id, "state", inst.state.Name, "action", a.Name)
		}
		var err error
		switch a.Kind {
		case ActCall:
			c.action = a
			err = a.fn(c)
			if c.raiseErr != nil {
				if err == nil {
					err = c.raiseErr
				}
				c.raiseErr = nil
			}
		case ActSend:
			msg := inst.outMsg(a.msgIdx)
			err = e.sendChecked(inst, msg) // the direction was checked at load
			msg.Reset()
		case ActRaise:
			e.push(a.ev, nil, nil)
		case ActTerminate:
			inst.dead = true
		}
		if err != nil {
			return e.actionFailed(inst, a, err)
		}
	}
	return -1, nil
}

// actionFailed counts a failed action and returns the exception event to
// raise and the error.
func (e *Engine) actionFailed(inst *instance, a *Action, err error) (int, error) {
	m := inst.ms.m
	e.n.exceptions++
	e.coldDirty = true
	ex := m.evError
	var exc *Exception
	if errors.As(err, &exc) {
		if i, ok := m.eventIdx[exc.Event]; ok && m.Events[i].Kind == KindInternal {
			ex = i
		} else {
			err = fmt.Errorf("action %q raised unknown exception event %q: %w", a.Name, exc.Event, err)
		}
	}
	if e.opts.Trace || ex == m.evError {
		e.log.Debug("action failed", "peer", inst.id, "state", inst.state.Name, "action", a.Name, "err", err, "raises", m.Events[ex].Name)
	}
	return ex, err
}

func (e *Engine) traceGuard(inst *instance, alt *Transition, ok bool, gerr error) {
	e.log.Debug("guard", "peer", inst.id, "state", inst.state.Name, "event", alt.Event, "when", alt.When, "result", ok, "err", gerr)
}

// guardFailed counts a guard that failed at run time and queues error.
func (e *Engine) guardFailed(inst *instance, alt *Transition, gerr error) {
	e.n.exceptions++
	e.coldDirty = true
	e.pushNext(inst.ms.m.evError, fmt.Errorf("guard %q of on.%s in state %s: %w", alt.When, alt.Event, alt.From.Name, gerr))
}

func (e *Engine) send(inst *instance, msg codec.Message) error {
	if msg == nil {
		return fmt.Errorf("interp: send of a nil message")
	}
	mi := msg.Info()
	if mi.From&ownRole(e.role) == 0 {
		return fmt.Errorf("%w: a %s sending %s", ErrDirection, e.role, mi.Name)
	}
	return e.sendChecked(inst, msg)
}

// sendChecked encodes and sends a message this role may send.
func (e *Engine) sendChecked(inst *instance, msg codec.Message) error {
	buf, err := msg.Append(e.buf[:0])
	if err != nil {
		return err
	}
	e.buf = buf
	if e.opts.Wire != nil {
		e.opts.Wire(FormatMessage(dirLetter(ownRole(e.role)), msg))
	}
	if err := e.sendFn(inst.id, buf); err != nil {
		e.n.sendErr++
		e.coldDirty = true
		return err
	}
	e.n.sent++
	return nil
}

func (e *Engine) notifyApp(n Notification) {
	select {
	case e.notify <- n:
	default:
		e.n.notifyDropped++
		e.coldDirty = true
		e.log.Warn("notification dropped: application not reading", "name", n.Name, "peer", n.Peer)
	}
}
