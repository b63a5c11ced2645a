package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/internal/vpath"
)

// Op is the kind of a Change.
type Op uint8

// Change operations.
const (
	Created  Op = iota + 1 // a file was published
	Updated                // a published file has new content
	Deleted                // a file is no longer published
	Reported               // a name found that is not published (Change.Reason says why)
)

func (o Op) String() string {
	switch o {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Deleted:
		return "deleted"
	case Reported:
		return "reported"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Change is one entry of the change feed. A rename appears as Deleted(old) +
// Created(new). Kind says whether it is about a file, a link or a
// directory.
type Change struct {
	Op      Op
	VPath   string
	Size    int64     // new size (Created/Updated), last published size (Deleted)
	ModTime time.Time // new modification time (Created/Updated), last published one (Deleted)

	Kind        Kind
	Target      string      // KindLink: the link's target (Link.Target)
	TargetVPath string      // KindLink: where it leads (Link.TargetVPath)
	Mode        os.FileMode // KindDir: permission bits
	UID, GID    int         // KindDir, KindLink: owner (-1: unknown)
	Reason      string      // Reported: why it is not published
}

// maxDepth bounds directory nesting.
const maxDepth = 256

// dirNode is one scanned directory.
type dirNode struct {
	mount  int
	rel    string // slash-separated, "" for the mount directory
	vdir   string
	fsPath string // physical path, as given to fsnotify
	id     fileID
	mode   os.FileMode // permission bits
	uid    int         // owner (-1: unknown)
	gid    int
	inbox  bool              // an fmq inbox: seen and left out, its directory unpublished
	warned bool              // the inbox was announced (warned once)
	odd    map[string]string // names not published, and why
	depth  int
	parent *dirNode
	files  map[string]Entry    // last observation of the files in it, by name
	links  map[string]Link     // its links published as links, by name
	subs   map[string]*dirNode // subdirectories, by name
	gone   bool
	// since is when the directory was first seen, mtime its modification
	// time then: a new directory is published once it has been stable for
	// the settle window, like a file (see noteDir).
	since time.Time
	mtime time.Time
}

type subInfo struct {
	id       fileID
	mode     os.FileMode
	mtime    time.Time
	uid, gid int
}

func subInfoOf(fi fs.FileInfo) subInfo {
	si := subInfo{id: idOf(fi), mode: fi.Mode().Perm(), mtime: fi.ModTime()}
	si.uid, si.gid = ownerOf(fi)
	return si
}

// same reports whether a directory's mode, mtime and owner are n's.
func (si subInfo) same(n *dirNode) bool {
	return si.mode == n.mode && si.mtime.Equal(n.mtime) && si.uid == n.uid && si.gid == n.gid
}

// setOn records a directory's mode, mtime and owner on n.
func (si subInfo) setOn(n *dirNode) {
	n.mode, n.mtime, n.uid, n.gid = si.mode, si.mtime, si.uid, si.gid
}

type dirResult struct {
	files map[string]Entry
	links map[string]Link
	dirs  map[string]subInfo
	self  *subInfo // the directory itself (its mtime changes with what it holds)
	err   error
}

type candidate struct {
	e     Entry
	since time.Time // when this exact state was first observed
}

// scanner owns the observed state of the directories. It is used by one
// goroutine at a time (Tree.scanMu).
type scanner struct {
	t     *Tree
	roots []*dirNode
	byFS  map[string]*dirNode
	cand  map[string]candidate // observed, not yet published (or not yet republished)
	// dirCand are new directories waiting for the settle window.
	dirCand map[*dirNode]bool
	// reported are the names found unpublishable since the last apply
	// (Reported changes: a link made to lead out, a file made unreadable
	// by its name, reach the clients that ask for reports live).
	reported []Change
	w        *fsnotify.Watcher // nil when not watching
}

func newScanner(t *Tree) *scanner {
	s := &scanner{t: t, byFS: make(map[string]*dirNode), cand: make(map[string]candidate), dirCand: make(map[*dirNode]bool)}
	for i, m := range t.mounts {
		n := &dirNode{mount: i, vdir: m.Alias, fsPath: filepath.Clean(m.Dir),
			files: map[string]Entry{}, links: map[string]Link{}, subs: map[string]*dirNode{}}
		if fi, err := m.root.Stat("."); err == nil {
			n.id = idOf(fi)
		}
		s.roots = append(s.roots, n)
		s.byFS[n.fsPath] = n
	}
	return s
}

// changeSet collects the effects of one scan pass before they are applied.
type changeSet struct {
	puts map[string]Entry
	dels map[string]bool
	// links and directories: published at once (no stability window)
	links pendingSet[Link]
	dirs  pendingSet[Dir]
}

func (c *changeSet) put(e Entry) {
	if c.puts == nil {
		c.puts = make(map[string]Entry)
	}
	c.puts[e.VPath] = e
}

func (c *changeSet) del(vp string) {
	if c.dels == nil {
		c.dels = make(map[string]bool)
	}
	c.dels[vp] = true
	delete(c.puts, vp)
}

// pendingSet holds the puts and deletes of one kind of entry in a
// changeSet; the last one for a path wins.
type pendingSet[T any] struct {
	puts map[string]T
	dels map[string]bool
}

func (p *pendingSet[T]) put(vp string, v T) {
	if p.puts == nil {
		p.puts = make(map[string]T)
	}
	p.puts[vp] = v
	delete(p.dels, vp)
}

func (p *pendingSet[T]) del(vp string) {
	if p.dels == nil {
		p.dels = make(map[string]bool)
	}
	p.dels[vp] = true
	delete(p.puts, vp)
}

func (p *pendingSet[T]) empty() bool { return len(p.puts) == 0 && len(p.dels) == 0 }

// applyTo applies the set to the published map m and returns the changes
// (same reports whether two entries are equal).
func (p *pendingSet[T]) applyTo(m map[string]T, change func(Op, T) Change, same func(a, b T) bool) []Change {
	var out []Change
	for vp := range p.dels {
		if old, ok := m[vp]; ok {
			out = append(out, change(Deleted, old))
			delete(m, vp)
		}
	}
	for vp, v := range p.puts {
		old, had := m[vp]
		m[vp] = v
		switch {
		case !had:
			out = append(out, change(Created, v))
		case !same(old, v):
			out = append(out, change(Updated, v))
		}
	}
	return out
}

// published returns the published entry for vp as it will be after ch.
func (s *scanner) published(vp string, ch *changeSet) (Entry, bool) {
	if e, ok := ch.puts[vp]; ok {
		return e, true
	}
	if ch.dels[vp] {
		return Entry{}, false
	}
	e, ok := s.t.pub[vp] // only the scanner writes pub, so reading it here is safe
	return e, ok
}

// allNodes lists every live directory node.
func (s *scanner) allNodes() []*dirNode {
	var out []*dirNode
	var walk func(n *dirNode)
	walk = func(n *dirNode) {
		out = append(out, n)
		for _, c := range n.subs {
			walk(c)
		}
	}
	for _, r := range s.roots {
		walk(r)
	}
	return out
}

// full rescans every directory. With force, every observed file is published
// at once; otherwise new states wait for the stability window.
func (s *scanner) full(now time.Time, force bool) ([]Change, error) {
	nodes := s.allNodes()
	if s.w != nil {
		for _, n := range nodes { // repair watches lost to renames or errors
			s.watch(n)
		}
	}
	return s.process(nodes, now, force), nil
}

// read lists one directory (not recursively).
func (s *scanner) read(n *dirNode) dirResult {
	root := s.t.mounts[n.mount].root
	f, err := root.Open(osRel(n.rel))
	if err != nil {
		return dirResult{err: err}
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil && len(ents) == 0 {
		return dirResult{err: err}
	}
	res := dirResult{files: make(map[string]Entry, len(ents)), links: map[string]Link{}, dirs: map[string]subInfo{}}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		si := subInfoOf(fi)
		res.self = &si
	}
	var odd map[string]string // names that cannot be published, and why
	defer func() { s.reportOdd(n, odd) }()
	for _, d := range ents {
		name := d.Name()
		if (name == inboxMarker || name == inboxCache) && !s.t.opt.PublishInboxes {
			// An fmq inbox: publishing it would feed a mirror into itself.
			id, marked := readInboxMarker(root, osRel(relJoin(n.rel, inboxMarker)))
			s.t.inboxes.add(id, n.vdir)
			// Left out at once, even while its marker is still empty (a
			// client writes the marker after creating it: published for
			// that instant, its directory reached the next client). Said
			// once the inbox is known by its id (an empty marker is read
			// again at the next scan), or at once for one without a marker.
			n.inbox = true
			if !n.warned && (id != "" || !marked) {
				n.warned = true
				s.t.log.Warn("publish: not publishing an fmq inbox (serve --publish-inboxes would)", "path", n.fsPath)
			}
			odd = nil
			return dirResult{files: map[string]Entry{}, links: map[string]Link{}, dirs: map[string]subInfo{}}
		}
		rel := relJoin(n.rel, name)
		typ := d.Type()
		if inbox.Reserved(name) {
			// fmq's own files (an inbox's partials, a relay's inbox):
			// silent when inboxes are published on purpose, else reported.
			if !s.t.opt.PublishInboxes {
				if odd == nil {
					odd = map[string]string{}
				}
				odd[name] = "its name is one fmq reserves for itself (inbox marker, digest cache, partial file)"
			}
			continue
		}
		if s.t.excluded(rel, typ.IsDir()) {
			continue
		}
		why := oddName(name)
		if vp := vjoin(s.t.mounts[n.mount].Alias, rel); why == "" && len(vp) > vpath.MaxPath {
			why = fmt.Sprintf("its path is longer than %d bytes", vpath.MaxPath)
		}
		if why != "" {
			if odd == nil {
				odd = map[string]string{}
			}
			odd[name] = why
			continue
		}
		var fi fs.FileInfo
		if typ&fs.ModeSymlink != 0 {
			// Never followed: carried as a link when its target stays
			// inside the mount, else reported (log, and to clients that ask).
			l, why := s.t.linkInfo(n.mount, rel)
			if why != "" {
				if odd == nil {
					odd = map[string]string{}
				}
				odd[name] = why
				continue
			}
			if fi, err := d.Info(); err == nil { // the link's own (lstat)
				l.MTime = fi.ModTime().UnixNano()
				l.UID, l.GID = ownerOf(fi)
			} else {
				l.UID, l.GID = -1, -1
			}
			res.links[name] = l
			continue
		} else if typ.IsRegular() || typ.IsDir() {
			fi, err = d.Info()
			if err != nil {
				continue // vanished meanwhile
			}
		} else {
			continue // devices, pipes, sockets
		}
		switch {
		case fi.Mode().IsRegular():
			e := Entry{VPath: vjoin(s.t.mounts[n.mount].Alias, rel), Size: fi.Size(),
				ModTime: fi.ModTime(), Mode: fi.Mode().Perm(), id: idOf(fi), mount: n.mount, rel: rel}
			e.UID, e.GID = ownerOf(fi)
			res.files[name] = e
		case fi.IsDir():
			res.dirs[name] = subInfoOf(fi)
		}
	}
	return res
}

// reportOdd records the names of n that cannot be published, warning
// once about each new one (the client is told too: Tree.Unpublishable).
func (s *scanner) reportOdd(n *dirNode, odd map[string]string) {
	for name, why := range odd {
		if _, seen := n.odd[name]; !seen {
			s.t.log.Warn("publish: file not published", "path", filepath.Join(n.fsPath, name), "why", why)
			s.reported = append(s.reported, Change{Op: Reported, VPath: vjoinDir(n.vdir, name), Reason: why})
		}
	}
	n.odd = odd
	s.t.problems.setOdd(n.vdir, odd)
}

// process rescans the given directories (and any new subdirectory found, in
// full), updates the candidates, promotes stable ones and applies the result to
// the published index. It returns the changes sorted by virtual path.
func (s *scanner) process(dirty []*dirNode, now time.Time, force bool) []Change {
	var ch changeSet
	sort.Slice(dirty, func(i, j int) bool { return dirty[i].vdir < dirty[j].vdir })
	results := make([]dirResult, len(dirty))
	for i, n := range dirty {
		if !n.gone {
			results[i] = s.read(n)
		}
	}
	// Phase 1: removed or replaced subdirectories (before any new watch is
	// added, so a directory moved within the tree keeps its watch).
	for i, n := range dirty {
		if n.gone || !s.usable(n, &results[i]) {
			continue
		}
		for name, sub := range n.subs {
			if si, ok := results[i].dirs[name]; !ok || si.id != sub.id {
				s.removeTree(sub, &ch)
				delete(n.subs, name)
			} else if !si.same(sub) {
				si.setOn(sub)
				s.noteDir(sub, now, force, &ch)
			}
		}
	}
	// Phase 2: files of the rescanned directories.
	var queue []*dirNode
	for i, n := range dirty {
		if n.gone || !s.usable(n, &results[i]) {
			continue
		}
		if si := results[i].self; si != nil && si.id == n.id {
			si.setOn(n) // a file made or removed in it changed its mtime
		}
		s.applyFiles(n, results[i].files, now, &ch)
		s.applyLinks(n, results[i].links, &ch)
		s.noteDir(n, now, force, &ch)
		queue = s.addSubs(n, results[i].dirs, queue)
	}
	// Phase 3: new subdirectories, recursively.
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		res := s.read(n)
		if !s.usable(n, &res) {
			continue
		}
		s.applyFiles(n, res.files, now, &ch)
		s.applyLinks(n, res.links, &ch)
		s.noteDir(n, now, force, &ch)
		queue = s.addSubs(n, res.dirs, queue)
	}
	if !force {
		s.recheck(now)
	}
	s.promote(now, force, &ch)
	unsettled := make(map[string]bool, len(s.cand))
	for vp := range s.cand {
		unsettled[vp] = true
	}
	s.t.problems.setUnsettled(unsettled)
	return s.apply(&ch)
}

// usable decides what to do with a read result: a directory that vanished (or
// is no longer a directory) reads as empty; other errors keep the previous
// observation (logged).
func (s *scanner) usable(n *dirNode, r *dirResult) bool {
	if r.err == nil {
		return true
	}
	if errors.Is(r.err, fs.ErrNotExist) || errors.Is(r.err, syscall.ENOTDIR) || errors.Is(r.err, syscall.ELOOP) {
		r.files, r.dirs, r.err = nil, nil, nil
		return true
	}
	s.t.log.Warn("publish: cannot read directory", "path", n.fsPath, "err", r.err)
	return false
}

func (s *scanner) addSubs(n *dirNode, dirs map[string]subInfo, queue []*dirNode) []*dirNode {
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		if _, ok := n.subs[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		si := dirs[name]
		if n.depth+1 > maxDepth {
			s.t.log.Debug("publish: directory too deep; not published", "path", filepath.Join(n.fsPath, name))
			continue
		}
		rel := relJoin(n.rel, name)
		c := &dirNode{mount: n.mount, rel: rel, vdir: vjoin(s.t.mounts[n.mount].Alias, rel),
			fsPath: filepath.Join(n.fsPath, name), id: si.id, mode: si.mode, mtime: si.mtime, uid: si.uid, gid: si.gid, depth: n.depth + 1, parent: n,
			files: map[string]Entry{}, links: map[string]Link{}, subs: map[string]*dirNode{}}
		n.subs[name] = c
		s.byFS[c.fsPath] = c
		s.watch(c) // before reading it, so nothing created meanwhile is missed
		queue = append(queue, c)
	}
	return queue
}

// applyLinks compares a fresh observation of n's links with the previous
// one; links need no stability window (they are written in one step).
func (s *scanner) applyLinks(n *dirNode, obs map[string]Link, ch *changeSet) {
	for name, old := range n.links {
		if _, ok := obs[name]; !ok {
			ch.links.del(old.VPath)
		}
	}
	for name, l := range obs {
		if old, ok := n.links[name]; !ok || old != l {
			ch.links.put(l.VPath, l)
		}
	}
	if obs == nil {
		obs = map[string]Link{}
	}
	n.links = obs
}

// noteDir publishes n as a directory (not a mount's own directory, nor an
// fmq inbox, which is not published), or withdraws it once it turns out
// to be an inbox. A directory not published yet waits for the settle
// window (unless forced), as a file does: a client creating an inbox makes
// the directory, then its marker, and a directory published in between
// would reach that very client as an empty directory inside its own inbox
// (mirror/mirror).
func (s *scanner) noteDir(n *dirNode, now time.Time, force bool, ch *changeSet) {
	if n.parent == nil || n.gone {
		return
	}
	if n.since.IsZero() {
		n.since = now
	}
	if n.inbox {
		delete(s.dirCand, n)
		ch.dirs.del(n.vdir)
		return
	}
	d, ok := s.publishedDir(n.vdir, ch)
	if !ok && !force && !s.dirStable(n, now) {
		s.dirCand[n] = true
		return
	}
	delete(s.dirCand, n)
	nd := Dir{VPath: n.vdir, Mode: n.mode, MTime: n.mtime.UnixNano(), UID: n.uid, GID: n.gid}
	if !ok || d != nd {
		ch.dirs.put(n.vdir, nd)
	}
}

// dirStable reports whether a new directory may be published at now: seen
// for the settle window, or not modified within it.
func (s *scanner) dirStable(n *dirNode, now time.Time) bool {
	return now.Sub(n.since) >= s.t.settle || now.Sub(n.mtime) >= s.t.settle
}

// publishedDir returns the published directory vp as it will be after ch.
func (s *scanner) publishedDir(vp string, ch *changeSet) (Dir, bool) {
	if d, ok := ch.dirs.puts[vp]; ok {
		return d, true
	}
	if ch.dirs.dels[vp] {
		return Dir{}, false
	}
	s.t.mu.RLock()
	defer s.t.mu.RUnlock()
	d, ok := s.t.dirs[vp]
	return d, ok
}

// applyFiles compares a fresh observation of n's files with the previous one.
func (s *scanner) applyFiles(n *dirNode, obs map[string]Entry, now time.Time, ch *changeSet) {
	for name, old := range n.files {
		if _, ok := obs[name]; !ok {
			delete(s.cand, old.VPath)
			if _, ok := s.published(old.VPath, ch); ok {
				ch.del(old.VPath)
			}
		}
	}
	for _, e := range obs {
		s.observe(e, now, ch)
	}
	if obs == nil {
		obs = map[string]Entry{}
	}
	n.files = obs
}

// observe records one observation of a file.
func (s *scanner) observe(e Entry, now time.Time, ch *changeSet) {
	if p, ok := s.published(e.VPath, ch); ok && p.same(e) {
		delete(s.cand, e.VPath)
		return
	}
	if c, ok := s.cand[e.VPath]; ok && c.e.same(e) {
		return
	}
	s.cand[e.VPath] = candidate{e: e, since: now}
}

// removeTree forgets a directory and everything under it.
func (s *scanner) removeTree(n *dirNode, ch *changeSet) {
	n.gone = true
	for _, e := range n.files {
		delete(s.cand, e.VPath)
		if _, ok := s.published(e.VPath, ch); ok {
			ch.del(e.VPath)
		}
	}
	for _, l := range n.links {
		ch.links.del(l.VPath)
	}
	if n.parent != nil {
		ch.dirs.del(n.vdir)
	}
	for _, c := range n.subs {
		s.removeTree(c, ch)
	}
	if s.byFS[n.fsPath] == n {
		delete(s.byFS, n.fsPath)
	}
	s.t.problems.setOdd(n.vdir, nil)
	if s.w != nil {
		_ = s.w.Remove(n.fsPath) // may already be gone with the directory
	}
}

func (s *scanner) watch(n *dirNode) {
	if s.w == nil {
		return
	}
	if err := s.w.Add(n.fsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.t.log.Warn("publish: cannot watch directory; relying on periodic rescan", "path", n.fsPath, "err", err)
	}
}

// stable reports whether a candidate may be published at now.
func (s *scanner) stable(c candidate, now time.Time) bool {
	st := s.t.settle
	return now.Sub(c.since) >= st || now.Sub(c.e.ModTime) >= st
}

// deadline returns when the earliest pending candidate becomes stable.
func (s *scanner) deadline() (time.Time, bool) {
	var best time.Time
	found := false
	for _, c := range s.cand {
		d := c.since.Add(s.t.settle)
		if m := c.e.ModTime.Add(s.t.settle); m.Before(d) {
			d = m
		}
		if !found || d.Before(best) {
			best, found = d, true
		}
	}
	for n := range s.dirCand {
		d := n.since.Add(s.t.settle)
		if m := n.mtime.Add(s.t.settle); m.Before(d) {
			d = m
		}
		if !found || d.Before(best) {
			best, found = d, true
		}
	}
	return best, found
}

// recheck re-stats candidates that are due, so a file still being written
// (whose change notifications may not have arrived yet) restarts its window.
func (s *scanner) recheck(now time.Time) {
	for vp, c := range s.cand {
		if !s.stable(c, now) {
			continue
		}
		fi, err := s.t.mounts[c.e.mount].root.Stat(osRel(c.e.rel))
		if err != nil || !fi.Mode().IsRegular() {
			delete(s.cand, vp) // the directory rescan will sort it out
			continue
		}
		e := c.e
		e.Size, e.ModTime, e.Mode, e.id = fi.Size(), fi.ModTime(), fi.Mode().Perm(), idOf(fi)
		e.UID, e.GID = ownerOf(fi)
		if !e.same(c.e) {
			s.cand[vp] = candidate{e: e, since: now}
		}
	}
}

// promote publishes the candidates that are stable (all of them with force),
// new directories included.
func (s *scanner) promote(now time.Time, force bool, ch *changeSet) {
	for n := range s.dirCand {
		switch {
		case n.gone || n.inbox:
			delete(s.dirCand, n)
		case force || s.dirStable(n, now):
			s.noteDir(n, now, force, ch)
		}
	}
	for vp, c := range s.cand {
		if force || s.stable(c, now) {
			ch.put(c.e)
			delete(s.cand, vp)
			// A file stable before its new directory (moved in with an old
			// modification time) brings the directory with it: directories
			// go before what they hold.
			if len(s.dirCand) == 0 {
				continue
			}
			fsDir := filepath.Dir(filepath.Join(filepath.Clean(s.t.mounts[c.e.mount].Dir), osRel(c.e.rel)))
			for n := s.byFS[fsDir]; n != nil && s.dirCand[n]; n = n.parent {
				s.noteDir(n, now, true, ch)
			}
		}
	}
}

// apply writes a change set to the published index and returns the changes.
func (s *scanner) apply(ch *changeSet) []Change {
	reported := s.reported
	s.reported = nil
	if len(ch.puts) == 0 && len(ch.dels) == 0 && ch.links.empty() && ch.dirs.empty() {
		return reported
	}
	t := s.t
	out := reported
	t.mu.Lock()
	for vp := range ch.dels {
		if _, put := ch.puts[vp]; put {
			continue
		}
		if old, ok := t.pub[vp]; ok {
			out = append(out, Change{Op: Deleted, VPath: vp, Size: old.Size, ModTime: old.ModTime})
			delete(t.pub, vp)
		}
	}
	for vp, e := range ch.puts {
		old, had := t.pub[vp]
		t.pub[vp] = e
		switch {
		case !had:
			out = append(out, Change{Op: Created, VPath: vp, Size: e.Size, ModTime: e.ModTime})
		case !old.same(e):
			out = append(out, Change{Op: Updated, VPath: vp, Size: e.Size, ModTime: e.ModTime})
		}
	}
	eq := func(a, b Link) bool { return a == b }
	out = append(out, ch.links.applyTo(t.links, linkChange, eq)...)
	out = append(out, ch.dirs.applyTo(t.dirs, dirChange, func(a, b Dir) bool { return a == b })...)
	t.sorted = nil
	t.mu.Unlock()
	t.forgetDigests(ch)
	orderChanges(out)
	return out
}
