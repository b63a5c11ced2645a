package codecgen

import (
	"fmt"

	"github.com/fmq/fmq/internal/diag"
)

// Pos is where a part of the model (a message, a field, an example) is
// defined.
type Pos struct {
	File string
	Line int // 1-based; 0 means unknown
	Col  int // 1-based
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// errorAt is the problem msg at p.
func errorAt(p Pos, msg string) *Error {
	return &Error{File: p.File, Pos: diag.Pos{Line: p.Line, Col: p.Col}, Msg: msg}
}

// Error is one problem found in a model, at a position (shared with the
// machine loader).
type Error = diag.Error

// ErrorList is every problem found in a model, sorted by position (in the
// style of go/scanner.ErrorList). Its Error method prints one per line.
type ErrorList = diag.ErrorList
