package inbox

import (
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fmq/fmq/internal/ids"
)

// Metadata headers (spec/filemq.md 7.2): MODE, permission bits in octal;
// MTIME, modification time in Unix nanoseconds; UID, GID, USER, GROUP, the
// owner and group, by id and by name. Any may be missing (a C server sends
// none): what is missing is left as it is.
type meta struct {
	mode        fs.FileMode
	hasMode     bool
	mtime       time.Time
	hasMTime    bool
	uid, gid    int // -1: not given
	user, group string
}

func parseMeta(h map[string]string) meta {
	m := meta{uid: -1, gid: -1}
	if v, ok := header(h, "MODE"); ok {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
			m.mode, m.hasMode = fs.FileMode(n).Perm(), true
		}
	}
	if v, ok := header(h, "MTIME"); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			m.mtime, m.hasMTime = time.Unix(0, n), true
		}
	}
	num := func(name string) int {
		if v, ok := header(h, name); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31); err == nil {
				return int(n)
			}
		}
		return -1
	}
	m.uid, m.gid = num("UID"), num("GID")
	m.user, _ = header(h, "USER")
	m.group, _ = header(h, "GROUP")
	return m
}

// identity is who the client runs as: its effective user id and the
// groups it belongs to (a test hook replaces it).
type identity struct {
	euid   int
	groups []int
}

func currentIdentity() identity {
	id := identity{euid: os.Geteuid()}
	id.groups, _ = os.Getgroups()
	if g := os.Getegid(); g >= 0 {
		id.groups = append(id.groups, g)
	}
	return id
}

// owner returns the owner and group to give a file (-1: leave as it is),
// as rsync -a does: the server's names mapped to this machine's ids when
// they exist here (else its ids; only ids with Options.NumericIDs); the
// owner only when running as root, the group when root or a member of it.
// Anything else is left silently, as rsync does for a user who is not root.
func (ib *Inbox) owner(m meta) (uid, gid int) {
	uid, gid = m.uid, m.gid
	if !ib.numericIDs && m.user != "" {
		if n, ok := ids.UserID(m.user); ok {
			uid = n
		}
	}
	if !ib.numericIDs && m.group != "" {
		if n, ok := ids.GroupID(m.group); ok {
			gid = n
		}
	}
	if ib.who.euid != 0 {
		uid = -1
		if !slices.Contains(ib.who.groups, gid) {
			gid = -1
		}
	}
	return uid, gid
}

// applyMeta sets the metadata on rel (a file of ours: a partial before its
// rename, or an installed file): owner and group first (a chown may clear
// mode bits), then mode, then mtime. Failures are logged, a chown's only
// at debug unless root (who is expected to manage it): the content is
// what matters, and it is in place.
func (ib *Inbox) applyMeta(vpath, rel string, m meta) {
	ib.applyOwner(vpath, m, func(uid, gid int) error { return ib.root.Lchown(osPath(rel), uid, gid) })
	if m.hasMode {
		if err := ib.root.Chmod(osPath(rel), m.mode); err != nil {
			ib.log.Warn("inbox: cannot set the mode", "path", vpath, "mode", m.mode, "err", err)
		}
	}
	if m.hasMTime {
		if err := ib.root.Chtimes(osPath(rel), m.mtime, m.mtime); err != nil {
			ib.log.Warn("inbox: cannot set the modification time", "path", vpath, "err", err)
		}
	}
}

// applyOwner gives a file the owner and group of m (ib.owner decides)
// through chown.
func (ib *Inbox) applyOwner(vpath string, m meta, chown func(uid, gid int) error) {
	uid, gid := ib.owner(m)
	if uid < 0 && gid < 0 {
		return
	}
	if err := chown(uid, gid); err != nil {
		lvl := ib.log.Debug
		if ib.who.euid == 0 {
			lvl = ib.log.Warn
		}
		lvl("inbox: cannot set the owner", "path", vpath, "uid", uid, "gid", gid, "err", err)
	}
}

// SetMeta applies a server's metadata (MODE, MTIME, owner headers) to a
// file fmq installed from the same origin (the ORIGIN header) and that is
// unchanged since, when it differs; other files are left alone. It
// reports whether anything changed.
func (ib *Inbox) SetMeta(vpath string, headers map[string]string) (bool, error) {
	rel, err := resolve(vpath)
	if err != nil {
		return false, err
	}
	m := parseMeta(headers)
	origin, _ := header(headers, "ORIGIN")
	fi, err := ib.root.Lstat(osPath(rel))
	if err != nil || !fi.Mode().IsRegular() || ib.mayReplaceInfo(vpath, rel, "changed", origin, fi) != nil {
		return false, nil
	}
	if m.hasMode && fi.Mode().Perm() == m.mode {
		m.hasMode = false
	}
	if m.hasMTime && fi.ModTime().Equal(m.mtime) {
		m.hasMTime = false
	}
	uid, gid := ib.owner(m)
	cu, cg := fileOwner(fi)
	chown := (uid >= 0 && uid != cu) || (gid >= 0 && gid != cg)
	if !chown {
		m.uid, m.gid, m.user, m.group = -1, -1, "", ""
	} else if !m.hasMode {
		m.hasMode, m.mode = true, fi.Mode().Perm() // a chown may clear mode bits: set them again
	}
	if !m.hasMode && !m.hasMTime && !chown {
		return false, nil
	}
	ib.applyMeta(vpath, rel, m)
	if nfi, err := ib.root.Lstat(osPath(rel)); err == nil {
		ib.mu.Lock()
		e := ib.cache[vpath]
		ib.mu.Unlock()
		e.Size, e.MTime = nfi.Size(), nfi.ModTime().UnixNano()
		ib.remember(vpath, e)
	}
	return true, nil
}
