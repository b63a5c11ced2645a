package interp

import (
	"errors"

	"github.com/fmq/fmq/internal/diag"
)

// Error is one problem found in a machine file, positioned at
// file:line:col (shared with the codec generator).
type Error = diag.Error

// ErrorList is every problem found while loading a machine, sorted by
// position (go/scanner style). Load returns it as its error.
type ErrorList = diag.ErrorList

// Exception is an action error that raises a named event (for example
// "bad-path") instead of the generic "error" event. The event must be listed
// in the action's ActionSpec.Raises.
type Exception struct {
	Event string
	Err   error
}

func (e *Exception) Error() string {
	if e.Err == nil {
		return e.Event
	}
	return e.Event + ": " + e.Err.Error()
}

func (e *Exception) Unwrap() error { return e.Err }

// Errors returned by the engine API.
var (
	ErrUnknownEvent = errors.New("interp: unknown event")
	ErrWrongRole    = errors.New("interp: machine has another role")
	ErrClosed       = errors.New("interp: engine closed")
	ErrNoPeer       = errors.New("interp: no such peer")
	ErrStepLimit    = errors.New("interp: internal step limit reached (raise loop?)")
	ErrDirection    = errors.New("interp: this role may not send that message")
)
