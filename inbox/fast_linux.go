//go:build linux

package inbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fast path (Linux): a small file costs about six system calls instead
// of the ~40 that os.Root's per-operation path walks cost (it opens and
// closes every parent directory for each Lstat, OpenFile, Chmod, Chtimes and
// Rename). The inbox keeps a descriptor of each directory it writes into,
// opened once through os.Root (so with exactly os.Root's escape checks: a
// symbolic link is followed only while it stays inside the inbox), and then
// works on single names relative to it:
//
//	openat(dir, ".f.fmqpart", O_CREAT|O_EXCL|O_NOFOLLOW)  create the partial
//	pwrite                                                 the content
//	utimensat(fd)                                          the server's MTIME
//	fstat(fd)                                              size, mtime, mode for the cache
//	close
//	renameat2(dir, ".f.fmqpart", dir, "f", RENAME_NOREPLACE)
//
// plus fchmod when the mode the file was created with (the server's MODE,
// less the umask) is not the server's MODE. Only when the target exists does
// the rename fall back to the ownership check (fstatat, then renameat), so
// a file fmq did not write is still never overwritten, and no file can
// appear between the check and the rename on the fresh-file path.
//
// What a cached descriptor changes: it names a directory, not a path. A
// directory removed behind our back (and perhaps replaced, even by a
// symbolic link) is noticed (creating in a removed directory fails with
// ENOENT), forgotten, and the path resolved again through os.Root, which
// refuses a link leading out. Delete forgets what it removes. A directory
// renamed elsewhere by a local process keeps receiving for at most dirMaxAge
// (then the path is resolved again); the server cannot rename directories.
// At most maxDirs descriptors are kept (plus those in use).

// dirMaxAge bounds how long a directory descriptor is used before its path
// is resolved again.
const dirMaxAge = 250 * time.Millisecond

// dirRef is a cached directory descriptor. refs counts the partials using
// it; a forgotten one is closed when the last lets go, never under a user.
type dirRef struct {
	f     *os.File // keeps fd open
	fd    int
	refs  int
	born  time.Time
	stale bool
}

// fastDirs caches directory descriptors, inbox-relative path -> dirRef.
type fastDirs struct {
	mu sync.Mutex
	m  map[string]*dirRef
}

func newFastDirs() *fastDirs { return &fastDirs{m: make(map[string]*dirRef)} }

// acquire returns a descriptor of the directory rel ("." for the inbox),
// opened through root, and holds it until release.
func (c *fastDirs) acquire(root *os.Root, rel string) (*dirRef, error) {
	c.mu.Lock()
	if d := c.m[rel]; d != nil {
		if time.Since(d.born) < dirMaxAge {
			d.refs++
			c.mu.Unlock()
			return d, nil
		}
		c.dropLocked(rel, d)
	}
	c.mu.Unlock()
	f, err := root.Open(osPath(rel))
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		if err == nil {
			err = syscall.ENOTDIR
		}
		return nil, err
	}
	d := &dirRef{f: f, fd: int(f.Fd()), refs: 1, born: time.Now()}
	c.mu.Lock()
	if old := c.m[rel]; old != nil {
		c.dropLocked(rel, old)
	}
	if len(c.m) >= maxDirs {
		c.sweepLocked(d.born)
	}
	c.m[rel] = d
	c.mu.Unlock()
	return d, nil
}

// maxDirs bounds the cached descriptors: a tree of many directories
// keeps the ones in use and the most recent, not one per directory.
const maxDirs = 64

// sweepLocked drops the descriptors older than dirMaxAge and, if that is
// not enough, every one not in use (a tree written directory by directory
// needs only the current ones). c.mu is held.
func (c *fastDirs) sweepLocked(now time.Time) {
	for rel, d := range c.m {
		if now.Sub(d.born) >= dirMaxAge {
			c.dropLocked(rel, d)
		}
	}
	if len(c.m) < maxDirs {
		return
	}
	for rel, d := range c.m {
		if d.refs == 0 {
			c.dropLocked(rel, d)
		}
	}
}

// release lets go of d.
func (c *fastDirs) release(d *dirRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.refs--; d.refs == 0 && d.stale {
		d.f.Close()
	}
}

// dropLocked removes d from the cache, closing it once unused. c.mu is held.
func (c *fastDirs) dropLocked(rel string, d *dirRef) {
	if c.m[rel] == d {
		delete(c.m, rel)
	}
	if !d.stale {
		d.stale = true
		if d.refs == 0 {
			d.f.Close()
		}
	}
}

// forget drops rel and the directories below it.
func (c *fastDirs) forget(rel string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, d := range c.m {
		if r == rel || rel == "." || strings.HasPrefix(r, rel+"/") {
			c.dropLocked(r, d)
		}
	}
}

// closeAll drops every descriptor (Inbox.Close: no partial is left).
func (c *fastDirs) closeAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for rel, d := range c.m {
		c.dropLocked(rel, d)
	}
}

// rawFile is a partial opened on the fast path: a bare descriptor, so that
// no os.File (four fcntl and a failed epoll registration for a regular
// file, a finalizer) is made per file.
type rawFile struct {
	fd     int
	closed bool
}

func (r *rawFile) WriteAt(b []byte, off int64) (int, error) {
	return fullAt(b, off, io.ErrShortWrite, func(b []byte, off int64) (int, error) { return unix.Pwrite(r.fd, b, off) })
}

func (r *rawFile) ReadAt(b []byte, off int64) (int, error) {
	return fullAt(b, off, io.EOF, func(b []byte, off int64) (int, error) { return unix.Pread(r.fd, b, off) })
}

// fullAt runs pwrite or pread (op) until all of b is done, retrying EINTR;
// a call that moves nothing ends it with stop.
func fullAt(b []byte, off int64, stop error, op func([]byte, int64) (int, error)) (int, error) {
	n := 0
	for n < len(b) {
		m, err := op(b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, stop
		}
		n += m
	}
	return n, nil
}

func (r *rawFile) Truncate(size int64) error {
	return ignoringEINTR(func() error { return unix.Ftruncate(r.fd, size) })
}
func (r *rawFile) Sync() error { return ignoringEINTR(func() error { return unix.Fsync(r.fd) }) }

func (r *rawFile) Stat() (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return nil, err
	}
	return statInfo(&st, ""), nil
}

func (r *rawFile) Close() error {
	if r.closed {
		return os.ErrClosed
	}
	r.closed = true
	return unix.Close(r.fd) // never retried: Linux frees the descriptor even on EINTR
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// rawInfo is an fs.FileInfo from a stat.
type rawInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i *rawInfo) Name() string       { return i.name }
func (i *rawInfo) Size() int64        { return i.size }
func (i *rawInfo) Mode() fs.FileMode  { return i.mode }
func (i *rawInfo) ModTime() time.Time { return i.mtime }
func (i *rawInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *rawInfo) Sys() any           { return nil }

func statInfo(st *unix.Stat_t, name string) *rawInfo {
	i := &rawInfo{name: name, size: st.Size, mode: fs.FileMode(st.Mode & 0o777),
		mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec))}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		i.mode |= fs.ModeDir
	case unix.S_IFLNK:
		i.mode |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFIFO:
		i.mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		i.mode |= fs.ModeSocket
	default:
		i.mode |= fs.ModeDevice
	}
	return i
}

// lstatAt is Lstat of a single name in a directory.
func lstatAt(dir int, name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return statInfo(&st, name), nil
}

// createAt creates name in dir, exclusively, never following a link.
func createAt(dir int, name string, perm fs.FileMode) (*rawFile, error) {
	for {
		fd, err := unix.Openat(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: name, Err: err}
		}
		return &rawFile{fd: fd}, nil
	}
}

// removeAt removes the file name in dir.
func removeAt(dir int, name string) error {
	if err := unix.Unlinkat(dir, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// installAt renames from to to in dir. noReplace: only if to does not
// exist (the error is then fs.ErrExist; a file system without
// RENAME_NOREPLACE answers errNoReplace).
func installAt(dir int, from, to string, noReplace bool) error {
	var flags uint
	if noReplace {
		flags = unix.RENAME_NOREPLACE
	}
	err := ignoringEINTR(func() error { return unix.Renameat2(dir, from, dir, to, flags) })
	if err == nil {
		return nil
	}
	if noReplace && (err == unix.EINVAL || err == unix.ENOSYS) {
		return errNoReplace
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}

var errNoReplace = errors.New("rename without replacing not supported")

// setTimes sets a descriptor's access and modification times (futimens).
func setTimes(fd int, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return ignoringEINTR(func() error {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

// setMode is fchmod.
func setMode(fd int, mode fs.FileMode) error {
	return ignoringEINTR(func() error { return unix.Fchmod(fd, uint32(mode.Perm())) })
}

// fastState is a partial's part of the fast path: the directory it lives in
// and its descriptor.
type fastState struct {
	dir  *dirRef
	file *rawFile
}

// split returns a target's directory ("." for the inbox) and the target's
// and the partial's names in it.
func split(rel string) (dir, base, part string) {
	dir, base = path.Split(rel)
	if dir == "" {
		dir = "."
	} else {
		dir = dir[:len(dir)-1]
	}
	return dir, base, "." + base + PartSuffix
}

// createFast is open(0) on the fast path (ib.dirMu read-held, parents made).
// It reports false when the os.Root path must do it instead: no fast path
// here, or the directory could not be opened (gone, a link out of the inbox,
// not a directory), which that path explains.
func (p *Partial) createFast() (bool, error) {
	ib := p.ib
	if ib.fast == nil {
		return false, nil
	}
	dirRel, base, partBase := split(p.rel)
	d, err := ib.fast.acquire(ib.root, dirRel)
	if err != nil {
		return false, nil
	}
	fail := func(err error) (bool, error) {
		ib.fast.release(d)
		return true, err
	}
	if p.whole {
		// Finish checks the target.
	} else if fi, err := lstatAt(d.fd, base); err == nil {
		if fi.IsDir() {
			return fail(fmt.Errorf("%w: %q", ErrConflict, p.vpath))
		}
		if err := ib.mayReplaceInfo(p.vpath, p.rel, "overwritten", p.origin, fi); err != nil {
			return fail(err)
		}
	}
	// Create a fresh file: O_EXCL never follows a link. Whatever is in the
	// way (an old partial, a planted symlink) is removed first.
	f, err := createAt(d.fd, partBase, 0o644)
	if errors.Is(err, fs.ErrExist) {
		if err := removeAt(d.fd, partBase); err != nil && !notExist(err) {
			return fail(fmt.Errorf("inbox: remove old partial of %q: %w", p.vpath, err))
		}
		f, err = createAt(d.fd, partBase, 0o644)
	}
	if notExist(err) {
		// The directory went away (removed, perhaps replaced): forget it
		// and let the os.Root path resolve the name again.
		ib.fast.release(d)
		ib.fast.forget(dirRel)
		ib.forgetDirs(dirRel)
		return false, nil
	}
	if err != nil {
		return fail(fmt.Errorf("inbox: create partial of %q: %w", p.vpath, err))
	}
	p.fast = fastState{dir: d, file: f}
	p.f = f
	return true, nil
}

// finishFast is the end of Finish on the fast path (p.mu held, the content
// verified; sum is its SHA-1): metadata through the descriptor, then the
// rename, which replaces a file only after the ownership check. It reports
// false for a partial not made by createFast.
func (p *Partial) finishFast(headers map[string]string, sum string) (bool, error) {
	if p.fast.file == nil {
		return false, nil
	}
	ib := p.ib
	if ib.fsync {
		if err := p.f.Sync(); err != nil {
			p.f.Close()
			p.end(&WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err})
			return true, p.ended
		}
	}
	fd := p.fast.file.fd
	m := parseMeta(headers)
	if m.hasMTime {
		if err := setTimes(fd, m.mtime); err != nil {
			ib.log.Warn("inbox: cannot set the modification time", "path", p.vpath, "err", err)
		}
	}
	// One fstat tells what the file already has (the owner and group it
	// was created with, the mode less the umask) and gives the cache its
	// size and mtime: a chown or chmod only when something differs.
	var st unix.Stat_t
	statErr := unix.Fstat(fd, &st)
	chowned := false
	ib.applyOwner(p.vpath, m, func(uid, gid int) error {
		if statErr == nil && (uid < 0 || uint32(uid) == st.Uid) && (gid < 0 || uint32(gid) == st.Gid) {
			return nil
		}
		chowned = true
		return ignoringEINTR(func() error { return unix.Fchown(fd, uid, gid) })
	})
	if chowned && !m.hasMode && statErr == nil {
		m.mode, m.hasMode = fs.FileMode(st.Mode&0o777), true // a chown may clear mode bits: set them again
	}
	if m.hasMode && (statErr != nil || chowned || fs.FileMode(st.Mode&0o777) != m.mode) {
		if err := setMode(fd, m.mode); err != nil {
			ib.log.Warn("inbox: cannot set the mode", "path", p.vpath, "mode", m.mode, "err", err)
		}
	}
	if err := p.f.Close(); err != nil {
		p.end(&WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err})
		return true, p.ended
	}
	dirRel, base, partBase := split(p.rel)
	dir := p.fast.dir.fd
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	// A fresh name is taken without a check (and nothing can appear in
	// between); a name in use only after the ownership check.
	err := installAt(dir, partBase, base, true)
	if errors.Is(err, fs.ErrExist) || err == errNoReplace {
		if fi, lerr := lstatAt(dir, base); lerr == nil {
			if err := ib.mayReplaceInfo(p.vpath, p.rel, "overwritten", p.origin, fi); err != nil {
				removeAt(dir, partBase)
				p.end(err)
				return true, err
			}
		}
		err = installAt(dir, partBase, base, false)
	}
	if err != nil {
		if fi, lerr := lstatAt(dir, base); lerr == nil && fi.IsDir() {
			if p.whole {
				removeAt(dir, partBase) // made without the check Begin makes
			}
			p.end(fmt.Errorf("%w: %q", ErrConflict, p.vpath))
			return true, p.ended
		}
		p.end(&WriteError{VPath: p.vpath, Offset: p.size, Kept: p.size, Err: err})
		return true, p.ended
	}
	if ib.fsync {
		ib.syncDir(dirRel)
	}
	if statErr == nil {
		ib.remember(p.vpath, CacheEntry{Size: st.Size, MTime: st.Mtim.Nano(), SHA1: sum, Installed: true, Origin: p.origin})
	}
	p.end(&endedError{p.vpath, "finished"})
	return true, nil
}

// releaseFast lets go of the partial's directory (p.end).
func (p *Partial) releaseFast() {
	if p.fast.dir != nil {
		p.ib.fast.release(p.fast.dir)
		p.fast = fastState{}
	}
}

// size is the number of cached descriptors (tests).
func (c *fastDirs) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
