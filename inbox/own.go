package inbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MarkerFile marks a directory as an fmq inbox. It holds the inbox's
// random id (stable across runs) and the pid of the client using it, and it
// carries the lock that keeps a second client out. A server never
// publishes a directory holding it (or CacheFile) unless asked to.
const MarkerFile = ".fmq-inbox"

// More errors; test with errors.Is.
var (
	// ErrLocked: another client is using the inbox.
	ErrLocked = errors.New("inbox: in use by another fmq client")
	// ErrNotOwned: the file in the way was not written by fmq (or was
	// changed since); it is kept. The error is a *NotOwnedError.
	ErrNotOwned = errors.New("inbox: file not written by fmq")
)

var errLockHeld = errors.New("lock held")

// NotOwnedError: a server delete or update met a file fmq did not install
// (the user's own, or one changed since fmq wrote it). Nothing was touched.
type NotOwnedError struct {
	VPath string
	What  string // "deleted", "overwritten"
	// Origin is set when fmq installed the file, unchanged since, but from
	// another server's directory than the one asking (the origin recorded).
	Origin string
}

func (e *NotOwnedError) Error() string {
	if e.Origin != "" {
		return fmt.Sprintf("inbox: %q was installed by fmq from another server (origin %.8s): kept, not %s on behalf of this one", e.VPath, e.Origin, e.What)
	}
	return fmt.Sprintf("inbox: %q was not written by fmq (or was changed since): kept, not %s", e.VPath, e.What)
}

// Is makes errors.Is(err, ErrNotOwned) true.
func (e *NotOwnedError) Is(t error) bool { return t == ErrNotOwned }

type markerData struct {
	Inbox int    `json:"fmq_inbox"`
	ID    string `json:"id"`
	PID   int    `json:"pid"`
}

// lock creates (or reuses) the marker file, takes its lock and records our
// pid in it. The file stays open, holding the lock, until Close.
func (ib *Inbox) lock() error {
	f, err := ib.root.OpenFile(MarkerFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("inbox: create %s in %s: %w", MarkerFile, ib.dir, err)
	}
	var m markerData
	if b, err := io.ReadAll(io.LimitReader(f, 4096)); err == nil {
		json.Unmarshal(b, &m) // a damaged marker gets a new id
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLockHeld) {
			who := ""
			if m.PID > 0 {
				who = fmt.Sprintf(" (pid %d)", m.PID)
			}
			return fmt.Errorf("%w: %s is being synced by another client%s; wait for it to end or use another --inbox", ErrLocked, ib.dir, who)
		}
		return fmt.Errorf("inbox: lock %s: %w", ib.dir, err)
	}
	if len(m.ID) != 32 {
		var b [16]byte
		rand.Read(b[:])
		m.ID = hex.EncodeToString(b[:])
	}
	m.Inbox, m.PID = 1, os.Getpid()
	data, _ := json.Marshal(m)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(data, '\n'), 0)
	}
	ib.marker, ib.id = f, m.ID
	return nil
}

// ID returns the inbox's id, as written in its marker file. A client sends
// it to the server (ICANHAZ option INBOX), which refuses a subscription
// whose inbox it publishes.
func (ib *Inbox) ID() string { return ib.id }

// owned reports whether the regular file at rel is one fmq installed as
// vpath and nobody has changed since: its cache entry says so and its
// size and modification time (else its content) still match. It does not
// look at the file's origin (see mayReplaceInfo).
func (ib *Inbox) owned(vpath, rel string, fi fs.FileInfo) bool {
	ib.mu.Lock()
	e, ok := ib.cache[vpath]
	ib.mu.Unlock()
	if ok && e.Installed && e.Kind == KindLink {
		return ib.ownedLink(rel, e, fi)
	}
	if !ok || !e.Installed || e.Kind != "" || !fi.Mode().IsRegular() {
		return false
	}
	if e.Size == fi.Size() && e.MTime == fi.ModTime().UnixNano() {
		return true
	}
	sum, _, hfi, err := ib.hashRel(rel)
	if err != nil || sum != e.SHA1 {
		return false
	}
	e.Size, e.MTime = hfi.Size(), hfi.ModTime().UnixNano()
	ib.remember(vpath, e)
	return true
}

// mayReplace reports whether fmq may delete or overwrite what is at rel on
// behalf of the published directory origin (a server's ORIGIN header; ""
// for a server that sends none): a missing file, or one fmq installed from
// that same origin (always, in an exact mirror, for anything but a
// directory). A file installed before origins were recorded (or from a
// server without them) is any server's until one replaces it. It returns
// a *NotOwnedError otherwise.
func (ib *Inbox) mayReplace(vpath, rel, what, origin string) error {
	fi, err := ib.root.Lstat(osPath(rel))
	if err != nil {
		return nil
	}
	return ib.mayReplaceInfo(vpath, rel, what, origin, fi)
}

// mayReplaceInfo is mayReplace for what an Lstat of rel just returned.
func (ib *Inbox) mayReplaceInfo(vpath, rel, what, origin string, fi fs.FileInfo) error {
	if fi.IsDir() || ib.exact {
		return nil
	}
	if !ib.owned(vpath, rel, fi) {
		return &NotOwnedError{VPath: vpath, What: what}
	}
	if o := ib.originOf(vpath); o != "" && o != origin {
		return &NotOwnedError{VPath: vpath, What: what, Origin: o}
	}
	return nil
}

// originOf returns the origin recorded for an installed file ("" if none).
func (ib *Inbox) originOf(vpath string) string {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.cache[vpath].Origin
}
