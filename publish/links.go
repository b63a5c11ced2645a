package publish

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kind says what a Change is about.
type Kind uint8

// Change kinds.
const (
	KindFile Kind = iota // a regular file (Entry)
	KindLink             // a symbolic link carried as a link (Link)
	KindDir              // a directory (Dir)
)

func (k Kind) String() string {
	switch k {
	case KindLink:
		return "link"
	case KindDir:
		return "directory"
	}
	return "file"
}

// Link is a published symbolic link: its target stays inside the
// published directory, so it is carried as a link (rsync -a), never
// followed. Links that leave the published directory, or lead nowhere,
// are not published: they are reported (Tree.Unpublishable).
type Link struct {
	VPath string // the link's virtual path
	// Target is what the link says, relative to the link's directory and
	// slash-separated: an absolute target inside the published directory is
	// rewritten relative, so that the copy points into the mirror.
	Target string
	// TargetVPath is the virtual path the link leads to (the mount's alias
	// for a link to the published directory itself).
	TargetVPath string
	// MTime, UID, GID: the link's own modification time (Unix ns) and
	// owner (-1: unknown), never its target's.
	MTime    int64
	UID, GID int
}

// Dir is a published directory (every directory under a mount, not the
// mounts themselves): it lets a client create empty directories and remove
// the ones the server removed.
type Dir struct {
	VPath    string
	Mode     os.FileMode // permission bits
	MTime    int64       // modification time, Unix ns
	UID, GID int         // owner (-1: unknown)
}

// linkInfo decides whether the symbolic link rel (slash path in mount m)
// is published as a link: its target, resolved from the link's directory
// (an absolute one from the file system root), must stay inside the mount
// and exist, and the lexical path must lead to the same file as the
// system's resolution (no detour through other links). It returns the
// link, or why it is not published.
func (t *Tree) linkInfo(mi int, rel string) (Link, string) {
	m := t.mounts[mi]
	raw, err := m.root.Readlink(osRel(rel))
	if err != nil {
		return Link{}, "it is a symbolic link that cannot be read: " + err.Error()
	}
	const outside = "it is a symbolic link leading outside the published directory (not followed)"
	var lex string // mount-relative, slash-separated, "." for the mount itself
	if filepath.IsAbs(raw) {
		r, ok := m.within(filepath.Clean(raw))
		if !ok {
			return Link{}, outside
		}
		lex = r
	} else {
		lex = path.Join(path.Dir(rel), filepath.ToSlash(raw))
		if lex == ".." || strings.HasPrefix(lex, "../") {
			return Link{}, outside
		}
	}
	var fi fs.FileInfo
	if filepath.IsAbs(raw) {
		// os.Root refuses absolute links; the system resolves it (only
		// to compare: nothing is read through it).
		fi, err = os.Stat(filepath.Join(m.Dir, osRel(rel)))
	} else {
		fi, err = m.root.Stat(osRel(rel))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Link{}, "it is a symbolic link to nothing (broken)"
		}
		return Link{}, outside
	}
	if lex == "." {
		lex = ""
	}
	if ti, err := m.root.Stat(osRel(lex)); err != nil || !os.SameFile(fi, ti) {
		return Link{}, "it is a symbolic link whose target is reached through other links (not followed)"
	}
	target, err := filepath.Rel("/"+path.Dir(rel), "/"+lex)
	if err != nil {
		return Link{}, outside
	}
	return Link{VPath: vjoin(m.Alias, rel), Target: filepath.ToSlash(target), TargetVPath: vjoin(m.Alias, lex)}, ""
}

// within returns abs (a clean absolute path) relative to the mount's
// directory, slash-separated, if it lies inside it.
func (m mount) within(abs string) (string, bool) {
	for _, base := range m.bases {
		r, err := filepath.Rel(base, abs)
		if err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(r), true
		}
	}
	return "", false
}

// mountBases returns the absolute forms of a mount directory an absolute
// link may use: as given (made absolute) and with its links resolved.
func mountBases(dir string) []string {
	var out []string
	if a, err := filepath.Abs(dir); err == nil {
		out = append(out, a)
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		if a, err := filepath.Abs(r); err == nil && (len(out) == 0 || out[0] != a) {
			out = append(out, a)
		}
	}
	return out
}

// Links returns the published links under a subscription prefix (Match's
// rules), sorted by virtual path.
func (t *Tree) Links(prefix string) []Link { return under(t, t.links, prefix) }

// Dirs returns the published directories under a subscription prefix
// (Match's rules; the prefix itself included when it is one), sorted by
// virtual path: a directory comes before what it holds.
func (t *Tree) Dirs(prefix string) []Dir { return under(t, t.dirs, prefix) }

// under returns the entries of m (a map of t, keyed by virtual path) under
// prefix, sorted by virtual path.
func under[T any](t *Tree, m map[string]T, prefix string) []T {
	prefix, ok := normPrefix(prefix)
	if !ok {
		return nil
	}
	t.mu.RLock()
	keys := make([]string, 0, 16)
	for vp := range m {
		if underPrefix(prefix, vp) {
			keys = append(keys, vp)
		}
	}
	sort.Strings(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	t.mu.RUnlock()
	return out
}

// LookupLink returns the published link at vpath.
func (t *Tree) LookupLink(vpath string) (Link, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	l, ok := t.links[vpath]
	return l, ok
}

// LookupDir returns the published directory at vpath.
func (t *Tree) LookupDir(vpath string) (Dir, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	d, ok := t.dirs[vpath]
	return d, ok
}

// Published reports whether anything (file, link or directory) is
// published at vpath.
func (t *Tree) Published(vpath string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, f := t.pub[vpath]
	_, l := t.links[vpath]
	_, d := t.dirs[vpath]
	return f || l || d
}

// linkChange and dirChange build the changes of links and directories.
func linkChange(op Op, l Link) Change {
	return Change{Op: op, Kind: KindLink, VPath: l.VPath, Target: l.Target, TargetVPath: l.TargetVPath,
		ModTime: time.Unix(0, l.MTime), UID: l.UID, GID: l.GID}
}

func dirChange(op Op, d Dir) Change {
	return Change{Op: op, Kind: KindDir, VPath: d.VPath, Mode: d.Mode, ModTime: time.Unix(0, d.MTime), UID: d.UID, GID: d.GID}
}

// orderChanges sorts a batch: first the deletes of files and links, then
// those of directories, deepest first (after what they held), then
// everything else by virtual path (a directory before what it holds).
// Deletes go first so that a path that changed kind (a directory replaced
// by a link, a file by a directory) is free when its new self arrives.
func orderChanges(out []Change) {
	rank := func(c Change) int {
		switch {
		case c.Op == Deleted && c.Kind != KindDir:
			return 0
		case c.Op == Deleted:
			return 1
		}
		return 2
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		} else if ra == 1 {
			return a.VPath > b.VPath
		}
		return a.VPath < b.VPath
	})
}
