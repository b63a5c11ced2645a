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

	"github.com/fmq/fmq/codec"
)

// Sender delivers encoded frames to peers. Send must not block for long
// (queue or drop instead), must not keep body after it returns (the engine
// reuses the buffer), and must be safe for concurrent use: under Run, the
// sessions of a server send from their own goroutines.
type Sender interface {
	Send(peer string, body []byte) error
}

// SplitSender is a Sender that can also send a frame given in two parts,
// head then tail, without joining them (a large message whose last field,
// a chunk, is written where it lies: codec.Headed). The rules of Send hold
// for both parts.
type SplitSender interface {
	Sender
	SendSplit(peer string, head, tail []byte) error
}

// Batcher is a Sender that can hold what is sent to a peer back and write
// it together: the engine calls Hold(peer) before the second message one
// macrostep sends to peer, and Flush(peer) once that macrostep is over
// (also when it ends in a panic), so a burst (a dispatch of many small
// files) leaves in a few writes instead of one each. A macrostep that
// sends one message never holds. Every Hold is followed by a Flush.
type Batcher interface {
	Hold(peer string)
	Flush(peer string)
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
	// WireTo, when set, is Wire with the peer identity ("" for a client's
	// server) and the encoded frame (valid only during the call), for
	// traces that name the peer or dump the bytes. It replaces Wire.
	WireTo func(peer, line string, body []byte)
	// Now is the clock (tests pass a fake one and call Tick). Default time.Now.
	Now    func() time.Time
	Limits *codec.Limits
	// NotifyBuffer is the capacity of the Notifications channel (default 1024).
	// With 128 or more, a client's Run hands notifications over in batches
	// of up to 64 (Ctx.Notify); with less, one at a time.
	NotifyBuffer int
	// Mailbox bounds the inputs waiting for one session under Run (frames,
	// posted and broadcast events, results of off-dispatch work). A session
	// whose mailbox overflows is ended (it cannot keep up, or its peer
	// floods). Default DefaultMailbox.
	Mailbox int
	// MaxSessions caps the established sessions of a server (0: no cap). A
	// frame from a new peer beyond it is dropped and counted
	// (Stats.Refused); Refuse, if set, is told the peer first.
	MaxSessions int
	// Refuse is called (on the delivering goroutine) for a peer refused by
	// MaxSessions, so that the host can answer or cut it.
	Refuse func(peer string)
}

// DefaultMailbox is the default Options.Mailbox.
const DefaultMailbox = 4096

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
	Panics        uint64 // actions and guards that panicked (each ended its session)
	Overflows     uint64 // sessions ended because their mailbox overflowed
	Refused       uint64 // new sessions refused by MaxSessions
}

// mstate is a machine with its resolved settings.
type mstate struct {
	m        *Machine
	settings reflect.Value // *struct, for guards
	vals     []any         // by setting index
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
		if err == nil {
			err = m.Settings[i].Check(v)
		}
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

type command struct {
	kind  uint8
	peer  string
	event string
	value any
	body  []byte // cmdFrame
	// release gives body back once handled (DeliverOwned); nil: none.
	release func()
}

const (
	cmdPost uint8 = iota + 1
	cmdBroadcast
	cmdForget
	cmdCall
	cmdFrame // a client's frame, in order with its calls
)

// clientBacklog bounds the frames delivered to a client and not yet taken
// by its Run: beyond it Deliver waits (backpressure to the connection).
const clientBacklog = 64

// Engine runs a machine: one instance per peer identity for a server, one
// instance for a client.
//
// Two ways to drive it. Without Run, everything happens on the goroutine
// that calls Input and Tick (tests drive time by hand this way). Under Run,
// a server's instances run concurrently, each on its own goroutine while it
// has input, one input at a time and in order (spec/machines.md section 11);
// Deliver, Post, Broadcast, Forget, Call, Reload, Stats and Notifications
// are safe from any goroutine.
type Engine struct {
	role   string
	cur    atomic.Pointer[mstate]
	opts   Options
	log    *slog.Logger
	shared any
	proto  codec.Protocol
	sig    [2]byte
	lim    *codec.Limits
	sd     *disp     // the dispatcher of Input, Tick and a client's Run
	pool   sync.Pool // dispatchers of the session goroutines
	big    sync.Pool // *[]byte: encode buffers of large messages, lent per send

	// mu guards insts, cmds, ready, live, closed, and every push into a
	// mailbox (so the routing of a peer's inputs is ordered).
	mu    sync.Mutex
	insts map[string]*instance
	cmds  []command
	spare []command   // tick's emptied cmds, for the next batch
	ready []*instance // without Run: instances with mailbox input, for Input and Tick
	// hasReady is len(ready) > 0, read without the lock by Input.
	hasReady atomic.Bool
	live     bool // Run serves: mailboxes have session goroutines
	closed   bool // Run returned: nothing more is delivered
	wg       sync.WaitGroup

	// tmu guards the timer heap (instance.next, instance.heapIdx).
	tmu    sync.Mutex
	timers timerHeap
	due    []*instance // scheduler scratch

	client *instance
	done   chan struct{}
	doneMu sync.Once
	wake   chan struct{}
	// A client's delivered frames wait in cmds: backlog counts them (mu),
	// room is signalled when Run takes them, stopped closes when Run returns.
	backlog  int
	room     chan struct{}
	stopped  chan struct{}
	departed bool // a client's Forget was handled: Run returns ErrForgotten

	bg       context.Context // cancelled when Run returns: off-dispatch work
	bgCancel context.CancelFunc

	notify chan Notification
	// sendFn is Options.Sender's Send; sendSplit its SendSplit, nil when
	// it has none or WireTo needs whole frames.
	sendFn    func(peer string, body []byte) error
	sendSplit func(peer string, head, tail []byte) error
	batch     Batcher // Options.Sender's, if it is one

	inRun bool // the engine goroutine is in Run (client, or server scheduler)
	// stats: the session goroutines add their counts here; sdStats is
	// what the engine's own dispatcher (sd) has counted, stored (a plain
	// store is cheaper than an add on the per-input path of Input).
	stats   statSet
	sdStats statSet
}

type statSet struct {
	frames, badSig, malformed, unhandled, events, sent, sendErr, exceptions, loops, notifyDropped, instances atomic.Uint64
	panics, overflows, refused                                                                               atomic.Uint64
}

type counters struct {
	frames, badSig, malformed, unhandled, events, sent, sendErr, exceptions, loops, notifyDropped uint64
}

// publishEvery bounds how many inputs Stats may lag behind while a
// dispatcher is busy.
const publishEvery = 64

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
	e := &Engine{role: role, opts: opts, proto: m.Proto, insts: map[string]*instance{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
		room: make(chan struct{}, 1), stopped: make(chan struct{})}
	e.cur.Store(ms)
	e.log = opts.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.log = e.log.With("machine", m.Name)
	if e.opts.Now == nil {
		e.opts.Now = time.Now
	}
	if w := e.opts.Wire; w != nil && e.opts.WireTo == nil {
		e.opts.WireTo = func(_, line string, _ []byte) { w(line) }
	}
	if e.opts.Mailbox <= 0 {
		e.opts.Mailbox = DefaultMailbox
	}
	if e.opts.Sender == nil {
		e.opts.Sender = SenderFunc(func(string, []byte) error { return nil })
	}
	if f, ok := e.opts.Sender.(SenderFunc); ok {
		e.sendFn = f // one indirect call per frame, not two
	} else {
		e.sendFn = e.opts.Sender.Send
	}
	if ss, ok := e.opts.Sender.(SplitSender); ok && e.opts.WireTo == nil {
		e.sendSplit = ss.SendSplit
	}
	e.batch, _ = e.opts.Sender.(Batcher)
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
	e.bg, e.bgCancel = context.WithCancel(context.Background())
	e.pool.New = func() any { return e.newDisp() }
	e.sd = e.newDisp()
	e.sd.own = true
	e.sd.now = e.opts.Now()
	return e, nil
}

// Machine returns the machine new instances start with.
func (e *Engine) Machine() *Machine { return e.cur.Load().m }

// SplitSends reports whether a large message whose last field is a chunk
// reaches the Sender through SplitSender.SendSplit, its chunk as the tail
// (the Sender is a SplitSender and no WireTo or Wire trace wants whole
// frames).
func (e *Engine) SplitSends() bool { return e.sendSplit != nil }

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
// or Start return and whenever the engine is idle; while sessions are busy
// it may lag by up to publishEvery (64) inputs per session.
func (e *Engine) Stats() Stats {
	s, o := &e.stats, &e.sdStats
	return Stats{Frames: s.frames.Load() + o.frames.Load(), BadSignature: s.badSig.Load() + o.badSig.Load(),
		Malformed: s.malformed.Load() + o.malformed.Load(), Unhandled: s.unhandled.Load() + o.unhandled.Load(),
		Events: s.events.Load() + o.events.Load(), Sent: s.sent.Load() + o.sent.Load(), SendErrors: s.sendErr.Load() + o.sendErr.Load(),
		Exceptions: s.exceptions.Load() + o.exceptions.Load(), Loops: s.loops.Load() + o.loops.Load(),
		NotifyDropped: s.notifyDropped.Load() + o.notifyDropped.Load(), Instances: s.instances.Load(),
		Panics: s.panics.Load(), Overflows: s.overflows.Load(), Refused: s.refused.Load()}
}

// Peers lists live instance ids, sorted.
func (e *Engine) Peers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.insts))
	for id, inst := range e.insts {
		inst.mu.Lock()
		gone := inst.gone // a session ended by an overflow, until its peer is forgotten
		inst.mu.Unlock()
		if !gone {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// PeerState returns the state of a peer's instance (safe from any
// goroutine; under Run it may be a step behind a busy session).
func (e *Engine) PeerState(peer string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, ok := e.insts[peer]
	if !ok {
		return "", false
	}
	return inst.pubState.Load().Name, true
}

func (e *Engine) enqueue(c command) {
	e.mu.Lock()
	if e.live {
		e.route(c)
		e.mu.Unlock()
		return
	}
	if !e.closed {
		e.cmds = append(e.cmds, c)
	}
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

// Forget ends a peer's instance without running its machine (the
// transport says the peer is gone): frames delivered for the peer before
// Forget reach that instance; frames delivered after it start a new one.
// For a client, Forget says the connection is gone: Run handles the
// frames and calls delivered before it and returns ErrForgotten (a host
// that redials tells its machine with a Call of its own instead).
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

// Start creates the client's instance and runs its initial entry actions.
// Run and Tick call it; it does nothing for a server or when done already.
func (e *Engine) Start() {
	e.sd.start()
	if !e.inRun {
		e.sd.publish()
	}
}

// NextDeadline is the earliest pending timer.
func (e *Engine) NextDeadline() (time.Time, bool) {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	if len(e.timers) == 0 {
		return time.Time{}, false
	}
	return e.timers[0].next, true
}

// Tick sets the clock to now, delivers commands posted from other
// goroutines and the results of off-dispatch work, and fires every timer
// due at now. It is for an engine driven without Run.
func (e *Engine) Tick(now time.Time) {
	e.sd.tick(now)
	if !e.inRun {
		e.sd.publish()
	}
}

// Input processes one received frame from peer (ignored for a client) on
// the calling goroutine. It is for an engine driven without Run.
func (e *Engine) Input(peer string, body []byte) {
	d := e.sd
	d.now = e.opts.Now()
	d.input(peer, body)
	if e.hasReady.Load() {
		d.runReady()
	}
	if !e.inRun {
		d.publish()
	}
}

func dirLetter(d codec.Direction) string {
	if d == codec.FromClient {
		return "C"
	}
	return "S"
}

// place puts inst in the timer heap at next (zero: out of it) and wakes
// the scheduler when it became the earliest.
func (e *Engine) place(inst *instance, next time.Time) {
	e.tmu.Lock()
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
	first := inst.heapIdx == 0
	e.tmu.Unlock()
	inst.armed, inst.armedAt = !next.IsZero(), next
	if first && e.role == RoleServer {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

func (e *Engine) unplace(inst *instance) {
	e.tmu.Lock()
	if inst.heapIdx >= 0 {
		heap.Remove(&e.timers, inst.heapIdx)
	}
	e.tmu.Unlock()
	inst.armed = false
}

func (e *Engine) notifyApp(d *disp, n Notification) {
	if d.holdNotes {
		d.notes = append(d.notes, n)
		if len(d.notes) >= notesBatch {
			e.flushNotes(d)
		}
		return
	}
	e.sendNote(d, n)
}

// notesBatch bounds the notifications a busy client dispatcher holds
// (disp.holdNotes).
const notesBatch = 64

// flushNotes hands the held notifications over, in order.
func (e *Engine) flushNotes(d *disp) {
	if len(d.notes) == 0 {
		return
	}
	for i := range d.notes {
		e.sendNote(d, d.notes[i])
	}
	clear(d.notes)
	d.notes = d.notes[:0]
}

func (e *Engine) sendNote(d *disp, n Notification) {
	select {
	case e.notify <- n:
	default:
		d.n.notifyDropped++
		d.cold = true
		e.log.Warn("notification dropped: application not reading", "name", n.Name, "peer", n.Peer)
	}
}

// closePeer frees what a removed instance's peer value holds (an open
// file, a partial download), containing a panic of its Close.
func (e *Engine) closePeer(inst *instance) {
	c, ok := inst.peer.(io.Closer)
	if !ok {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			e.stats.panics.Add(1)
			e.log.Error("closing peer state panicked", "peer", inst.id, "panic", r)
		}
	}()
	if err := c.Close(); err != nil {
		e.log.Warn("closing peer state failed", "peer", inst.id, "err", err)
	}
}

// errAt formats a machine position for logs: file:line:col.
func errAt(m *Machine, p Pos) string {
	return fmt.Sprintf("%s:%d:%d", m.File, p.Line, p.Col)
}
