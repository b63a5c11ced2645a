package interp

import (
	"fmt"
	"sort"
	"strings"
)

// ActionFunc is a Go action. It never runs concurrently with another
// action of the same instance; actions of different instances (sessions of
// a server under Run) run concurrently (spec/machines.md section 11). It
// must not block: slow work goes to ctx.Go, long work is sliced with
// ctx.Later.
// A nil return continues the action list. An *Exception raises its event;
// any other error raises "error". Either way the rest of the list is
// skipped and the transition's next state is not applied.
type ActionFunc func(ctx *Ctx) error

// ActionSpec is a registered action with its metadata.
type ActionSpec struct {
	Fn  ActionFunc
	Doc string
	// Raises lists every event the action may raise: with ctx.Raise, with
	// ctx.Wakeup, or as an *Exception. The checker uses it to prove that
	// every raised event is handled; raising an unlisted event at run time
	// is an error.
	Raises []string

	// The rest is the action's contract, which the checker holds every
	// machine to (and `fmqrun actions` prints).

	// Accepts lists the events the action may be bound to: the messages
	// whose fields it reads from ctx.Msg() and the host or internal events
	// whose value it reads. Empty: any event (it reads neither). An action
	// with Accepts may not be bound to "*" or used in entry/exit lists.
	Accepts []string
	// Sends lists the messages the action sends itself (ctx.Send).
	Sends []string
	// Fills lists the messages the action fills (ctx.Out) for a `send` of
	// the same message later in its action list, or, when it fails with a
	// raised event, in that event's handler.
	Fills []string
	// Reads lists the settings the action reads (ctx.Int, ctx.Duration,
	// ...), with their type and the range the action needs.
	Reads []SettingUse
}

// SettingUse is one setting an action reads: the machine must declare it
// with that type; Min and Max (nil: none) narrow the values it accepts, at
// load, --set, config and reload alike. Durations count in nanoseconds.
type SettingUse struct {
	Name     string
	Type     SettingType
	Min, Max *int64
	Why      string // what the range protects, for the error message
}

// Int64 returns a pointer to v, for SettingUse.Min and Max.
func Int64(v int64) *int64 { return &v }

// Actions maps action names (short phrases, "store client credit") to specs.
type Actions map[string]ActionSpec

// MergeActions combines several action maps; a name defined twice is an error.
func MergeActions(maps ...Actions) (Actions, error) {
	out := Actions{}
	var dups []string
	for _, m := range maps {
		for k, v := range m {
			if _, dup := out[k]; dup {
				dups = append(dups, k)
				continue
			}
			out[k] = v
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return out, fmt.Errorf("interp: actions defined twice: %s", strings.Join(dups, ", "))
	}
	return out, nil
}

// Library is what a host program provides for the machines of one protocol
// and role: the Go actions, the per-peer and shared values handed to them.
type Library struct {
	Actions Actions
	// PeerType is a sample value (typically a typed nil pointer, such as
	// (*MyPeer)(nil)) whose type is what guards see as `peer`, so that
	// `peer.Credit` is checked when the machine loads. Nil means any.
	PeerType any
	// NewPeer creates the per-instance value (ctx.Peer()) for a new peer
	// identity. Nil gives a nil value. Engine options may override it.
	NewPeer func(id string) any
	// NewShared creates the per-engine value (ctx.Shared()).
	NewShared func() any
}

// builtin action verbs.
const (
	verbSend      = "send"
	verbRaise     = "raise"
	verbTerminate = "terminate"
	verbSet       = "set" // set NAME = EXPR (a Go action may still be called "set up")
	verbLog       = "log" // log LEVEL 'text' (a Go action may still be called "log departure")
)
