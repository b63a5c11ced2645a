package publish

import (
	"fmt"
	"path"
	"sort"
	"strings"
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

// exclude is one --exclude pattern, rsync-like: a pattern without "/"
// matches a name at any depth; one starting with "/", or holding a "/",
// matches the path from the published directory; a trailing "/" matches
// directories only. Wildcards as path.Match: *, ?, [...]. An excluded
// directory is not descended into.
type exclude struct {
	pat      string
	anchored bool
	dirOnly  bool
}

func compileExcludes(pats []string) ([]exclude, error) {
	var out []exclude
	for _, p := range pats {
		e := exclude{pat: p}
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
		out = append(out, e)
	}
	return out, nil
}

// excluded reports whether a file or directory (rel: its slash path in
// its mount) is left out by Options.Exclude.
func (t *Tree) excluded(rel, name string, dir bool) bool {
	for _, e := range t.excludes {
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
