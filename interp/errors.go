package interp

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a machine file, positioned at file:line:col.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	if e.Pos.valid() {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorList is every problem found while loading a machine, sorted by
// position (go/scanner style). Load returns it as its error.
type ErrorList []*Error

func (l ErrorList) Len() int      { return len(l) }
func (l ErrorList) Swap(i, j int) { l[i], l[j] = l[j], l[i] }
func (l ErrorList) Less(i, j int) bool {
	a, b := l[i], l[j]
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Pos.Line != b.Pos.Line {
		return a.Pos.Line < b.Pos.Line
	}
	if a.Pos.Col != b.Pos.Col {
		return a.Pos.Col < b.Pos.Col
	}
	return a.Msg < b.Msg
}

// Error lists every problem, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns nil for an empty list, else the sorted, de-duplicated list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	sort.Stable(l)
	out := l[:1]
	for _, e := range l[1:] {
		last := out[len(out)-1]
		if *last != *e {
			out = append(out, e)
		}
	}
	return out
}

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
