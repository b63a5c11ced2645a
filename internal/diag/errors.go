// Package diag holds what the machine loader (interp) and the codec
// generator (internal/codecgen) share to report problems in their TOML
// source files: positioned errors, their sorted list, and an index of
// where each key and value of a TOML document starts.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a file: 1-based line and byte column. The zero Pos
// is unknown.
type Pos struct {
	Line, Col int
}

// Valid reports whether the position is known.
func (p Pos) Valid() bool { return p.Line > 0 }

// Error is one problem found in a file, positioned at file:line:col.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case !e.Pos.Valid():
		return e.File + ": " + e.Msg
	case e.Pos.Col == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Pos.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every problem found in a file, sorted by position
// (go/scanner style). Its Error method prints one per line.
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

// Sort sorts the list by position and removes exact duplicates.
func (l *ErrorList) Sort() {
	sort.Stable(*l)
	out := (*l)[:0]
	for i, e := range *l {
		if i > 0 && *e == *(*l)[i-1] {
			continue
		}
		out = append(out, e)
	}
	*l = out
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
	l.Sort()
	return l
}
