//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lutimes sets the modification time of the link p itself.
func lutimes(t *testing.T, p string, when time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), unix.NsecToTimespec(when.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func lmtime(p string) time.Time {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Issue 11, rsync -a keeps directory times and a link's own time: after a
// sync every announced directory (nested ones too, empty ones too) has the
// server's mtime, set after what it holds landed; a link has its own
// mtime, not its target's. A change while away (a file removed: its
// directory's mtime changes) and a live one (a file made) follow.
func TestDirectoryAndLinkTimesKept(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a/f.txt", "f")
	write(t, pub, "a/b/g.txt", "g")
	write(t, pub, "a/b/c/h.txt", "h")
	if err := os.MkdirAll(filepath.Join(pub, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustLink(t, "f.txt", filepath.Join(pub, "a", "l"))
	mustLink(t, "a/b", filepath.Join(pub, "top"))
	base := time.Date(2019, 5, 6, 7, 8, 9, 123_456_789, time.UTC)
	dirs := []string{"a/b/c", "a/b", "a", "empty"} // made above: set deepest first
	for i, d := range dirs {
		when := base.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(filepath.Join(pub, d), when, when); err != nil {
			t.Fatal(err)
		}
	}
	lutimes(t, filepath.Join(pub, "a", "l"), base.Add(-time.Hour))
	lutimes(t, filepath.Join(pub, "top"), base.Add(-2*time.Hour))
	same := func(stage string, rels ...string) {
		t.Helper()
		for _, rel := range rels {
			want, got := lmtime(filepath.Join(pub, rel)), lmtime(filepath.Join(in, rel))
			if want.IsZero() || !got.Equal(want) {
				t.Errorf("%s: %s: mtime %v, want the server's %v", stage, rel, got, want)
			}
		}
	}
	all := append([]string{"a/l", "top"}, dirs...)
	srv := startServed(t, "--publish", pub, "--settle", "50ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 3 || sum.Links != 2 || sum.Dirs != 4 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	same("first sync", all...)
	if !lmtime(filepath.Join(in, "a", "f.txt")).Equal(lmtime(filepath.Join(pub, "a", "f.txt"))) {
		t.Errorf("a/f.txt: the link's time was set on its target")
	}
	// Again, nothing changed: nothing sent (the cache names each directory
	// with its mode and mtime), still the server's times.
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 0 || sum.Dirs != 0 || sum.Links != 0 {
		t.Fatalf("second sync: exit %d, summary %+v\n%s", code, sum, errs)
	}
	same("second sync", all...)
	// Changed while away: a file removed (its directory's mtime changes),
	// another directory only touched.
	srv.stop()
	if err := os.Remove(filepath.Join(pub, "a", "b", "g.txt")); err != nil {
		t.Fatal(err)
	}
	later := base.Add(24 * time.Hour)
	os.Chtimes(filepath.Join(pub, "a", "b"), later, later)
	os.Chtimes(filepath.Join(pub, "empty"), later, later)
	lutimes(t, filepath.Join(pub, "top"), later) // a link's own time, alone
	srv = startServed(t, "--publish", pub, "--settle", "50ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Deleted != 1 || sum.Dirs != 2 || sum.Links != 1 { // a/b and empty; top
		t.Fatalf("after changes: exit %d, summary %+v\n%s", code, sum, errs)
	}
	same("after changes", all...)
	// Live: a file made in a nested directory; its directory's time
	// follows once the file has landed.
	logs := startLiveSync(t, "--connect", srv.ep, "--inbox", in)
	write(t, pub, "a/b/c/new.txt", "new")
	want := lmtime(filepath.Join(pub, "a", "b", "c"))
	eventually(t, "new.txt arrives, a/b/c takes the server's new mtime", logs, func() bool {
		return readOr(filepath.Join(in, "a", "b", "c", "new.txt")) == "new" && lmtime(filepath.Join(in, "a", "b", "c")).Equal(want)
	})
	same("live", all...)
	// Live: a link's own time changed alone.
	touched := base.Add(-48 * time.Hour)
	lutimes(t, filepath.Join(pub, "a", "l"), touched)
	eventually(t, "a/l takes its new mtime", logs, func() bool { return lmtime(filepath.Join(in, "a", "l")).Equal(touched) })
	same("live link", all...)
}
