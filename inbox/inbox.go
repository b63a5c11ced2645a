// Package inbox is the file-system side of a FileMQ client: it validates
// server-sent file names, receives files into hidden partial files next to
// their targets (resumable, verified against the SIZE and SHA1 headers, then
// renamed into place atomically), deletes files, and keeps a persistent digest
// cache from which the ICANHAZ cache hash is built.
//
// Every file-system access goes through an os.Root opened on the inbox
// directory, so nothing is ever written outside it, even through symbolic links
// planted inside it. On Linux, receiving a file works relative to a cached
// descriptor of its directory, itself opened through the os.Root
// (fast_linux.go: about six system calls per small file instead of ~40). An Inbox is safe for concurrent use; a Partial belongs to
// one transfer (one goroutine), though Inbox.Delete may cancel it from another.
package inbox

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fmq/fmq/internal/vpath"
)

// Names and limits.
const (
	CacheFile    = ".fmq-cache"       // digest cache, in the inbox directory
	PartSuffix   = ".fmqpart"         // a partial of a/b.txt is a/.b.txt.fmqpart
	MaxPath      = vpath.MaxPath      // bytes in a virtual path
	MaxComponent = vpath.MaxComponent // bytes in one path component (room for the partial name)
)

// Errors; test with errors.Is. Each is the root of a typed error carrying the
// path concerned.
var (
	ErrUnsafePath = errors.New("inbox: unsafe path")                        // *UnsafePathError
	ErrOutOfOrder = errors.New("inbox: chunk out of order")                 // *OrderError
	ErrResume     = errors.New("inbox: cannot resume")                      // *ResumeError
	ErrVerify     = errors.New("inbox: verification failed")                // *VerifyError
	ErrWrite      = errors.New("inbox: write failed")                       // *WriteError
	ErrBusy       = errors.New("inbox: a transfer of this file is running") //
	ErrFinished   = errors.New("inbox: transfer already ended")             // finished, aborted or cancelled
	ErrConflict   = errors.New("inbox: a directory is in the way")          //
	ErrClosed     = errors.New("inbox: closed")
)

// UnsafePathError rejects a server-sent path.
type UnsafePathError struct {
	Path   string
	Reason string
}

func (e *UnsafePathError) Error() string {
	p := e.Path
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return fmt.Sprintf("inbox: unsafe path %q: %s", p, e.Reason)
}

// Is makes errors.Is(err, ErrUnsafePath) true.
func (e *UnsafePathError) Is(t error) bool { return t == ErrUnsafePath }

// OrderError: a chunk did not start where the previous one ended.
type OrderError struct {
	VPath     string
	Want, Got int64
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("inbox: %q: chunk at offset %d, expected %d", e.VPath, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrOutOfOrder) true.
func (e *OrderError) Is(t error) bool { return t == ErrOutOfOrder }

// ResumeError: Begin at offset N but the partial does not hold exactly N bytes.
type ResumeError struct {
	VPath  string
	Offset int64
	Have   int64 // bytes in the partial; -1 if there is none
	Reason string
}

func (e *ResumeError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("inbox: cannot resume %q at offset %d: %s", e.VPath, e.Offset, e.Reason)
	}
	if e.Have < 0 {
		return fmt.Sprintf("inbox: cannot resume %q at offset %d: no partial file", e.VPath, e.Offset)
	}
	return fmt.Sprintf("inbox: cannot resume %q at offset %d: partial holds %d bytes", e.VPath, e.Offset, e.Have)
}

// Is makes errors.Is(err, ErrResume) true.
func (e *ResumeError) Is(t error) bool { return t == ErrResume }

// VerifyError: the received content does not match a SIZE or SHA1 header (or a
// header is malformed). The partial has been removed.
type VerifyError struct {
	VPath  string
	Header string // "SIZE" or "SHA1"
	Want   string // header value
	Got    string // what was received
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("inbox: %q failed verification: header %s is %q, received content gives %q", e.VPath, e.Header, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrVerify) true.
func (e *VerifyError) Is(t error) bool { return t == ErrVerify }

// WriteError: writing, syncing or renaming failed (disk full, I/O error). The
// previous copy of the file is untouched and the partial is kept, holding
// Kept bytes, for a later resume.
type WriteError struct {
	VPath  string
	Offset int64
	Kept   int64
	Err    error
}

func (e *WriteError) Error() string {
	what := "write"
	if errors.Is(e.Err, errNoSpace) {
		what = "disk full"
	}
	return fmt.Sprintf("inbox: %s: %q at offset %d: %v (previous copy kept; partial of %d bytes kept for resume)",
		what, e.VPath, e.Offset, e.Err, e.Kept)
}

// Unwrap returns the underlying error (e.g. syscall.ENOSPC).
func (e *WriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrWrite) true.
func (e *WriteError) Is(t error) bool { return t == ErrWrite }

// Options tune an Inbox.
type Options struct {
	Logger *slog.Logger // nil = slog.Default()
	// SaveEvery bounds how often the digest cache is rewritten after changes
	// (it is always written by SaveCache and Close). 0 = 2s; negative = after
	// every change.
	SaveEvery time.Duration
	// Fsync flushes each received file (and then its directory) to stable
	// storage before it is renamed into place, so that not even a power loss
	// leaves a short file under its real name. Off by default, as in rsync
	// and cp: the rename follows the last write and the verification, so a
	// crashed or killed client never leaves a half file under a real name
	// either way; what Fsync adds is durability across power loss, at the
	// price of two disk flushes per file.
	Fsync bool
	// Exact makes the inbox an exact mirror (fmqrun sync --delete): server
	// deletes and updates apply to every file, not only to those fmq
	// installed. Off, a file fmq did not write (or that was changed since)
	// is never deleted or overwritten.
	Exact bool
	// NumericIDs gives files the server's owner and group ids as they are
	// (rsync --numeric-ids), instead of the ids this machine has for the
	// server's user and group names.
	NumericIDs bool
}

// partFile is what a Partial writes through (an *os.File; tests inject faults).
type partFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Stat() (fs.FileInfo, error)
	Close() error
}

// Inbox is a directory receiving files.
type Inbox struct {
	dir        string
	root       *os.Root
	log        *slog.Logger
	saveEvery  time.Duration
	fsync      bool
	exact      bool
	numericIDs bool
	who        identity // who the client runs as: which owners it may give
	marker     *os.File // MarkerFile, open and locked while the inbox is
	id         string   // the inbox's id, from its marker

	// dirMu keeps Delete's removal of empty parent directories from racing
	// with Begin and Finish, which need those directories to exist.
	dirMu sync.RWMutex

	// dirs holds directories (inbox-relative) known to exist, so that a
	// tree of many small files does not walk and create every parent for
	// every file. Entries go when Delete removes a directory; an operation
	// that finds a known directory missing (removed behind our back)
	// forgets it and retries.
	dirsMu sync.Mutex
	dirs   map[string]struct{}

	mu       sync.Mutex
	cache    map[string]CacheEntry
	made     map[string]bool // directories fmq created (inbox-relative), saved with the cache
	dirty    bool
	lastSave time.Time
	active   map[string]*Partial
	closed   bool

	// dirTimes are announced directories (inbox-relative) changed since
	// their modification time was last set (dirtimes.go); dirTimer sets
	// them once live changes settle; dirTimesMu serializes the setting.
	dirTimes   map[string]struct{}
	dirTimer   *time.Timer
	dirTimesMu sync.Mutex

	// fast caches directory descriptors for the fast path (fast_linux.go);
	// nil where there is none.
	fast *fastDirs

	wrap func(partFile) partFile // test hook
}

// CacheEntry is one entry of the persistent digest cache.
type CacheEntry struct {
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"` // modification time, Unix nanoseconds
	SHA1  string `json:"sha1"`     // uppercase hex
	// Installed: fmq wrote this file (as a server's file). Only such a
	// file, unchanged since, may be deleted or overwritten by a server.
	Installed bool `json:"installed,omitempty"`
	// Origin: the published directory fmq installed it from (the server's
	// ORIGIN header, spec/filemq.md 7.2); only a delete or update from the
	// same origin applies to it. "" = unknown (a server without origins,
	// or an inbox older than them): any server's.
	Origin string `json:"origin,omitempty"`
	// Kind is "" for a file, KindLink for a symbolic link (Link is its
	// target; no size, mtime or digest), KindDir for a directory the
	// server announced (Installed: fmq created it).
	Kind string `json:"kind,omitempty"`
	Link string `json:"link,omitempty"`
	// Mode: for a directory, the mode the server announced (its MODE
	// header), sent back in the cache hash so that a change of mode while
	// the client was away is sent again. MTime, for a directory, is the
	// modification time it announced (MTIME; 0: none), set on the
	// directory after what it holds (ApplyDirTimes) and sent back too.
	Mode string `json:"mode,omitempty"`
}

// Open opens (creating it if needed) an inbox directory and loads its digest
// cache.
func Open(dir string) (*Inbox, error) { return OpenOptions(dir, Options{}) }

// OpenOptions is Open with options.
func OpenOptions(dir string, opt Options) (*Inbox, error) {
	if dir == "" {
		return nil, errors.New("inbox: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("inbox: create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("inbox: open %s: %w", dir, err)
	}
	ib := &Inbox{dir: dir, root: root, log: opt.Logger, saveEvery: opt.SaveEvery, fsync: opt.Fsync, exact: opt.Exact,
		numericIDs: opt.NumericIDs, who: currentIdentity(),
		active: make(map[string]*Partial), dirs: make(map[string]struct{}), fast: newFastDirs()}
	if err := ib.lock(); err != nil {
		root.Close()
		return nil, err
	}
	if ib.log == nil {
		ib.log = slog.Default()
	}
	if ib.saveEvery == 0 {
		ib.saveEvery = 2 * time.Second
	}
	ib.cache, ib.made = ib.loadCache()
	ib.lastSave = time.Now()
	return ib, nil
}

// Dir returns the inbox directory.
func (ib *Inbox) Dir() string { return ib.dir }

// Close saves the digest cache (if changed) and releases the directory.
// Transfers still running are aborted, keeping their partials.
func (ib *Inbox) Close() error {
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return nil
	}
	active := make([]*Partial, 0, len(ib.active))
	for _, p := range ib.active {
		active = append(active, p)
	}
	ib.mu.Unlock()
	for _, p := range active {
		p.Abort(true)
	}
	ib.stopDirTimes()
	ib.ApplyDirTimes()
	ib.dirTimesMu.Lock() // a timer's call that started meanwhile finds the inbox closed
	defer ib.dirTimesMu.Unlock()
	err := ib.SaveCache()
	ib.mu.Lock()
	ib.closed = true
	ib.mu.Unlock()
	ib.fast.closeAll()
	if cerr := ib.root.Close(); err == nil {
		err = cerr
	}
	ib.marker.Close() // releases the lock
	return err
}

// Resolve validates a server-sent virtual path and returns it relative to the
// inbox, slash-separated ("/a/b.txt" -> "a/b.txt"). The path must start with
// "/" (it is always taken relative to the inbox), name a file (not "/"), and
// follow internal/vpath's rules (no empty, "." or ".." components, no NUL,
// backslash or control character, at most MaxPath bytes and MaxComponent
// bytes per component) except that hidden components are allowed, and no
// component may be a name fmq reserves (Reserved). Errors are
// *UnsafePathError.
func (ib *Inbox) Resolve(vpath string) (string, error) { return resolve(vpath) }

func resolve(p string) (string, error) {
	if p == "/" {
		return "", &UnsafePathError{Path: p, Reason: "names the inbox itself, not a file"}
	}
	if why := vpath.Problem(Unhide(p)); why != "" {
		return "", &UnsafePathError{Path: p, Reason: why}
	}
	for _, c := range strings.Split(p[1:], "/") {
		if Reserved(c) {
			return "", &UnsafePathError{Path: p, Reason: fmt.Sprintf("has a component %q that fmq reserves for itself (inbox marker, digest cache, partial file)", c)}
		}
	}
	return p[1:], nil
}

// Unhide returns p with the leading "." of each hidden component made "_",
// so that internal/vpath's rules, which refuse hidden components, check
// the rest: fmq publishes and stores hidden files (dotfiles), all but the
// names it reserves (Reserved). "." and ".." components stay as they are,
// to be refused.
func Unhide(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	parts := strings.Split(p, "/")
	for i, c := range parts {
		if len(c) > 1 && c[0] == '.' && c != ".." {
			parts[i] = "_" + c[1:]
		}
	}
	return strings.Join(parts, "/")
}

// Reserved reports a file name fmq keeps for itself in an inbox: the
// marker, the digest cache (and its temporary file), and partial files
// (".NAME.fmqpart"). A server does not publish such names (it reports
// them) and a client refuses them.
func Reserved(name string) bool {
	switch name {
	case MarkerFile, CacheFile, CacheFile + ".tmp":
		return true
	}
	return len(name) > 1+len(PartSuffix) && name[0] == '.' && strings.HasSuffix(name, PartSuffix)
}

// partName returns the partial's relative path for a target's relative path.
func partName(rel string) string {
	dir, base := path.Split(rel)
	return dir + "." + base + PartSuffix
}

// osPath converts a slash-separated relative path for os.Root.
func osPath(rel string) string {
	if rel == "" {
		return "."
	}
	return filepath.FromSlash(rel)
}

// syncDir flushes a directory entry (best effort: not every file system can).
func (ib *Inbox) syncDir(rel string) {
	d, err := ib.root.Open(osPath(rel))
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// hashFile hashes the first n bytes of r into h (n < 0: until EOF). It returns
// the number of bytes hashed.
func hashFile(r io.ReaderAt, h hash.Hash, n int64) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off int64
	for n < 0 || off < n {
		want := int64(len(buf))
		if n >= 0 && n-off < want {
			want = n - off
		}
		m, err := r.ReadAt(buf[:want], off)
		h.Write(buf[:m])
		off += int64(m)
		if err == io.EOF {
			if n >= 0 && off < n {
				return off, io.ErrUnexpectedEOF
			}
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
	return off, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func hexSum(h hash.Hash) string {
	var b [sha1.Size]byte
	return strings.ToUpper(hex.EncodeToString(h.Sum(b[:0])))
}

// isDir reports whether rel exists as a directory (not following a final link).
func (ib *Inbox) isDir(rel string) bool {
	fi, err := ib.root.Lstat(osPath(rel))
	return err == nil && fi.IsDir()
}

// notExist reports a missing file, including a path through a non-directory.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}

// knownDir reports whether rel was seen to exist as a directory.
func (ib *Inbox) knownDir(rel string) bool {
	ib.dirsMu.Lock()
	defer ib.dirsMu.Unlock()
	_, ok := ib.dirs[rel]
	return ok
}

// markDirs records rel and its parents as existing directories.
func (ib *Inbox) markDirs(rel string) {
	ib.dirsMu.Lock()
	defer ib.dirsMu.Unlock()
	for d := rel; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		ib.dirs[d] = struct{}{}
	}
}

// forgetDirs drops rel and everything below it from the known directories.
func (ib *Inbox) forgetDirs(rel string) {
	ib.dirsMu.Lock()
	defer ib.dirsMu.Unlock()
	for d := range ib.dirs {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(ib.dirs, d)
		}
	}
	ib.fast.forget(rel)
}
