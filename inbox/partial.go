package inbox

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/fmq/fmq/internal/chunksum"
)

var errNoSpace error = syscall.ENOSPC

// Partial is one file being received. Create it with Inbox.Begin, feed it with
// Write, end it with Finish or Abort.
type Partial struct {
	ib      *Inbox
	vpath   string
	rel     string // target, relative to the inbox
	partRel string // partial file, relative to the inbox
	origin  string // the server directory it comes from (ORIGIN header)
	whole   bool   // BeginWhole: the target is checked by Finish only

	mu    sync.Mutex
	f     partFile
	fast  fastState // the fast path's directory and descriptor (fast_linux.go)
	h     hash.Hash // SHA-1 of bytes [0, size) (once the hasher has caught up)
	size  int64
	ended error // non-nil once finished, aborted, cancelled or failed

	// hasher, when running, feeds h on its own goroutine with the chunks
	// given to WriteOwned, in order, so hashing overlaps writing (or, for a
	// verified partial, checks each chunk against its digest).
	hashq    chan hashJob
	hashDone chan struct{}

	// verified: every chunk carries its own digest (BeginVerified); h is
	// nil and the file's SHA-1 comes from the SHA1 header at Finish.
	verified bool
	// badChunk is the first chunk whose digest did not match.
	badChunk atomic.Pointer[VerifyError]
}

// hashJob is one chunk for the hasher: fed to the SHA-1, or checked.
type hashJob struct {
	data   []byte
	off    int64
	want   chunksum.Digest
	verify bool
	// release, when set, is called once data is hashed (or checked): the
	// caller's buffer is then no longer referenced (WriteOwned).
	release func()
}

// run hashes or checks one chunk, then releases it; on the hasher
// goroutine or in line.
func (p *Partial) run(j hashJob) {
	if j.release != nil {
		defer j.release()
	}
	if !j.verify {
		p.h.Write(j.data)
		return
	}
	if got := chunksum.Of(j.data); got != j.want {
		p.badChunk.CompareAndSwap(nil, &VerifyError{VPath: p.vpath, Header: chunksum.Header + " at offset " + strconv.FormatInt(j.off, 10),
			Want: j.want.String(), Got: got.String()})
	}
}

// asyncHashMin is the smallest WriteOwned chunk hashed on the hasher
// goroutine; smaller ones are not worth the handoff.
const asyncHashMin = 128 << 10

// hashAsync queues data for the hasher, starting it if needed. The queue is
// short (2 chunks): a hasher that falls behind holds the writer back
// rather than piling chunks up in memory.
func (p *Partial) hashAsync(j hashJob) {
	if p.hashq == nil {
		p.hashq, p.hashDone = make(chan hashJob, 2), make(chan struct{})
		go func(q <-chan hashJob, done chan<- struct{}) {
			defer close(done)
			for j := range q {
				p.run(j)
			}
		}(p.hashq, p.hashDone)
	}
	p.hashq <- j
}

// hashWait stops the hasher once it has hashed everything queued. p.mu is held.
func (p *Partial) hashWait() {
	if p.hashq != nil {
		close(p.hashq)
		<-p.hashDone
		p.hashq, p.hashDone = nil, nil
	}
}

// Begin starts (offset 0) or resumes (offset N > 0) receiving vpath. The
// partial lives next to the target under a hidden name (a/.b.txt.fmqpart), so
// it is never republished by a relay and the previous copy of the file stays
// under its real name until Finish. Offset 0 creates (or truncates) the
// partial; offset N must equal the partial's current size (else a
// *ResumeError), and its N bytes are hashed now so that the SHA1 check at
// Finish covers the whole file. Only one transfer per file may run (ErrBusy).
// Parent directories are created as needed.
func (ib *Inbox) Begin(vpath string, offset int64) (*Partial, error) {
	return ib.begin(vpath, offset, false, "", false)
}

// BeginVerified is Begin for a transfer whose every chunk carries its own
// digest (the CHUNK-DIGEST extension, spec/filemq.md 7.2): chunks are given
// with WriteChunk and checked against their digests instead of feeding a
// whole-file SHA-1, so a resumed partial's prefix is not read again (the
// server checked its SHA1@N before resuming), and Finish records the SHA1
// header, which it then requires, as the file's digest in the cache.
func (ib *Inbox) BeginVerified(vpath string, offset int64) (*Partial, error) {
	return ib.begin(vpath, offset, true, "", false)
}

// BeginFrom is Begin (BeginVerified when verified) for a file from the
// published directory origin (the server's ORIGIN header, "" without
// one): a file in the way is replaced only if fmq installed it from the
// same origin (or the inbox is an exact mirror), and the file installed
// records origin, for the deletes and updates that follow.
func (ib *Inbox) BeginFrom(vpath string, offset int64, verified bool, origin string) (*Partial, error) {
	return ib.begin(vpath, offset, verified, origin, false)
}

// BeginWhole is BeginFrom at offset 0 of a file whose first chunk is also
// its last (the client knows it from the chunk's eof flag): what is in the
// way of the target is checked by Finish only, which checks it anyway
// (and refuses the same files with the same errors), so a small file costs
// one stat less.
func (ib *Inbox) BeginWhole(vpath string, verified bool, origin string) (*Partial, error) {
	return ib.begin(vpath, 0, verified, origin, true)
}

func (ib *Inbox) begin(vpath string, offset int64, verified bool, origin string, whole bool) (*Partial, error) {
	rel, err := resolve(vpath)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &ResumeError{VPath: vpath, Offset: offset, Have: -1, Reason: "negative offset"}
	}
	p := &Partial{ib: ib, vpath: vpath, rel: rel, partRel: partName(rel), verified: verified, origin: origin, whole: whole}
	if !verified {
		p.h = sha1.New()
	}
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return nil, ErrClosed
	}
	if _, busy := ib.active[vpath]; busy {
		ib.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrBusy, vpath)
	}
	ib.active[vpath] = p
	ib.mu.Unlock()

	if err := p.open(offset); err != nil {
		ib.release(p)
		return nil, err
	}
	if ib.wrap != nil {
		p.f = ib.wrap(p.f)
	}
	return p, nil
}

func (p *Partial) open(offset int64) error {
	ib := p.ib
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	if err := ib.mkParents(p.vpath, p.rel); err != nil {
		return err
	}
	if offset == 0 {
		if done, err := p.createFast(); done {
			return err
		}
	}
	// One Lstat of the target for both checks (a path walk each).
	if fi, err := ib.root.Lstat(osPath(p.rel)); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %q", ErrConflict, p.vpath)
		}
		if err := ib.mayReplaceInfo(p.vpath, p.rel, "overwritten", p.origin, fi); err != nil {
			return err
		}
	}
	part := osPath(p.partRel)
	if offset == 0 {
		// Create a fresh file: O_EXCL never follows a link. Whatever is in
		// the way (an old partial, a planted symlink) is removed first.
		create := func() (*os.File, error) {
			return ib.root.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		}
		f, err := create()
		if errors.Is(err, fs.ErrExist) {
			if err := ib.root.Remove(part); err != nil && !notExist(err) {
				return fmt.Errorf("inbox: remove old partial of %q: %w", p.vpath, err)
			}
			f, err = create()
		} else if notExist(err) && path.Dir(p.rel) != "." {
			// A directory we knew was removed behind our back.
			ib.forgetDirs(path.Dir(p.rel))
			if err := ib.mkParents(p.vpath, p.rel); err != nil {
				return err
			}
			f, err = create()
		}
		if err != nil {
			if uerr := ib.throughLink(p.vpath, p.rel); uerr != nil {
				return uerr // a known directory replaced by a link out
			}
			return fmt.Errorf("inbox: create partial of %q: %w", p.vpath, err)
		}
		p.f = f
		return nil
	}
	li, err := ib.root.Lstat(part)
	if err != nil {
		if notExist(err) {
			return &ResumeError{VPath: p.vpath, Offset: offset, Have: -1}
		}
		return fmt.Errorf("inbox: stat partial of %q: %w", p.vpath, err)
	}
	if !li.Mode().IsRegular() {
		return &ResumeError{VPath: p.vpath, Offset: offset, Have: -1, Reason: "partial is not a regular file"}
	}
	if li.Size() != offset {
		return &ResumeError{VPath: p.vpath, Offset: offset, Have: li.Size()}
	}
	f, err := ib.root.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("inbox: open partial of %q: %w", p.vpath, err)
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(fi, li) || fi.Size() != offset {
		f.Close()
		return &ResumeError{VPath: p.vpath, Offset: offset, Have: -1, Reason: "partial changed while opening"}
	}
	if p.h != nil {
		if _, err := hashFile(f, p.h, offset); err != nil {
			f.Close()
			return fmt.Errorf("inbox: read partial of %q: %w", p.vpath, err)
		}
	}
	p.f = f
	p.size = offset
	return nil
}

// VPath returns the virtual path being received.
func (p *Partial) VPath() string { return p.vpath }

// Size returns the number of bytes received so far (including a resumed
// prefix): the offset the next Write must use.
func (p *Partial) Size() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// Write appends data, which must start at offset == Size() (else an
// *OrderError; nothing is written). On a write error (e.g. disk full) the
// partial is cut back to its size before this call and closed, the previous
// copy of the file is untouched, and a *WriteError is returned: resume later
// with Begin(vpath, err.Kept). Zero-length writes are accepted.
func (p *Partial) Write(offset int64, data []byte) error {
	return p.write(offset, data, false, hashJob{})
}

// WriteOwned is Write for a caller that hands data over: it must not modify
// data until release is called (a chunk aliasing a received frame
// qualifies). Large chunks are then hashed on a goroutine of their own while
// the next chunk is written, instead of in line. release (nil: none) is
// called once, whatever the outcome, when the partial no longer references
// data: after the hash, or at once when data is not written.
func (p *Partial) WriteOwned(offset int64, data []byte, release func()) error {
	return p.write(offset, data, true, hashJob{release: release})
}

// WriteChunk is WriteOwned for a partial made by BeginVerified: digest is
// the chunk's XXH3 header. A missing or malformed digest, or one that does
// not match the chunk (checked in line, before the chunk is written), fails
// at once: a *VerifyError, the partial removed.
//
// release is WriteOwned's.
func (p *Partial) WriteChunk(offset int64, data []byte, digest string, release func()) error {
	want, err := chunksum.Parse(digest)
	if err != nil {
		if release != nil {
			release()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ended != nil {
			return p.ended
		}
		if digest == "" {
			digest = "(missing)"
		}
		return p.reject(&VerifyError{VPath: p.vpath, Header: chunksum.Header + " at offset " + strconv.FormatInt(offset, 10), Want: digest, Got: "(no digest)"})
	}
	return p.write(offset, data, true, hashJob{want: want, verify: true, release: release})
}

// Verified reports whether the partial was made by BeginVerified.
func (p *Partial) Verified() bool { return p.verified }

// reject removes the partial after a failed check and ends the transfer
// with verr. p.mu is held.
func (p *Partial) reject(verr *VerifyError) error {
	p.hashWait()
	p.f.Close()
	if err := p.ib.root.Remove(osPath(p.partRel)); err != nil && !notExist(err) {
		p.ib.log.Warn("inbox: cannot remove rejected partial", "path", p.vpath, "err", err)
	}
	p.end(verr)
	return verr
}

func (p *Partial) write(offset int64, data []byte, owned bool, j hashJob) error {
	release := j.release
	j.release = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	handed, err := p.writeLocked(offset, data, owned, j, release)
	if !handed && release != nil {
		release() // data was not handed to run: nothing references it
	}
	return err
}

// writeLocked is write with p.mu held; handed: data went to run, which
// calls release.
func (p *Partial) writeLocked(offset int64, data []byte, owned bool, j hashJob, release func()) (handed bool, _ error) {
	if p.ended != nil {
		return false, p.ended
	}
	if p.verified != j.verify {
		return false, fmt.Errorf("inbox: %q: WriteChunk is for partials made by BeginVerified, and only it", p.vpath)
	}
	if offset != p.size {
		return false, &OrderError{VPath: p.vpath, Want: p.size, Got: offset}
	}
	if bad := p.badChunk.Load(); bad != nil { // found by the hasher since the last write
		return false, p.reject(bad)
	}
	if j.verify {
		// A chunk digest (XXH3, memory speed) is checked in line, before
		// the chunk is written: handing it to the hasher goroutine cost the
		// client more in wake-ups than the check itself (bench/RESULTS.md,
		// "Client receive path").
		p.run(hashJob{data: data, off: offset, want: j.want, verify: true})
		if bad := p.badChunk.Load(); bad != nil {
			return false, p.reject(bad)
		}
	}
	if len(data) == 0 {
		return false, nil
	}
	n, err := p.f.WriteAt(data, offset)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		kept := offset
		if terr := p.f.Truncate(offset); terr != nil {
			kept = -1 // unknown: Begin's size check will tell
			if fi, serr := p.ib.root.Lstat(osPath(p.partRel)); serr == nil {
				kept = fi.Size()
			}
		}
		p.f.Close()
		werr := &WriteError{VPath: p.vpath, Offset: offset, Kept: kept, Err: err}
		p.end(werr)
		p.ib.log.Warn("inbox: write failed", "path", p.vpath, "offset", offset, "err", err)
		return false, werr
	}
	if j.verify {
		p.size += int64(n)
		return false, nil // checked above
	}
	j.data, j.off, j.release = data, offset, release
	switch {
	case owned && (len(data) >= asyncHashMin || p.hashq != nil):
		p.hashAsync(j) // once started, every owned chunk goes through it: order kept
	default:
		p.hashWait() // a caller's buffer is hashed now, after what is queued
		p.run(j)
	}
	p.size += int64(n)
	return true, nil
}

// end marks the transfer over and frees the file's slot. p.mu is held.
// endedError is why a partial's transfer ended (ErrFinished: finished,
// aborted, deleted), formatted only if asked: one is made for every file.
type endedError struct{ vpath, how string }

func (e *endedError) Error() string {
	return ErrFinished.Error() + ": " + strconv.Quote(e.vpath) + " " + e.how
}
func (e *endedError) Unwrap() error { return ErrFinished }

func (p *Partial) end(reason error) {
	p.hashWait()
	p.ended = reason
	p.releaseFast()
	p.ib.release(p)
}

func (ib *Inbox) release(p *Partial) {
	ib.mu.Lock()
	if ib.active[p.vpath] == p {
		delete(ib.active, p.vpath)
	}
	ib.mu.Unlock()
}

// mkParents creates the parent directories of rel. A non-directory in the way
// (a stale file whose name the server now uses as a directory) gives
// ErrConflict naming it; the caller may Delete it and retry.
func (ib *Inbox) mkParents(vpath, rel string) error {
	dir := path.Dir(rel)
	if dir == "." || ib.knownDir(dir) {
		return nil
	}
	// The missing ones are fmq's: a delete that leaves them empty removes
	// them, never a directory of the user's.
	if err := ib.throughLinkParent(vpath, dir); err != nil {
		return err
	}
	var missing []string
	for d := dir; d != "."; d = path.Dir(d) {
		if _, err := ib.root.Lstat(osPath(d)); err == nil {
			break
		}
		missing = append(missing, d)
	}
	err := ib.root.MkdirAll(osPath(dir), 0o755)
	if err == nil {
		ib.markDirs(dir)
		if len(missing) > 0 {
			ib.mu.Lock()
			for _, d := range missing {
				ib.made[d] = true
			}
			ib.dirty = true
			ib.mu.Unlock()
		}
		return nil
	}
	for d := dir; d != "."; d = path.Dir(d) {
		if fi, lerr := ib.root.Lstat(osPath(d)); lerr == nil && fi.Mode().IsRegular() {
			return fmt.Errorf("%w: %q needs directory %q, which is a file", ErrConflict, vpath, "/"+d)
		}
	}
	if uerr := ib.throughLink(vpath, rel); uerr != nil {
		return uerr
	}
	return fmt.Errorf("inbox: create directory for %q: %w", vpath, err)
}

// throughLink explains a failed operation on rel: when one of its parent
// directories is a symbolic link that os.Root cannot follow (it leads out
// of the inbox, or nowhere), the server's path is unsafe
// (*UnsafePathError), not a storage failure. Otherwise it returns nil.
func (ib *Inbox) throughLink(vpath, rel string) error {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		fi, err := ib.root.Lstat(osPath(d))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		if _, err := ib.root.Stat(osPath(d)); err != nil {
			return &UnsafePathError{Path: vpath, Reason: fmt.Sprintf("leads through the symbolic link %q out of the inbox", "/"+d)}
		}
	}
	return nil
}

// Finish ends the transfer: it checks the SIZE and SHA1 headers when present
// (SHA1 against the running SHA-1 of the whole content, case-insensitively),
// fsyncs, and atomically renames the partial over the target, then records the
// digest in the cache. On a mismatch the partial is removed and a *VerifyError
// returned; the previous copy of the file stays. If syncing or renaming fails,
// a *WriteError is returned and the partial is kept.
func (p *Partial) Finish(headers map[string]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended != nil {
		return p.ended
	}
	ib := p.ib
	p.hashWait()
	if bad := p.badChunk.Load(); bad != nil {
		return p.reject(bad)
	}
	var sum string
	if p.verified {
		// Every chunk matched its digest: the content is what the server
		// read, whose SHA-1 it states.
		v, ok := header(headers, "SHA1")
		v = strings.ToUpper(strings.TrimSpace(v))
		if _, err := hex.DecodeString(v); !ok || err != nil || len(v) != 2*sha1.Size {
			return p.reject(&VerifyError{VPath: p.vpath, Header: "SHA1", Want: "(a SHA-1 with the chunk digests)", Got: v})
		}
		sum = v
	} else {
		sum = hexSum(p.h)
	}
	fail := func(header, want, got string) error {
		return p.reject(&VerifyError{VPath: p.vpath, Header: header, Want: want, Got: got})
	}
	if v, ok := header(headers, "SIZE"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return fail("SIZE", v, "(not a size)")
		}
		if n != p.size {
			return fail("SIZE", v, strconv.FormatInt(p.size, 10))
		}
	}
	if v, ok := header(headers, "SHA1"); ok && !p.verified && !strings.EqualFold(strings.TrimSpace(v), sum) {
		return fail("SHA1", v, sum)
	}
	keep := func(err error) error {
		p.f.Close()
		werr := &WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err}
		p.end(werr)
		return werr
	}
	if done, err := p.finishFast(headers, sum); done {
		return err
	}
	if ib.fsync {
		if err := p.f.Sync(); err != nil {
			return keep(err)
		}
	}
	if err := p.f.Close(); err != nil {
		p.end(&WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err})
		return p.ended
	}
	// The server's mode and mtime, on the partial before it takes the
	// target's name; then its size and mtime for the cache (the same file
	// after the rename).
	ib.applyMeta(p.vpath, p.partRel, parseMeta(headers))
	fi, statErr := ib.root.Lstat(osPath(p.partRel))
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	if err := ib.mayReplace(p.vpath, p.rel, "overwritten", p.origin); err != nil {
		ib.root.Remove(osPath(p.partRel))
		p.end(err)
		return err
	}
	// The partial sits next to the target, so the parent directory exists.
	if err := ib.root.Rename(osPath(p.partRel), osPath(p.rel)); err != nil {
		if ib.isDir(p.rel) {
			p.end(fmt.Errorf("%w: %q", ErrConflict, p.vpath))
			return p.ended
		}
		p.end(&WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err})
		return p.ended
	}
	if ib.fsync {
		ib.syncDir(path.Dir(p.rel))
	}
	if statErr == nil {
		ib.remember(p.vpath, CacheEntry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), SHA1: sum, Installed: true, Origin: p.origin})
	}
	p.end(&endedError{p.vpath, "finished"})
	return nil
}

// header looks a header up case-insensitively.
func header(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// Abort ends the transfer without installing the file. With keep the partial
// stays on disk for a later resume; otherwise it is removed. Aborting an ended
// transfer does nothing (but removes the partial if !keep and it is not in
// use by a newer transfer).
func (p *Partial) Abort(keep bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.ended == nil {
		err = p.f.Close()
		p.end(&endedError{p.vpath, "aborted"})
	}
	if !keep {
		p.ib.mu.Lock()
		_, busy := p.ib.active[p.vpath]
		p.ib.mu.Unlock()
		if !busy {
			if rerr := p.ib.root.Remove(osPath(p.partRel)); rerr != nil && !notExist(rerr) && err == nil {
				err = rerr
			}
		}
	}
	return err
}

// cancel is Abort(false) from Inbox.Delete.
func (p *Partial) cancel() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended == nil {
		p.f.Close()
		p.end(&endedError{p.vpath, "deleted by the server during the transfer"})
	}
}

// Delete removes a file (a server delete): the file, its partial, and parent
// directories left empty (never the inbox itself). A file fmq did not
// install, or that changed since, is kept (a *NotOwnedError) unless the
// inbox is an exact mirror (Options.Exact). A transfer of the file in
// progress is cancelled. A missing file is not an error. Deleting a path that
// is a directory in the inbox returns ErrConflict.
func (ib *Inbox) Delete(vpath string) error { return ib.DeleteFrom(vpath, "") }

// DeleteFrom is Delete on behalf of the published directory origin (the
// delete's ORIGIN header): a file fmq installed from another origin is
// kept too (a *NotOwnedError naming it), unless the inbox is an exact
// mirror.
func (ib *Inbox) DeleteFrom(vpath, origin string) error {
	rel, err := resolve(vpath)
	if err != nil {
		return err
	}
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return ErrClosed
	}
	p := ib.active[vpath]
	ib.mu.Unlock()
	if p != nil {
		p.cancel()
	}
	if ib.isDir(rel) {
		return ib.removeDir(vpath, rel)
	}
	targets := []string{rel, partName(rel)}
	kept := ib.mayReplace(vpath, rel, "deleted", origin)
	if kept != nil {
		targets = targets[1:] // the partial is ours; the file is not
	}
	var first error
	for _, r := range targets {
		if err := ib.root.Remove(osPath(r)); err != nil && !notExist(err) && !errors.Is(err, syscall.ENOTDIR) && first == nil {
			first = fmt.Errorf("inbox: delete %q: %w", vpath, err)
			if uerr := ib.throughLink(vpath, rel); uerr != nil {
				first = uerr
			}
		}
	}
	if kept != nil {
		return kept
	}
	ib.forget(vpath)
	ib.dirMu.Lock()
	defer ib.dirMu.Unlock()
	ib.pruneParents(rel)
	return first
}
