package inbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/fmq/fmq/internal/vpath"
)

// Kinds of digest cache entries other than files (CacheEntry.Kind).
const (
	KindLink = "link" // a symbolic link: CacheEntry.Link is its target
	KindDir  = "dir"  // a directory the server announced (Installed: fmq created it)
)

// validEntry checks a digest cache entry loaded from disk.
func validEntry(e CacheEntry) bool {
	switch e.Kind {
	case "":
		return validSum(e.SHA1) && e.Size >= 0
	case KindLink:
		return e.Link != ""
	case KindDir:
		return true
	}
	return false
}

// LinkTarget checks a server's symbolic link (vpath, target: relative,
// slash-separated, resolved from the link's directory) and returns the
// virtual path it leads to. A target that is absolute, leaves the inbox or
// holds a name the inbox would refuse is an *UnsafePathError. The caller
// checks that the target stays inside its subscription.
func LinkTarget(vp, target string) (string, error) {
	rel, err := resolve(vp)
	if err != nil {
		return "", err
	}
	bad := func(why string) (string, error) {
		return "", &UnsafePathError{Path: vp, Reason: fmt.Sprintf("is a link to %q, which %s", target, why)}
	}
	switch {
	case target == "":
		return bad("is empty")
	case strings.HasPrefix(target, "/"):
		return bad("is absolute (links are carried relative)")
	case strings.ContainsAny(target, "\\\x00"):
		return bad("holds a backslash or NUL")
	}
	lex := path.Join(path.Dir(rel), target)
	if lex == ".." || strings.HasPrefix(lex, "../") {
		return bad("leads out of the inbox")
	}
	if lex == "." {
		return "/", nil
	}
	tv := "/" + lex
	if why := vpath.Problem(Unhide(tv)); why != "" {
		return bad(why)
	}
	return tv, nil
}

// SetLink makes vpath a symbolic link to target (a server's link, checked
// by LinkTarget): created next to its place under the partial's name and
// renamed into place, so that the old copy (a link or file fmq installed)
// is replaced in one step. What is in the way and not fmq's is kept (a
// *NotOwnedError), unless the inbox is an exact mirror; a directory in the
// way is ErrConflict. Nothing is ever written through the link. origin
// is the server directory it comes from (ORIGIN header, "" without), as
// for files (BeginFrom).
func (ib *Inbox) SetLink(vp, target, origin string) error {
	return ib.SetLinkMeta(vp, target, origin, nil)
}

// SetLinkMeta is SetLink that also gives the link the server's MTIME and
// owner headers (its own, not its target's; the owner as for files).
func (ib *Inbox) SetLinkMeta(vp, target, origin string, headers map[string]string) error {
	if _, err := LinkTarget(vp, target); err != nil {
		return err
	}
	rel, _ := resolve(vp)
	if ib.isClosed() {
		return ErrClosed
	}
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	if err := ib.mkParents(vp, rel); err != nil {
		return err
	}
	if fi, err := ib.root.Lstat(osPath(rel)); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %q", ErrConflict, vp)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if cur, err := ib.root.Readlink(osPath(rel)); err == nil && cur == target {
				if ib.mayReplaceInfo(vp, rel, "overwritten", origin, fi) == nil {
					if m := parseMeta(headers); m.hasMTime && !fi.ModTime().Equal(m.mtime) {
						ib.setLinkMeta(vp, rel, m)
					}
					return nil // already there
				}
			}
		}
		if err := ib.mayReplaceInfo(vp, rel, "overwritten", origin, fi); err != nil {
			return err
		}
	}
	tmp := osPath(partName(rel))
	if err := ib.root.Remove(tmp); err != nil && !notExist(err) {
		return fmt.Errorf("inbox: link %q: %w", vp, err)
	}
	if err := ib.root.Symlink(target, tmp); err != nil {
		return fmt.Errorf("inbox: link %q: %w", vp, err)
	}
	ib.setLinkMeta(vp, partName(rel), parseMeta(headers)) // a rename keeps a link's mtime
	if err := ib.root.Rename(tmp, osPath(rel)); err != nil {
		ib.root.Remove(tmp)
		return fmt.Errorf("inbox: link %q: %w", vp, err)
	}
	ib.remember(vp, CacheEntry{Kind: KindLink, Link: target, Installed: true, Origin: origin})
	return nil
}

// MakeDir makes sure the directory vpath exists (a server's directory:
// empty ones are mirrored too) and records it as announced, so that it
// stays when a delete empties it and goes only when the server removes it
// (Delete). A directory fmq creates gets the server's mode (MODE header;
// owner rwx always kept, so that fmq can go on writing in it).
func (ib *Inbox) MakeDir(vp string, headers map[string]string) error {
	rel, err := resolve(vp)
	if err != nil {
		return err
	}
	if ib.isClosed() {
		return ErrClosed
	}
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	if err := ib.mkParents(vp, path.Join(rel, "x")); err != nil {
		return err
	}
	fi, err := ib.root.Lstat(osPath(rel))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %q", ErrConflict, vp)
	}
	ib.mu.Lock()
	made := ib.made[rel]
	ib.mu.Unlock()
	m := parseMeta(headers)
	if made {
		uid, gid := ib.owner(m)
		if cu, cg := fileOwner(fi); (uid >= 0 && uid != cu) || (gid >= 0 && gid != cg) {
			ib.applyOwner(vp, m, func(uid, gid int) error { return ib.root.Lchown(osPath(rel), uid, gid) })
			fi, _ = ib.root.Lstat(osPath(rel)) // a chown may clear mode bits
		}
	}
	if made && m.hasMode && (fi == nil || fi.Mode().Perm() != m.mode|0o700) {
		if err := ib.root.Chmod(osPath(rel), m.mode|0o700); err != nil {
			ib.log.Warn("inbox: cannot set the mode", "path", vp, "err", err)
		}
	}
	mode, _ := header(headers, "MODE")
	e := CacheEntry{Kind: KindDir, Installed: made, Mode: mode}
	if m.hasMTime {
		e.MTime = m.mtime.UnixNano() // set once what it holds has landed (ApplyDirTimes)
	}
	ib.remember(vp, e)
	ib.mu.Lock()
	ib.touchDirLocked(rel)
	ib.mu.Unlock()
	return nil
}

// announced reports a directory the server announced (MakeDir) and has
// not removed: a delete that empties it leaves it.
func (ib *Inbox) announced(rel string) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	e, ok := ib.cache["/"+rel]
	return ok && e.Kind == KindDir
}

// removeDir is Delete for a directory: it goes only if fmq created it and
// it is empty (with its empty parents fmq created and the server did not
// announce); else it is kept (*NotOwnedError).
func (ib *Inbox) removeDir(vp, rel string) error {
	wasAnnounced := ib.announced(rel)
	ib.mu.Lock()
	made := ib.made[rel]
	ib.mu.Unlock()
	if !wasAnnounced && !made {
		return fmt.Errorf("%w: %q", ErrConflict, vp) // a server deleting a file that is a directory here
	}
	ib.forget(vp)
	if !made {
		return &NotOwnedError{VPath: vp, What: "deleted"}
	}
	ib.dirMu.Lock()
	defer ib.dirMu.Unlock()
	if err := ib.root.Remove(osPath(rel)); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return &NotOwnedError{VPath: vp, What: "deleted (it holds files fmq did not write)"}
		}
		return fmt.Errorf("inbox: delete %q: %w", vp, err)
	}
	ib.unmake(rel)
	ib.pruneParents(rel)
	return nil
}

// unmake forgets a directory fmq created, now removed. ib.dirMu is held.
func (ib *Inbox) unmake(d string) {
	ib.forgetDirs(d)
	ib.mu.Lock()
	delete(ib.made, d)
	ib.dirty = true
	ib.mu.Unlock()
}

// pruneParents removes the parents of rel that fmq created, that the
// server did not announce and that are left empty (never the inbox
// itself, never a directory of the user's). ib.dirMu is held.
func (ib *Inbox) pruneParents(rel string) {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		ib.mu.Lock()
		ours := ib.made[d]
		ib.mu.Unlock()
		if !ours || ib.announced(d) || !ib.isDir(d) || ib.root.Remove(osPath(d)) != nil {
			return // the user's, still published, not a directory, not empty, or gone: stop
		}
		ib.unmake(d)
	}
}

// ownedLink reports whether the symbolic link at rel is the one fmq
// installed as vpath (e, its cache entry): same target.
func (ib *Inbox) ownedLink(rel string, e CacheEntry, fi fs.FileInfo) bool {
	if e.Kind != KindLink || fi.Mode()&os.ModeSymlink == 0 {
		return false
	}
	cur, err := ib.root.Readlink(osPath(rel))
	return err == nil && cur == e.Link
}

// throughLinkParent refuses a path one of whose existing parent
// directories is a symbolic link: fmq never writes through a link, even
// one that stays inside the inbox (os.Root keeps the others out).
func (ib *Inbox) throughLinkParent(vp, dir string) error {
	for d := dir; d != "."; d = path.Dir(d) {
		if fi, err := ib.root.Lstat(osPath(d)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return &UnsafePathError{Path: vp, Reason: fmt.Sprintf("leads through the symbolic link %q (fmq never writes through a link)", "/"+d)}
		}
	}
	return nil
}

// cacheValueOf is CacheFor's value for a link or directory found on disk
// ("" for none).
func (ib *Inbox) cacheValueOf(f found) string {
	if f.link {
		t, err := ib.root.Readlink(osPath(f.rel))
		if err != nil {
			return ""
		}
		// With the link's own mtime, so that a link touched while the
		// client was away is sent again (its target alone would match).
		if fi, err := ib.root.Lstat(osPath(f.rel)); err == nil {
			return "LINK@" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ":" + t
		}
		return "LINK:" + t
	}
	ib.mu.Lock()
	e, ok := ib.cache[f.vpath]
	ib.mu.Unlock()
	if ok && e.Kind == KindDir {
		switch {
		case e.Mode != "" && e.MTime != 0:
			return "DIR:" + e.Mode + "@" + strconv.FormatInt(e.MTime, 10)
		case e.Mode != "":
			return "DIR:" + e.Mode
		}
		return "DIR"
	}
	return ""
}

func (ib *Inbox) isClosed() bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.closed
}
