package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// linkIs reports whether p is a symbolic link to target.
func linkIs(p, target string) bool {
	got, err := os.Readlink(p)
	return err == nil && got == target
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

func gone(p string) bool {
	_, err := os.Lstat(p)
	return os.IsNotExist(err)
}

func mustLink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// Issue 11: "symlinks are skipped silently (in-tree symlinked directories
// are followed and duplicated)". Links that stay inside the subscription
// arrive as links (an in-tree directory link is not duplicated, an
// absolute one inside the published directory is made relative); links
// that escape or lead nowhere are reported on both sides, and --once ends
// partial.
func TestSymlinksMirroredAsLinks(t *testing.T) {
	pub, in, outside := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, pub, "real/f.txt", "inside")
	write(t, outside, "secret.txt", "secret")
	mustLink(t, "real/f.txt", filepath.Join(pub, "in-file"))
	mustLink(t, "real", filepath.Join(pub, "in-dir"))
	mustLink(t, filepath.Join(pub, "real", "f.txt"), filepath.Join(pub, "real", "abs-in"))
	mustLink(t, filepath.Join(outside, "secret.txt"), filepath.Join(pub, "escape"))
	mustLink(t, "nowhere", filepath.Join(pub, "dangling"))
	srv := startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitPartial || sum.Status != "partial" || sum.Files != 1 || sum.Links != 3 || sum.ServerErrors != 2 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	for rel, target := range map[string]string{"in-file": "real/f.txt", "in-dir": "real", "real/abs-in": "f.txt"} {
		if !linkIs(filepath.Join(in, rel), target) {
			t.Errorf("%s: want a link to %s", rel, target)
		}
	}
	if got := readOr(filepath.Join(in, "in-dir", "f.txt")); got != "inside" { // through the link, one copy
		t.Errorf("in-dir/f.txt: %s", got)
	}
	if !isDir(filepath.Join(in, "real")) || !gone(filepath.Join(in, "escape")) || !gone(filepath.Join(in, "dangling")) {
		t.Errorf("inbox: real a directory, escape and dangling absent")
	}
	text := strings.Join(sum.Messages, "\n")
	for _, want := range []string{`"/escape": it is a symbolic link leading outside the published directory`, `"/dangling": it is a symbolic link to nothing`} {
		if !strings.Contains(text, want) {
			t.Errorf("messages lack %q:\n%s", want, text)
		}
	}
	if n := strings.Count(srv.stderr.String(), "file not published"); n != 2 {
		t.Errorf("server logged %d unpublished links, want 2:\n%s", n, srv.stderr.String())
	}
	// Again: the links are in place, nothing is sent but the two reports.
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitPartial || sum.Files != 0 || sum.Links != 0 || sum.ServerErrors != 2 {
		t.Fatalf("second sync: exit %d, summary %+v\n%s", code, sum, errs)
	}
	// A link inside the published directory but out of the subscription
	// is reported too, and not made.
	write(t, pub, "sub/x", "x")
	mustLink(t, "../real/f.txt", filepath.Join(pub, "sub", "up"))
	mustLink(t, "x", filepath.Join(pub, "sub", "side"))
	srv.stop()
	srv = startServed(t, "--publish", pub)
	in2 := t.TempDir()
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in2, "--subscribe", "/sub")
	if code != exitPartial || sum.Files != 1 || sum.Links != 1 || sum.ServerErrors != 1 ||
		!strings.Contains(strings.Join(sum.Messages, "\n"), "outside the subscription /sub") {
		t.Fatalf("subscription /sub: exit %d, summary %+v\n%s", code, sum, errs)
	}
	if !linkIs(filepath.Join(in2, "sub", "side"), "x") || !gone(filepath.Join(in2, "sub", "up")) {
		t.Errorf("/sub: side must be a link, up absent")
	}
}

// Issue 11: "empty directories" are not kept. They are created, and a
// directory the server removed goes at the next sync, only if fmq created
// it and it holds nothing of the user's.
func TestEmptyDirectoriesMirrored(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	for _, d := range []string{"empty", "a/b/c", "gone", "mine"} {
		if err := os.MkdirAll(filepath.Join(pub, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(pub, "a", "b"), 0o750)
	write(t, pub, "f.txt", "f")
	srv := startServed(t, "--publish", pub)
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 1 || sum.Dirs != 6 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	for _, d := range []string{"empty", "a/b/c", "gone", "mine"} {
		if !isDir(filepath.Join(in, d)) {
			t.Errorf("%s: not created", d)
		}
	}
	if fi, err := os.Stat(filepath.Join(in, "a", "b")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("a/b: mode %v, %v; want 0750", fi.Mode().Perm(), err)
	}
	// The user puts a file of their own in one; the server removes them,
	// and changes the mode of another.
	write(t, in, "mine/notes.txt", "mine")
	srv.stop()
	os.Chmod(filepath.Join(pub, "empty"), 0o751)
	for _, d := range []string{"gone", "mine", "a/b/c", "a/b"} {
		if err := os.Remove(filepath.Join(pub, d)); err != nil {
			t.Fatal(err)
		}
	}
	srv = startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK || sum.Deleted != 3 || sum.Kept != 2 { // kept: mine/ and mine/notes.txt
		t.Fatalf("after removals: exit %d, summary %+v\n%s", code, sum, errs)
	}
	if !gone(filepath.Join(in, "gone")) || !gone(filepath.Join(in, "a", "b")) || !isDir(filepath.Join(in, "a")) || !isDir(filepath.Join(in, "empty")) {
		t.Errorf("gone and a/b must go, a and empty stay")
	}
	if fi, err := os.Stat(filepath.Join(in, "empty")); err != nil || fi.Mode().Perm() != 0o751 {
		t.Errorf("empty: mode %v, %v; want 0751 (changed while away)", fi.Mode().Perm(), err)
	}
	if readOr(filepath.Join(in, "mine", "notes.txt")) != "mine" {
		t.Errorf("the user's file in a removed directory was lost")
	}
}

// Live: an empty directory made or removed on the server, a link made,
// retargeted and removed, reach a running client.
func TestLinksAndDirectoriesLive(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "f.txt", "f")
	write(t, pub, "g.txt", "g")
	srv := startServed(t, "--publish", pub, "--settle", "50ms")
	logs := startLiveSync(t, "--connect", srv.ep, "--inbox", in)
	eventually(t, "f.txt arrives", logs, func() bool { return readOr(filepath.Join(in, "f.txt")) == "f" })

	os.MkdirAll(filepath.Join(pub, "new", "empty"), 0o755)
	eventually(t, "new/empty created", logs, func() bool { return isDir(filepath.Join(in, "new", "empty")) })

	mustLink(t, "f.txt", filepath.Join(pub, "l"))
	eventually(t, "link l -> f.txt", logs, func() bool { return linkIs(filepath.Join(in, "l"), "f.txt") })
	// Retargeted in one step (a new link renamed over it, as ln -sfn does).
	mustLink(t, "g.txt", filepath.Join(pub, "l.tmp"))
	if err := os.Rename(filepath.Join(pub, "l.tmp"), filepath.Join(pub, "l")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "link l -> g.txt", logs, func() bool { return linkIs(filepath.Join(in, "l"), "g.txt") })
	os.Remove(filepath.Join(pub, "l"))
	eventually(t, "link l removed", logs, func() bool { return gone(filepath.Join(in, "l")) })
	if readOr(filepath.Join(in, "g.txt")) != "g" {
		t.Fatal("the link's target went with it")
	}

	os.RemoveAll(filepath.Join(pub, "new"))
	eventually(t, "new removed", logs, func() bool { return gone(filepath.Join(in, "new")) })

	// A directory replaced by a link, then the link by a directory.
	write(t, pub, "kind/a.txt", "a")
	eventually(t, "kind/a.txt arrives", logs, func() bool { return readOr(filepath.Join(in, "kind", "a.txt")) == "a" })
	os.RemoveAll(filepath.Join(pub, "kind"))
	mustLink(t, "f.txt", filepath.Join(pub, "kind"))
	eventually(t, "kind a link", logs, func() bool { return linkIs(filepath.Join(in, "kind"), "f.txt") })
	os.Remove(filepath.Join(pub, "kind"))
	os.MkdirAll(filepath.Join(pub, "kind", "sub"), 0o755)
	eventually(t, "kind a directory again", logs, func() bool { return isDir(filepath.Join(in, "kind", "sub")) })

}

// A link made to lead out, or to nothing, while a client runs is reported
// to it at once (and logged by the server); the live sync ends partial.
func TestBadLinksReportedLive(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "f.txt", "f")
	srv := startServed(t, "--publish", pub, "--settle", "50ms")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, &Env{Stdout: &lockedBuffer{}, Stderr: logs},
			[]string{"sync", "--connect", srv.ep, "--inbox", in, "--progress", "never"})
	}()
	eventually(t, "f.txt arrives", logs, func() bool { return readOr(filepath.Join(in, "f.txt")) == "f" })
	mustLink(t, filepath.Join(t.TempDir(), "x"), filepath.Join(pub, "out"))
	mustLink(t, "nowhere", filepath.Join(pub, "dangling"))
	eventually(t, "live reports", logs, func() bool {
		l := logs.String()
		return strings.Contains(l, `could not send \"/out\": it is a symbolic link leading outside`) &&
			strings.Contains(l, `could not send \"/dangling\": it is a symbolic link to nothing`)
	})
	if !gone(filepath.Join(in, "out")) || !gone(filepath.Join(in, "dangling")) {
		t.Error("a reported link was made")
	}
	if n := strings.Count(srv.stderr.String(), "file not published"); n != 2 {
		t.Errorf("server logged %d unpublished links, want 2:\n%s", n, srv.stderr.String())
	}
	cancel()
	if code := <-done; code != exitPartial {
		t.Errorf("live sync with reports: exit %d, want %d\n%s", code, exitPartial, logs.String())
	}
}

// Paths that changed kind while the client was away (a directory now a
// link, a link now a directory, a file now a directory) are replaced at
// the next sync.
func TestKindChangesAcrossSyncs(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "d/x.txt", "x")
	write(t, pub, "f", "f")
	mustLink(t, "d", filepath.Join(pub, "l"))
	srv := startServed(t, "--publish", pub)
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 2 || sum.Links != 1 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	srv.stop()
	os.RemoveAll(filepath.Join(pub, "d"))
	mustLink(t, "f", filepath.Join(pub, "d"))
	os.Remove(filepath.Join(pub, "l"))
	write(t, pub, "l/y.txt", "y")
	os.Remove(filepath.Join(pub, "f"))
	os.MkdirAll(filepath.Join(pub, "f"), 0o755)
	srv = startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	if !linkIs(filepath.Join(in, "d"), "f") || readOr(filepath.Join(in, "l", "y.txt")) != "y" || !isDir(filepath.Join(in, "f")) {
		out, _ := exec.Command("ls", "-lR", in).CombinedOutput()
		t.Errorf("d must be a link to f, l a directory with y.txt, f a directory: %+v\n%s\n%s", sum, out, errs)
	}
}
