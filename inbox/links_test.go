package inbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestLinkTarget(t *testing.T) {
	for _, c := range []struct{ vp, target, want string }{
		{"/a/l", "b", "/a/b"},
		{"/a/l", "../c/d", "/c/d"},
		{"/a/l", "..", "/"},
		{"/l", ".hidden", "/.hidden"},
		{"/a/l", "../../out", ""},
		{"/l", "/etc/passwd", ""},
		{"/l", "", ""},
		{"/l", `x\y`, ""},
		{"/l", "x\x00", ""},
		{"/l", "tab\there", ""},
		{"/../l", "x", ""},
	} {
		got, err := LinkTarget(c.vp, c.target)
		if c.want == "" {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("LinkTarget(%q, %q) = %q, %v; want ErrUnsafePath", c.vp, c.target, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("LinkTarget(%q, %q) = %q, %v; want %q", c.vp, c.target, got, err, c.want)
		}
	}
}

func TestSetLinkOwnership(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	c := []byte("content")
	if err := receive(t, ib, "/real/f", c, 0, 100, hdr(c)); err != nil {
		t.Fatal(err)
	}
	linkIs := func(rel, want string) bool {
		got, err := os.Readlink(filepath.Join(d, rel))
		return err == nil && got == want
	}
	// Made, made again (nothing to do), retargeted in place.
	for _, target := range []string{"real/f", "real/f", "real"} {
		if err := ib.SetLink("/l", target, ""); err != nil || !linkIs("l", target) {
			t.Fatalf("SetLink(/l, %s): %v", target, err)
		}
	}
	// Nothing is written through a link, even one fmq made inside the inbox.
	if err := receive(t, ib, "/l/x", c, 0, 100, hdr(c)); !errors.Is(err, ErrUnsafePath) || exists(filepath.Join(d, "real", "x")) {
		t.Fatalf("a file through /l: %v", err)
	}
	// In the cache hash, as links.
	// (with the link's own mtime: a link touched while away is sent again)
	fi, err := os.Lstat(filepath.Join(d, "l"))
	if err != nil {
		t.Fatal(err)
	}
	if v, want := ib.CacheFor("/")["/l"], fmt.Sprintf("LINK@%d:real", fi.ModTime().UnixNano()); v != want {
		t.Fatalf("CacheFor /l = %q, want %q", v, want)
	}
	// Deleted: the link, not what it leads to.
	if err := ib.Delete("/l"); err != nil || exists(filepath.Join(d, "l")) || !exists(filepath.Join(d, "real", "f")) {
		t.Fatalf("Delete(/l): %v", err)
	}
	// A link of the user's, or one the user retargeted, is kept.
	os.Symlink("real", filepath.Join(d, "mine"))
	if err := ib.SetLink("/mine", "real/f", ""); !errors.Is(err, ErrNotOwned) || !linkIs("mine", "real") {
		t.Fatalf("SetLink over the user's link: %v", err)
	}
	if err := ib.Delete("/mine"); !errors.Is(err, ErrNotOwned) || !linkIs("mine", "real") {
		t.Fatalf("Delete of the user's link: %v", err)
	}
	if err := ib.SetLink("/m2", "real", ""); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(d, "m2"))
	os.Symlink("real/f", filepath.Join(d, "m2"))
	if err := ib.Delete("/m2"); !errors.Is(err, ErrNotOwned) || !linkIs("m2", "real/f") {
		t.Fatalf("Delete of a retargeted link: %v", err)
	}
	// A directory in the way; a target out of the inbox.
	if err := ib.SetLink("/real", "x", ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("SetLink over a directory: %v", err)
	}
	if err := ib.SetLink("/out", "../x", ""); !errors.Is(err, ErrUnsafePath) || exists(filepath.Join(d, "out")) {
		t.Fatalf("SetLink out of the inbox: %v", err)
	}
	// A file fmq installed becomes a link, and a link a file again.
	if err := ib.SetLink("/real/f", "g", ""); err != nil || !linkIs("real/f", "g") {
		t.Fatalf("file to link: %v", err)
	}
	if err := receive(t, ib, "/real/f", c, 0, 100, hdr(c)); err != nil {
		t.Fatalf("link to file: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(d, "real", "f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("link to file: %v %v", fi, err)
	}
}

func TestAnnouncedDirectories(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	c := []byte("content")
	if err := ib.MakeDir("/a/b", map[string]string{"MODE": "0550"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(d, "a", "b")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("a/b: %v %v (want 0750: the owner's rwx kept)", fi, err)
	}
	if err := receive(t, ib, "/a/b/f", c, 0, 100, hdr(c)); err != nil {
		t.Fatal(err)
	}
	// The file goes, the announced directory stays; its parent, made for
	// it and never announced, would have gone with it.
	if err := ib.Delete("/a/b/f"); err != nil || !ib.isDir("a/b") {
		t.Fatalf("Delete(/a/b/f): %v", err)
	}
	if v := ib.CacheFor("/")["/a/b"]; v != "DIR:0550" {
		t.Fatalf("CacheFor /a/b = %q", v)
	}
	if err := ib.Delete("/a/b"); err != nil || exists(filepath.Join(d, "a")) {
		t.Fatalf("Delete(/a/b): %v; a/b and a must go", err)
	}
	// A directory of the user's, announced: kept when the server removes it.
	os.Mkdir(filepath.Join(d, "mine"), 0o755)
	if err := ib.MakeDir("/mine", nil); err != nil {
		t.Fatal(err)
	}
	if err := ib.Delete("/mine"); !errors.Is(err, ErrNotOwned) || !ib.isDir("mine") {
		t.Fatalf("Delete of the user's directory: %v", err)
	}
	// One fmq made, holding a file of the user's: kept.
	if err := ib.MakeDir("/made", nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "made", "users.txt"), c, 0o644)
	if err := ib.Delete("/made"); !errors.Is(err, ErrNotOwned) || !exists(filepath.Join(d, "made", "users.txt")) {
		t.Fatalf("Delete of a directory holding the user's file: %v", err)
	}
	// A directory through a link is refused.
	os.Symlink("mine", filepath.Join(d, "ln"))
	if err := ib.MakeDir("/ln/x", nil); !errors.Is(err, ErrUnsafePath) || exists(filepath.Join(d, "mine", "x")) {
		t.Fatalf("MakeDir through a link: %v", err)
	}
}

// A directory's announced MTIME is set after what it holds landed
// (ApplyDirTimes), deepest first; a directory the server did not announce
// keeps its own time; a link gets its own MTIME, not its target.
func TestDirectoryAndLinkTimes(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	tDir, tSub, tLink := time.Unix(1_500_000_000, 111), time.Unix(1_500_000_100, 222), time.Unix(1_400_000_000, 333)
	ns := func(tm time.Time) string { return strconv.FormatInt(tm.UnixNano(), 10) }
	if err := ib.MakeDir("/a", map[string]string{"MODE": "0755", "MTIME": ns(tDir)}); err != nil {
		t.Fatal(err)
	}
	if err := ib.MakeDir("/a/s", map[string]string{"MODE": "0755", "MTIME": ns(tSub)}); err != nil {
		t.Fatal(err)
	}
	c := []byte("content")
	if err := receive(t, ib, "/a/s/f", c, 0, 100, hdr(c)); err != nil {
		t.Fatal(err)
	}
	if err := ib.SetLinkMeta("/a/l", "s/f", "", map[string]string{"MTIME": ns(tLink)}); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, ib, "/mine/g", c, 0, 100, hdr(c)); err != nil { // a parent never announced
		t.Fatal(err)
	}
	mine := lmtimeOf(filepath.Join(d, "mine"))
	ib.ApplyDirTimes()
	wants := map[string]time.Time{"a": tDir, "a/s": tSub, "a/l": tLink, "mine": mine}
	if runtime.GOOS != "linux" {
		delete(wants, "a/l") // a link's own time is set on Linux only
	}
	for rel, want := range wants {
		if got := lmtimeOf(filepath.Join(d, filepath.FromSlash(rel))); !got.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", rel, got, want)
		}
	}
	if got := lmtimeOf(filepath.Join(d, "a", "s", "f")); got.Equal(tLink) {
		t.Errorf("the link's time was set on its target")
	}
	if v := ib.CacheFor("/")["/a/s"]; v != "DIR:0755@"+ns(tSub) {
		t.Errorf("CacheFor /a/s = %q", v)
	}
	// A change inside: the time is set again once changes settle.
	if err := ib.Delete("/a/s/f"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !lmtimeOf(filepath.Join(d, "a", "s")).Equal(tSub); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a/s: mtime %v after a delete settled, want %v", lmtimeOf(filepath.Join(d, "a", "s")), tSub)
		}
	}
}

func lmtimeOf(p string) time.Time {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
