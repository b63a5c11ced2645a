// Package publish is the file-system side of a FileMQ server: it maps physical
// directories to virtual aliases, keeps an index of the published files, computes
// and caches SHA-1 digests, decides how to answer a client's cache entry (skip,
// resume, restart), reads files chunk by chunk while detecting changes, and
// watches the published directories for changes (fsnotify plus a periodic rescan,
// with a stability window so half-written files are not published).
//
// Virtual paths: a file's virtual path is alias + "/" + its path relative to the
// mounted directory, with "/" separators; the alias "/" means the root, so a file
// a/b.txt under alias "/" is "/a/b.txt". Hidden files and directories are
// published like any other unless excluded (Options.Exclude); a directory
// that is an fmq inbox is not (Options.PublishInboxes), nor are the names
// fmq reserves (inbox.Reserved). Symbolic links are never followed: a link
// whose target stays inside its published directory is published as a
// link (Links), others are reported (Unpublishable). Directories are
// published too (Dirs), so that a client can keep empty ones. Every file
// access goes through an os.Root.
//
// A Tree is safe for concurrent use. Nothing here knows about sockets or the
// protocol engine.
package publish

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fmq/fmq/internal/exclude"
	"github.com/fmq/fmq/internal/vpath"
)

// Default option values.
const (
	DefaultRescan = 5 * time.Second
	DefaultSettle = 500 * time.Millisecond
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrNotFound: the virtual path is not (or no longer) published.
	ErrNotFound = errors.New("publish: no such published file")
	// ErrChanged: the file changed (size, modification time or identity) while
	// it was being read. The caller should abandon this transfer; the watcher
	// will report the new version once it is stable.
	ErrChanged = errors.New("publish: file changed while being read")
	// ErrBadCacheValue: a client cache value is neither "SHA1HEX" nor "SHA1HEX@N".
	ErrBadCacheValue = errors.New("publish: malformed cache value")
	// ErrRange: an offset lies beyond the end of the file.
	ErrRange = errors.New("publish: offset beyond end of file")
	// ErrWatching: Watch is already running on this Tree (Rescan and a second
	// Watch are refused while it runs).
	ErrWatching = errors.New("publish: tree is being watched")
	// ErrClosed: the Tree was closed.
	ErrClosed = errors.New("publish: tree closed")
	// ErrBadMount: a Mount is invalid; the concrete error is a *MountError.
	ErrBadMount = errors.New("publish: bad mount")
)

// Mount publishes the physical directory Dir under the virtual alias Alias.
type Mount struct {
	Dir   string // physical directory; must exist
	Alias string // virtual path: starts with "/", clean, no hidden component ("/" = root)
}

// MountError reports an invalid Mount given to New.
type MountError struct {
	Index  int // index in the mounts slice
	Mount  Mount
	Reason string
	Err    error // underlying error, if any
}

func (e *MountError) Error() string {
	s := fmt.Sprintf("publish: mount %d (dir %q, alias %q): %s", e.Index, e.Mount.Dir, e.Mount.Alias, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *MountError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBadMount) true.
func (e *MountError) Is(target error) bool { return target == ErrBadMount }

// Options tune a Tree. Zero values select the defaults.
type Options struct {
	// Rescan is the period of the full rescan that backs up file-system
	// notifications while Watch runs. 0 = DefaultRescan; negative = never.
	Rescan time.Duration
	// Settle is the stability window: a new or changed file is reported only
	// once its size and modification time have stayed unchanged for Settle (a
	// file whose modification time is already older than Settle is stable at
	// once). 0 = DefaultSettle; negative = no window.
	Settle time.Duration
	// Logger receives debug and warning messages. nil = slog.Default().
	Logger *slog.Logger
	// PublishInboxes publishes directories that are fmq inboxes (they hold
	// an inbox marker or digest cache), which are otherwise left out with a
	// warning. A relay sets it: republishing its inbox is its job.
	PublishInboxes bool
	// Exclude leaves out the files and directories matching these
	// rsync-like patterns (see exclude in report.go): "*.tmp", ".git/",
	// "/build". Hidden files are published unless excluded (".*").
	Exclude []string
	// ServerID, when set, names the server for the origins of its
	// directories (Tree.Origin): they then depend on it and the mounts'
	// aliases, not on the machine and the directories' paths.
	ServerID string
	// ChunkGrid is the chunk size of the chunk digest tables made with a
	// large file's SHA-1 (Reader.ChunkDigest): 0 = DefaultChunkGrid (the
	// server's default chunk size); negative = no tables.
	ChunkGrid int64

	// testReady, if set, is called once Watch has registered its watches.
	testReady func()
	// testNoNotify makes Watch ignore fsnotify events (tests the rescan).
	testNoNotify bool
}

// Entry is one published file.
type Entry struct {
	VPath   string      // virtual path, e.g. "/photos/2024/a.jpg"
	Size    int64       // bytes
	ModTime time.Time   // modification time
	Mode    os.FileMode // permission bits (0o777)
	UID     int         // owner's user id (-1: unknown)
	GID     int         // group id (-1: unknown)

	id    fileID // device and inode of the file (of the target for a symlink)
	mount int    // index of the mount
	rel   string // slash-separated path relative to the mount directory
}

// same reports whether two observations describe the same file state.
func (e Entry) same(o Entry) bool {
	return e.Size == o.Size && e.ModTime.Equal(o.ModTime) && e.id == o.id && e.Mode == o.Mode &&
		e.UID == o.UID && e.GID == o.GID
}

type mount struct {
	Mount
	root  *os.Root
	dir   *os.File // root's directory, for openBeneath (nil where there is none)
	bases []string // absolute forms of Dir (as given, links resolved): for absolute links
}

// Tree is a set of published directories.
type Tree struct {
	mounts  []mount
	origins []string // per mount: its origin (Tree.Origin)
	settle  time.Duration
	rescan  time.Duration
	log     *slog.Logger
	opt     Options

	mu     sync.RWMutex
	pub    map[string]Entry // published files by virtual path
	links  map[string]Link  // published symbolic links by virtual path
	dirs   map[string]Dir   // published directories by virtual path
	sorted []Entry          // pub sorted by VPath; nil when stale
	closed bool
	done   chan struct{} // closed by Close; stops Watch

	scanMu   sync.Mutex // serialises scanning (New, Rescan, Watch)
	sc       *scanner
	watching atomic.Bool

	dmu      sync.Mutex
	digests  map[string]digestEntry // whole-file digests by virtual path
	inflight map[string]*digestCall
	prefixes prefixCache
	hashers  sync.WaitGroup // background digests (digestAsync); Close waits
	hashRuns atomic.Int64   // whole-file digest computations started (tests)

	excludes *exclude.Matcher // Options.Exclude, compiled
	inboxes  inboxSet         // fmq inboxes met while scanning
	problems problemSet       // files found but not published
}

// New validates the mounts, opens them and scans them once (all files found are
// published at once, without a stability window; use Watch to follow changes).
func New(mounts []Mount, opt Options) (*Tree, error) {
	if len(mounts) == 0 {
		return nil, &MountError{Index: -1, Reason: "no mounts given"}
	}
	for i, m := range mounts {
		if r := checkAlias(m.Alias); r != "" {
			return nil, &MountError{Index: i, Mount: m, Reason: r}
		}
		for j := 0; j < i; j++ {
			if a, b := mounts[j].Alias, m.Alias; a == b {
				return nil, &MountError{Index: i, Mount: m, Reason: fmt.Sprintf("alias duplicates mount %d", j)}
			} else if underPrefix(a, b) || underPrefix(b, a) {
				return nil, &MountError{Index: i, Mount: m, Reason: fmt.Sprintf("alias overlaps alias %q of mount %d", a, j)}
			}
		}
	}
	excludes, err := exclude.Compile(opt.Exclude)
	if err != nil {
		return nil, &MountError{Index: -1, Reason: err.Error()}
	}
	t := &Tree{
		excludes: excludes,
		settle:   opt.Settle,
		rescan:   opt.Rescan,
		log:      opt.Logger,
		opt:      opt,
		pub:      make(map[string]Entry),
		links:    make(map[string]Link),
		dirs:     make(map[string]Dir),
		done:     make(chan struct{}),
		digests:  make(map[string]digestEntry),
		inflight: make(map[string]*digestCall),
	}
	if t.settle == 0 {
		t.settle = DefaultSettle
	} else if t.settle < 0 {
		t.settle = 0
	}
	if t.rescan == 0 {
		t.rescan = DefaultRescan
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	for i, m := range mounts {
		if m.Dir == "" {
			t.closeRoots()
			return nil, &MountError{Index: i, Mount: m, Reason: "empty directory"}
		}
		fi, err := os.Stat(m.Dir)
		if err == nil && !fi.IsDir() {
			t.closeRoots()
			return nil, &MountError{Index: i, Mount: m, Reason: "not a directory"}
		}
		var root *os.Root
		if err == nil {
			root, err = os.OpenRoot(m.Dir)
		}
		if err != nil {
			t.closeRoots()
			return nil, &MountError{Index: i, Mount: m, Reason: "cannot open directory", Err: err}
		}
		t.mounts = append(t.mounts, mount{Mount: m, root: root, dir: openDir(root), bases: mountBases(m.Dir)})
		t.origins = append(t.origins, originOf(opt.ServerID, m))
	}
	t.sc = newScanner(t)
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	if _, err := t.sc.full(time.Now(), true); err != nil {
		t.closeRoots()
		return nil, err
	}
	return t, nil
}

func (t *Tree) closeRoots() {
	for _, m := range t.mounts {
		m.root.Close()
		if m.dir != nil {
			m.dir.Close()
		}
	}
}

// Close releases the directory handles and stops a running Watch (which then
// returns ErrClosed). Readers already open stay usable.
func (t *Tree) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	var first error
	for _, m := range t.mounts {
		if err := m.root.Close(); err != nil && first == nil {
			first = err
		}
		if m.dir != nil {
			m.dir.Close()
		}
	}
	t.mu.Unlock()
	t.hashers.Wait() // they stop at their next read once done is closed
	return first
}

// Mounts returns the mounts the Tree was created with.
func (t *Tree) Mounts() []Mount {
	out := make([]Mount, len(t.mounts))
	for i, m := range t.mounts {
		out[i] = m.Mount
	}
	return out
}

// Rescan scans all published directories now and publishes every change at once
// (no stability window). It returns the changes, sorted by virtual path. It is
// refused with ErrWatching while Watch runs (the watcher reports changes itself).
func (t *Tree) Rescan() ([]Change, error) {
	if t.watching.Load() {
		return nil, ErrWatching
	}
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	if t.isClosed() {
		return nil, ErrClosed
	}
	return t.sc.full(time.Now(), true)
}

func (t *Tree) isClosed() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.closed
}

// Snapshot returns every published file, sorted by virtual path. The slice is
// the caller's.
func (t *Tree) Snapshot() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sortedLocked()
	return append([]Entry(nil), s...)
}

// Len returns the number of published files.
func (t *Tree) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.pub)
}

func (t *Tree) sortedLocked() []Entry {
	if t.sorted == nil {
		s := make([]Entry, 0, len(t.pub))
		for _, e := range t.pub {
			s = append(s, e)
		}
		sort.Slice(s, func(i, j int) bool { return s[i].VPath < s[j].VPath })
		t.sorted = s
	}
	return t.sorted
}

// Match returns the published files under a subscription prefix, sorted by
// virtual path. Matching is by whole path components: "/photos" matches
// "/photos" itself and "/photos/a.jpg" but not "/photos2/x"; "/" matches every
// file. A trailing "/" on the prefix is ignored. A prefix that does not start
// with "/" matches nothing.
func (t *Tree) Match(prefix string) []Entry {
	prefix, ok := normPrefix(prefix)
	if !ok {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sortedLocked()
	if prefix == "/" {
		return append([]Entry(nil), s...)
	}
	// Entries equal to prefix or starting with prefix+"/" form a contiguous
	// range starting at the first entry >= prefix, except that entries such as
	// "/photos-x" sort between "/photos" and "/photos/..." ('-' < '/'), so the
	// range is scanned and filtered.
	i := sort.Search(len(s), func(i int) bool { return s[i].VPath >= prefix })
	var out []Entry
	for ; i < len(s) && strings.HasPrefix(s[i].VPath, prefix); i++ {
		if Matches(prefix, s[i].VPath) {
			out = append(out, s[i])
		}
	}
	return out
}

// Lookup returns the published entry for a virtual path.
func (t *Tree) Lookup(vpath string) (Entry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.pub[vpath]
	return e, ok
}

// Matches reports whether vpath lies under the subscription prefix, with the
// same rules as Tree.Match. Use it to route Changes to subscribers.
func Matches(prefix, vpath string) bool {
	prefix, ok := normPrefix(prefix)
	if !ok {
		return false
	}
	return underPrefix(prefix, vpath)
}

// underPrefix: p is a normalised prefix.
func underPrefix(p, vpath string) bool {
	if p == "/" {
		return strings.HasPrefix(vpath, "/")
	}
	return vpath == p || (strings.HasPrefix(vpath, p) && vpath[len(p)] == '/')
}

func normPrefix(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p, true
}

// checkAlias returns a reason why alias is invalid, or "" (internal/vpath's
// rules).
func checkAlias(a string) string {
	if why := vpath.Problem(a); why != "" {
		return "alias " + why
	}
	return ""
}

// vjoin builds a virtual path from an alias and a slash-separated relative path.
func vjoin(alias, rel string) string {
	switch {
	case rel == "":
		return alias
	case alias == "/":
		return "/" + rel
	default:
		return alias + "/" + rel
	}
}

// relJoin joins slash-separated relative paths.
func relJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// osRel converts a slash-separated relative path for use with os.Root.
func osRel(rel string) string {
	if rel == "" {
		return "."
	}
	return filepath.FromSlash(rel)
}

// entry returns the published entry for vpath or ErrNotFound.
func (t *Tree) entry(vpath string) (Entry, *os.Root, error) {
	e, m, err := t.entryMount(vpath)
	if err != nil {
		return Entry{}, nil, err
	}
	return e, m.root, nil
}

// entryMount is entry with the whole mount.
func (t *Tree) entryMount(vpath string) (Entry, *mount, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return Entry{}, nil, ErrClosed
	}
	e, ok := t.pub[vpath]
	if !ok {
		return Entry{}, nil, fmt.Errorf("%w: %q", ErrNotFound, vpath)
	}
	return e, &t.mounts[e.mount], nil
}
