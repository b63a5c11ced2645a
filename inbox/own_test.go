package inbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11: a file of the user's own in the inbox (inbox/thesis.txt) was
// deleted by the first sync. Only files fmq installed, unchanged since, go.
func TestDeleteOnlyWhatFMQInstalled(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "thesis.txt"), []byte("years of work"), 0o644)
	ib := open(t, d)
	if err := ib.Delete("/thesis.txt"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("delete of the user's file: %v, want ErrNotOwned", err)
	}
	if got := readFile(t, filepath.Join(d, "thesis.txt")); got != "years of work" {
		t.Fatalf("user file changed: %q", got)
	}
	// An update over it is refused before anything is received.
	if _, err := ib.Begin("/thesis.txt", 0); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("update over the user's file: %v, want ErrNotOwned", err)
	}
	// A file fmq installed goes.
	if err := receive(t, ib, "/a/mine", []byte("fmq's"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	ib.CacheFor("/") // hashing the inbox keeps the mark
	if err := ib.Delete("/a/mine"); err != nil || exists(filepath.Join(d, "a")) {
		t.Fatalf("delete of an installed file: %v", err)
	}
	// An installed file the user edited since is the user's: kept.
	if err := receive(t, ib, "/edited", []byte("v1"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "edited")
	os.WriteFile(p, []byte("my notes"), 0o644)
	os.Chtimes(p, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	ib.CacheFor("/")
	if err := ib.Delete("/edited"); !errors.Is(err, ErrNotOwned) || readFile(t, p) != "my notes" {
		t.Fatalf("delete of an edited file: %v", err)
	}
	// Only touched (same content, new mtime): still fmq's.
	if err := receive(t, ib, "/touched", []byte("t"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Minute)
	os.Chtimes(filepath.Join(d, "touched"), later, later)
	if err := ib.Delete("/touched"); err != nil || exists(filepath.Join(d, "touched")) {
		t.Fatalf("delete of a touched file: %v", err)
	}
	// The mark survives a restart.
	if err := receive(t, ib, "/kept-mark", []byte("k"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	ib.Close()
	ib2 := open(t, d)
	if err := ib2.Delete("/kept-mark"); err != nil || exists(filepath.Join(d, "kept-mark")) {
		t.Fatalf("delete after reopen: %v", err)
	}
	if err := ib2.Delete("/thesis.txt"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("delete of the user's file after reopen: %v", err)
	}
}

// --delete (Options.Exact) asks for an exact mirror: the user's files go too.
func TestExactMirrorDeletesAnything(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "stray.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(d, "over.txt"), []byte("x"), 0o644)
	ib, err := OpenOptions(d, Options{Logger: quiet, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if err := ib.Delete("/stray.txt"); err != nil || exists(filepath.Join(d, "stray.txt")) {
		t.Fatalf("exact delete: %v", err)
	}
	if err := receive(t, ib, "/over.txt", []byte("server"), 0, 3, nil); err != nil || readFile(t, filepath.Join(d, "over.txt")) != "server" {
		t.Fatalf("exact overwrite: %v", err)
	}
}

// Issue 11: two clients on one inbox raced on the same partial file. The
// second is refused with a clear message naming the first.
func TestInboxLock(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	_, err := OpenOptions(d, Options{Logger: quiet})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) ||
		!strings.Contains(err.Error(), d) {
		t.Fatalf("second open: %v", err)
	}
	id := ib.ID()
	if len(id) != 32 {
		t.Fatalf("id %q", id)
	}
	ib.Close()
	ib2 := open(t, d)
	if ib2.ID() != id {
		t.Fatalf("id changed across runs: %q -> %q", id, ib2.ID())
	}
	if cf := ib2.CacheFor("/"); len(cf) != 0 {
		t.Fatalf("the marker is advertised: %v", cf)
	}
}

// Issue 11: a delete that empties a directory removes it only if fmq
// created it; a directory of the user's stays, across restarts too.
func TestDeleteRemovesOnlyDirectoriesFMQMade(t *testing.T) {
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "mine", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	ib := open(t, d)
	for _, vp := range []string{"/mine/deep/a", "/new/sub/b", "/later/x/c"} {
		if err := receive(t, ib, vp, []byte("fmq's "+vp), 0, 3, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, vp := range []string{"/mine/deep/a", "/new/sub/b"} {
		if err := ib.Delete(vp); err != nil {
			t.Fatalf("delete %s: %v", vp, err)
		}
	}
	if !exists(filepath.Join(d, "mine", "deep")) {
		t.Error("the user's empty directories mine/deep were removed")
	}
	if exists(filepath.Join(d, "new")) {
		t.Error("new/sub, made by fmq and now empty, is still there")
	}
	// What fmq made is remembered by the saved cache.
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	ib = open(t, d)
	if err := ib.Delete("/later/x/c"); err != nil || exists(filepath.Join(d, "later")) {
		t.Fatalf("after a restart: delete %v, later/ still there: %v", err, exists(filepath.Join(d, "later")))
	}
	if !exists(filepath.Join(d, "mine", "deep")) {
		t.Error("the user's directories went after a restart")
	}
}

// Issue 11: "the client deletes only files it installed from this server".
// A file installed from one origin (a server's published directory) is
// neither deleted nor replaced on behalf of another; a delete or update
// from its own origin applies, and the origin survives a restart and a
// rehash of the inbox.
func TestOwnershipIsPerOrigin(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	install := func(vpath, data, origin string) error {
		t.Helper()
		p, err := ib.BeginFrom(vpath, 0, false, origin)
		if err != nil {
			return err
		}
		if err := p.Write(0, []byte(data)); err != nil {
			return err
		}
		return p.Finish(nil)
	}
	if err := install("/a.txt", "from A", "aaaa"); err != nil {
		t.Fatal(err)
	}
	if e, _ := ib.Cached("/a.txt"); e.Origin != "aaaa" || !e.Installed {
		t.Fatalf("cache entry %+v", e)
	}
	var ne *NotOwnedError
	if err := ib.DeleteFrom("/a.txt", "bbbb"); !errors.As(err, &ne) || ne.Origin != "aaaa" || !strings.Contains(err.Error(), "from another server") {
		t.Fatalf("delete from another origin: %v", err)
	}
	if err := ib.Delete("/a.txt"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("delete from a server without origin: %v", err)
	}
	if _, err := ib.BeginFrom("/a.txt", 0, false, "bbbb"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("update from another origin: %v", err)
	}
	if changed, _ := ib.SetMeta("/a.txt", map[string]string{"MODE": "0600", "ORIGIN": "bbbb"}); changed {
		t.Fatal("metadata from another origin applied")
	}
	if got := readFile(t, filepath.Join(d, "a.txt")); got != "from A" {
		t.Fatalf("a.txt: %q", got)
	}
	ib.CacheFor("/") // a rehash keeps the origin
	ib.Close()
	ib = open(t, d)
	if err := ib.DeleteFrom("/a.txt", "bbbb"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("after reopen, delete from another origin: %v", err)
	}
	if err := install("/a.txt", "A, v2", "aaaa"); err != nil || readFile(t, filepath.Join(d, "a.txt")) != "A, v2" {
		t.Fatalf("update from its origin: %v", err)
	}
	if err := ib.DeleteFrom("/a.txt", "aaaa"); err != nil || exists(filepath.Join(d, "a.txt")) {
		t.Fatalf("delete from its origin: %v", err)
	}
	// A file installed without an origin (an older inbox, a C server) is
	// any server's: the next one that replaces it owns it.
	if err := install("/old.txt", "old", ""); err != nil {
		t.Fatal(err)
	}
	if err := install("/old.txt", "adopted", "cccc"); err != nil {
		t.Fatalf("update of an origin-less file: %v", err)
	}
	if err := ib.DeleteFrom("/old.txt", "dddd"); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("adopted file deleted by another origin: %v", err)
	}
}
