package interp

import (
	"fmt"
	"sort"
	"strings"
)

// ActionFunc is a Go action. It runs on the engine goroutine, never
// concurrently with another action of the same engine, and must not block.
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
}

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
)
