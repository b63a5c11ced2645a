package interp

import (
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"time"

	"github.com/fmq/fmq/codec"
)

// Role of a machine: which side of the protocol it plays.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Reserved event names.
const (
	EventExpired   = "expired"   // no inbound message for the expiry duration
	EventHeartbeat = "heartbeat" // periodic
	EventMalformed = "malformed" // a frame that failed to decode; ctx.Err() is the *codec.Error
	EventError     = "error"     // an action failed with a plain error; unhandled, it terminates
	EventOverflow  = "overflow"  // the session's mailbox overflowed; ctx.Err() is ErrOverflow; the session ends after it
	EventAny       = "*"         // handler for any protocol message (and malformed) not handled otherwise
)

// EventKind says where an event comes from.
type EventKind uint8

const (
	KindMessage   EventKind = iota + 1 // a protocol message
	KindMalformed                      // "malformed"
	KindError                          // "error"
	KindTimer                          // "expired", "heartbeat", "overflow", and state `after` events
	KindHost                           // declared in [events]: API calls, Post, Broadcast
	KindInternal                       // raised by actions
	KindWildcard                       // "*"
)

// EventInfo describes one event a machine knows.
type EventInfo struct {
	Name string
	ID   int
	Kind EventKind
	Msg  *codec.MessageInfo // for KindMessage
	// Receivable is true for a message the machine's peer may send.
	Receivable bool
	Doc        string
	Args       []string // for KindHost
}

// Machine is a loaded, checked machine: immutable, shareable by engines.
type Machine struct {
	Name     string
	Role     string
	Protocol string
	Doc      string
	File     string
	// Hash identifies the file's contents (the first 12 hex digits of its
	// SHA-256): logs name it at start and reload.
	Hash     string
	Proto    codec.Protocol
	Library  *Library
	States   []*State
	Initial  *State
	Events   []*EventInfo
	Settings []*Setting
	// Vars are the per-instance variables ([vars]), which `set` changes
	// and expressions read as vars.NAME.
	Vars []*Var
	// Expiry and Heartbeat are the machine timers (zero: off).
	Expiry, Heartbeat Duration

	stateIdx   map[string]int
	eventIdx   map[string]int
	settingIdx map[string]int
	settingsT  reflect.Type // *struct of settings, for guards
	varIdx     map[string]int
	varsT      reflect.Type // *struct of vars
	nMsgs      int          // events 0..nMsgs-1 are the protocol's messages, in Messages() order
	msgEv      [256]int     // message id -> event id
	anyEv      int
	evExpired  int
	evHeart    int
	evOverflow int
	evMalform  int
	evError    int
	maxStepsIx int
	// table[state][event] lists the alternatives to try, in order: the
	// state's own, then inherited (nearest first), then "*" likewise.
	table [][][]*Transition
}

// State is one state of a machine.
type State struct {
	Name     string
	ID       int
	Doc      string
	Pos      Pos
	Parent   *State // superstate (inherit), or nil
	Abstract bool
	Final    bool
	Entry    []*Action
	Exit     []*Action
	After    []*After
	// On holds the state's own handlers, by event name, alternatives in
	// file order. Inherited handlers are not repeated here.
	On     map[string][]*Transition
	onKeys []string // event names in file order
	row    [][]alt  // Machine.table[ID] for dispatch: alternatives by event id
}

// alt is one alternative of a dispatch-table row, its guard compiled for
// the row's state and event.
type alt struct {
	t     *Transition
	guard *guard           // nil: no guard
	fast  func(*genv) bool // the fast evaluator for this row, or nil: expr's VM
}

// Handlers returns the state's own handler event names in file order.
func (s *State) Handlers() []string { return s.onKeys }

// After is a one-shot timer armed when its state is entered.
type After struct {
	Event string
	Dur   Duration
	Pos   Pos
	ev    int
}

// Duration is a literal duration or a reference to a duration setting.
type Duration struct {
	Lit     time.Duration
	Setting string // "" for a literal
	set     int
	pos     Pos // where it is written
}

func (d Duration) String() string {
	if d.Setting != "" {
		return "settings." + d.Setting
	}
	return d.Lit.String()
}

// Transition is one guarded alternative of a handler.
type Transition struct {
	Event   string
	From    *State // the state that declares it
	Alt     int    // index among the handler's alternatives
	When    string // guard source, "" for none
	Actions []*Action
	Next    *State // nil: stay (no exit/entry)
	Doc     string
	Pos     Pos

	ev    int
	guard *guard
}

// ActionKind distinguishes built-in and Go actions.
type ActionKind uint8

const (
	ActSend ActionKind = iota + 1
	ActRaise
	ActTerminate
	ActCall
	ActSet // set NAME = EXPR
	ActLog // log LEVEL 'text', k = EXPR...
)

// Action is one entry of an action list.
type Action struct {
	Kind ActionKind
	Name string // as written
	Pos  Pos
	// Message for send, Event for raise.
	Message string
	Event   string
	Spec    *ActionSpec

	msgIdx int
	ev     int
	fn     func(*Ctx) error // Spec.Fn

	fields []*fieldSet // send: fields set from expressions; log: the line's fields
	varIdx int         // set: the variable
	value  *valueExpr  // set: the value
	level  slog.Level  // log
	text   string      // log
}

// Setting is a declared setting.
type Setting struct {
	Name    string
	Type    SettingType
	Default any // int64, time.Duration, string or bool
	Doc     string
	Pos     Pos
	// Min and Max bound an int or duration setting (durations in
	// nanoseconds); nil: unbounded. They are the machine's own `min` and
	// `max`, narrowed by what the actions that read it need.
	Min, Max *int64
	// Timer is set for a duration setting that drives a timer (the machine
	// heartbeat or expiry, an `after`): it is 0 (off) or at least TimerFloor.
	Timer bool
	// why names what set each bound, for error messages.
	minWhy, maxWhy string
	defPos         Pos // the default's position
}

// TimerFloor is the shortest timer period a machine may set: below it a
// heartbeat floods the peer (a 1ns heartbeat sends tens of thousands of
// HUGZ a second) and an expiry drops every peer at once.
const TimerFloor = time.Millisecond

// Check reports whether v (of the setting's type) is allowed: its range,
// and the timer floor.
func (s *Setting) Check(v any) error {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case time.Duration:
		n = int64(v)
	default:
		return nil
	}
	show := func(x int64) string {
		if s.Type == SettingDuration {
			return time.Duration(x).String()
		}
		return strconv.FormatInt(x, 10)
	}
	why := func(w string) string {
		if w == "" {
			return ""
		}
		return " (" + w + ")"
	}
	if s.Min != nil && n < *s.Min {
		return fmt.Errorf("%s is below the minimum %s%s", show(n), show(*s.Min), why(s.minWhy))
	}
	if s.Max != nil && n > *s.Max {
		return fmt.Errorf("%s is above the maximum %s%s", show(n), show(*s.Max), why(s.maxWhy))
	}
	if s.Timer && n != 0 && n < int64(TimerFloor) {
		return fmt.Errorf("%s is too short for a timer: 0 (off) or at least %s", show(n), TimerFloor)
	}
	return nil
}

// narrow applies a bound from a reader of the setting: the tighter wins.
func (s *Setting) narrow(min, max *int64, why string) {
	if min != nil && (s.Min == nil || *min > *s.Min) {
		v := *min
		s.Min, s.minWhy = &v, why
	}
	if max != nil && (s.Max == nil || *max < *s.Max) {
		v := *max
		s.Max, s.maxWhy = &v, why
	}
}

// DefaultMaxSteps bounds the internal events processed for one input
// (setting max_steps).
const DefaultMaxSteps = 10000

// State returns a state by name.
func (m *Machine) State(name string) (*State, bool) {
	i, ok := m.stateIdx[name]
	if !ok {
		return nil, false
	}
	return m.States[i], true
}

// Event returns an event by name.
func (m *Machine) Event(name string) (*EventInfo, bool) {
	i, ok := m.eventIdx[name]
	if !ok {
		return nil, false
	}
	return m.Events[i], true
}

// Setting returns a setting by name.
func (m *Machine) Setting(name string) (*Setting, bool) {
	i, ok := m.settingIdx[name]
	if !ok {
		return nil, false
	}
	return m.Settings[i], true
}

// Alternatives returns what is tried, in order, for event in state: own
// handlers, inherited ones, then the wildcard handlers.
func (m *Machine) Alternatives(state, event string) []*Transition {
	s, ok := m.stateIdx[state]
	e, ok2 := m.eventIdx[event]
	if !ok || !ok2 {
		return nil
	}
	return m.table[s][e]
}

// peerRole is the role of the other side.
func peerRole(role string) codec.Direction {
	if role == RoleServer {
		return codec.FromClient
	}
	return codec.FromServer
}

func ownRole(role string) codec.Direction {
	if role == RoleServer {
		return codec.FromServer
	}
	return codec.FromClient
}
