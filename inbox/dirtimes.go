package inbox

import (
	"path"
	"sort"
	"strings"
	"time"
)

// dirTimesSettle is how long the inbox waits, after the last change in an
// announced directory, before it sets the directory's modification time
// again (a live change; a resync ends with ApplyDirTimes).
const dirTimesSettle = 250 * time.Millisecond

// touchDirLocked notes that the directory rel changed (a file, link or
// directory made or removed in it): its modification time, if the server
// announced one, is set again once changes settle, as rsync sets a
// directory's times after what it holds. ib.mu is held.
func (ib *Inbox) touchDirLocked(rel string) {
	if rel == "." || rel == "" || ib.closed {
		return
	}
	if ib.dirTimes == nil {
		ib.dirTimes = map[string]struct{}{}
	}
	ib.dirTimes[rel] = struct{}{}
	if ib.dirTimer == nil {
		ib.dirTimer = time.AfterFunc(dirTimesSettle, func() { ib.ApplyDirTimes() })
	} else {
		ib.dirTimer.Reset(dirTimesSettle)
	}
}

// touchParentLocked is touchDirLocked for the directory holding vpath.
func (ib *Inbox) touchParentLocked(vpath string) {
	ib.touchDirLocked(strings.TrimPrefix(path.Dir(vpath), "/"))
}

// ApplyDirTimes sets the modification time the server announced (operation
// 7's MTIME) on every announced directory changed since the last call,
// deepest first, so that setting one does not disturb its parent's. A
// directory the server did not announce is never touched. The client calls
// it when the server's resync is complete; live changes call it once they
// settle; Close calls it last.
func (ib *Inbox) ApplyDirTimes() {
	ib.dirTimesMu.Lock()
	defer ib.dirTimesMu.Unlock()
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return
	}
	todo := make([]string, 0, len(ib.dirTimes))
	for rel := range ib.dirTimes {
		todo = append(todo, rel)
	}
	clear(ib.dirTimes)
	want := make(map[string]int64, len(todo))
	for _, rel := range todo {
		if e, ok := ib.cache["/"+rel]; ok && e.Kind == KindDir && e.MTime != 0 {
			want[rel] = e.MTime
		}
	}
	ib.mu.Unlock()
	depth := func(s string) int { return strings.Count(s, "/") }
	sort.Slice(todo, func(i, j int) bool {
		if di, dj := depth(todo[i]), depth(todo[j]); di != dj {
			return di > dj
		}
		return todo[i] < todo[j]
	})
	ib.dirMu.RLock()
	defer ib.dirMu.RUnlock()
	for _, rel := range todo {
		ns, ok := want[rel]
		if !ok {
			continue
		}
		fi, err := ib.root.Lstat(osPath(rel))
		if err != nil || !fi.IsDir() || fi.ModTime().UnixNano() == ns {
			continue
		}
		if err := ib.root.Chtimes(osPath(rel), time.Time{}, time.Unix(0, ns)); err != nil {
			ib.log.Warn("inbox: cannot set a directory's modification time", "path", "/"+rel, "err", err)
		}
	}
}

// stopDirTimes stops the settle timer (Close).
func (ib *Inbox) stopDirTimes() {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.dirTimer != nil {
		ib.dirTimer.Stop()
	}
}

// setLinkMeta gives the link at rel (fmq's, just made) its own owner and
// modification time (m), never its target's.
func (ib *Inbox) setLinkMeta(vpath, rel string, m meta) {
	ib.applyOwner(vpath, m, func(uid, gid int) error { return ib.root.Lchown(osPath(rel), uid, gid) })
	if !m.hasMTime {
		return
	}
	if err := lutimes(ib.root, osPath(path.Dir(rel)), path.Base(rel), m.mtime); err != nil {
		ib.log.Debug("inbox: cannot set a link's modification time", "path", vpath, "err", err)
	}
}
