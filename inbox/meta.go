package inbox

import (
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Metadata headers (spec/filemq.md 7.2): MODE, permission bits in octal;
// MTIME, modification time in Unix nanoseconds. Either may be missing (a C
// server sends neither): what is missing is left as it is.
type meta struct {
	mode     fs.FileMode
	hasMode  bool
	mtime    time.Time
	hasMTime bool
}

func parseMeta(h map[string]string) meta {
	var m meta
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
	return m
}

// apply sets the metadata on rel (a file of ours: a partial before its
// rename, or an installed file). Failures are logged: the content is what
// matters, and it is in place.
func (ib *Inbox) applyMeta(vpath, rel string, m meta) {
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

// SetMeta applies a server's metadata (MODE, MTIME headers) to a file fmq
// installed and that is unchanged since, when it differs; other files are
// left alone. It reports whether anything changed.
func (ib *Inbox) SetMeta(vpath string, headers map[string]string) (bool, error) {
	rel, err := resolve(vpath)
	if err != nil {
		return false, err
	}
	m := parseMeta(headers)
	fi, err := ib.root.Lstat(osPath(rel))
	if err != nil || !fi.Mode().IsRegular() || ib.mayReplaceInfo(vpath, rel, "changed", headers["ORIGIN"], fi) != nil {
		return false, nil
	}
	if m.hasMode && fi.Mode().Perm() == m.mode {
		m.hasMode = false
	}
	if m.hasMTime && fi.ModTime().Equal(m.mtime) {
		m.hasMTime = false
	}
	if !m.hasMode && !m.hasMTime {
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
