package publish

import (
	"sort"
	"sync"

	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/internal/vpath"
)

// MaxName is the longest file name (bytes) published: a client keeps a
// partial file next to its target under a longer hidden name
// (".NAME.fmqpart"), which must fit the usual 255-byte limit. Longer names
// are reported (Tree.Unpublishable), not published.
const MaxName = vpath.MaxComponent

// Problem is a file under a subscription that is not published: its name
// cannot be sent, or it has not settled yet.
type Problem struct {
	VPath  string
	Reason string
}

// problemSet holds what scans found but could not publish.
type problemSet struct {
	mu        sync.Mutex
	odd       map[string]map[string]string // directory's virtual path -> name -> reason
	unsettled map[string]bool              // candidates waiting for the stability window
}

// setOdd replaces the odd names found in one directory.
func (p *problemSet) setOdd(vdir string, names map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(names) == 0 {
		delete(p.odd, vdir)
		return
	}
	if p.odd == nil {
		p.odd = map[string]map[string]string{}
	}
	p.odd[vdir] = names
}

func (p *problemSet) setUnsettled(m map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unsettled = m
}

// oddName returns why a file name cannot be published, or "": the rules
// of internal/vpath (the one rule set a client applies to the names it
// stores), for one component.
func oddName(name string) string {
	if why := vpath.Problem(inbox.Unhide("/" + name)); why != "" {
		return "its name " + why
	}
	return ""
}

// Unpublishable lists the files under a subscription prefix that are not
// published and why: names a client could not store (control characters,
// backslash, longer than MaxName bytes) and files still changing (not yet
// stable for the settle window). Sorted by path.
func (t *Tree) Unpublishable(prefix string) []Problem {
	prefix, ok := normPrefix(prefix)
	if !ok {
		return nil
	}
	var out []Problem
	t.problems.mu.Lock()
	for vdir, names := range t.problems.odd {
		for name, why := range names {
			if vp := vjoinDir(vdir, name); underPrefix(prefix, vp) {
				out = append(out, Problem{VPath: vp, Reason: why})
			}
		}
	}
	for vp := range t.problems.unsettled {
		if underPrefix(prefix, vp) {
			out = append(out, Problem{VPath: vp, Reason: "still changing: not stable for the settle window yet (sent once it is)"})
		}
	}
	t.problems.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].VPath < out[j].VPath })
	return out
}

func vjoinDir(vdir, name string) string {
	if vdir == "/" {
		return "/" + name
	}
	return vdir + "/" + name
}

// excluded reports whether a file or directory (rel: its slash path in
// its mount) is left out by Options.Exclude (rsync-like patterns, package
// internal/exclude). An excluded directory is not descended into.
func (t *Tree) excluded(rel string, dir bool) bool {
	return t.excludes.Match(rel, dir)
}
