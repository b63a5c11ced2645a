// Package exclude matches paths against rsync-like exclude patterns, the
// syntax of fmqrun serve --exclude and fmqrun sync --exclude.
//
// A pattern without "/" matches a name at any depth; one starting with
// "/", or holding a "/", matches the whole slash path from the root (the
// published directory, or the inbox); a trailing "/" matches directories
// only. Wildcards as path.Match: *, ?, [...]. What lies under an excluded
// directory is excluded too.
package exclude

import (
	"fmt"
	"path"
	"strings"
)

type pattern struct {
	pat      string
	anchored bool
	dirOnly  bool
}

// Matcher is a compiled list of patterns. The zero Matcher (and nil)
// excludes nothing.
type Matcher struct {
	pats []pattern
}

// Compile checks and compiles patterns.
func Compile(pats []string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range pats {
		e := pattern{pat: p}
		if strings.HasSuffix(e.pat, "/") {
			e.dirOnly, e.pat = true, strings.TrimRight(e.pat, "/")
		}
		if strings.Contains(e.pat, "/") {
			e.anchored, e.pat = true, strings.TrimPrefix(e.pat, "/")
		}
		if e.pat == "" {
			return nil, fmt.Errorf("exclude pattern %q: empty", p)
		}
		if _, err := path.Match(e.pat, ""); err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %v", p, err)
		}
		m.pats = append(m.pats, e)
	}
	return m, nil
}

// Empty reports whether m excludes nothing.
func (m *Matcher) Empty() bool { return m == nil || len(m.pats) == 0 }

// Match reports whether one file or directory (rel: its slash path from
// the root, no leading "/"; its parents are not looked at) is excluded.
func (m *Matcher) Match(rel string, dir bool) bool {
	if m == nil {
		return false
	}
	name := path.Base(rel)
	for _, e := range m.pats {
		if e.dirOnly && !dir {
			continue
		}
		subject := name
		if e.anchored {
			subject = rel
		}
		if ok, _ := path.Match(e.pat, subject); ok {
			return true
		}
	}
	return false
}

// MatchPath reports whether a file (rel: its slash path from the root,
// with or without a leading "/") is excluded, itself or through one of
// its parent directories.
func (m *Matcher) MatchPath(rel string) bool {
	if m.Empty() {
		return false
	}
	rel = strings.TrimPrefix(rel, "/")
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && m.Match(rel[:i], true) {
			return true
		}
	}
	return m.Match(rel, false)
}
