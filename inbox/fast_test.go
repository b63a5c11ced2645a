package inbox

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// paths runs a test on the fast path (cached directory descriptors, Linux)
// and on the os.Root path every platform has.
func paths(t *testing.T, run func(t *testing.T, open func(t *testing.T, dir string) *Inbox)) {
	for _, fast := range []bool{true, false} {
		name := "osroot"
		if fast {
			if runtime.GOOS != "linux" {
				continue
			}
			name = "fast"
		}
		t.Run(name, func(t *testing.T) {
			run(t, func(t *testing.T, dir string) *Inbox {
				ib := open(t, dir)
				if !fast {
					ib.fast = nil
				} else if ib.fast == nil {
					t.Fatal("no fast path on Linux")
				}
				return ib
			})
		})
	}
}

// written begins vpath and writes c, leaving the transfer to Finish.
func written(t *testing.T, ib *Inbox, vpath string, c []byte) *Partial {
	t.Helper()
	p, err := ib.Begin(vpath, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(0, c); err != nil {
		t.Fatal(err)
	}
	return p
}

// outsideUntouched fails unless dir (outside the inbox) holds exactly the
// names in want.
func outsideUntouched(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		t.Fatalf("outside the inbox: %v, want %v", got, want)
	}
}

// A parent directory the inbox wrote into (and holds a descriptor of) is
// replaced by a symbolic link leading out of the inbox between two files:
// the next file is refused as unsafe, nothing is written outside.
func TestSymlinkPlantedInParentBetweenFiles(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d, outside := t.TempDir(), t.TempDir()
		ib := open(t, d)
		c := []byte("content")
		for _, vp := range []string{"/a/b/x", "/top"} {
			if err := receive(t, ib, vp, c, 0, 100, hdr(c)); err != nil {
				t.Fatal(err)
			}
		}
		// The deepest directory, then its parent.
		for _, dir := range []string{"a/b", "a"} {
			if err := os.RemoveAll(filepath.Join(d, dir)); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(d, dir)), 0o755)
			if err := os.Symlink(outside, filepath.Join(d, dir)); err != nil {
				t.Fatal(err)
			}
			err := receive(t, ib, "/a/b/y", c, 0, 100, hdr(c))
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("%s replaced by a link out: %v, want ErrUnsafePath", dir, err)
			}
			if err := ib.Delete("/a/b/x"); err == nil {
				t.Fatalf("%s replaced by a link out: delete through it succeeded", dir)
			}
			outsideUntouched(t, outside)
			os.Remove(filepath.Join(d, dir))
		}
		// A link that stays inside the inbox is not written through either
		// (fmq mirrors links: /c/d may be one it made).
		os.Remove(filepath.Join(d, "a"))
		os.MkdirAll(filepath.Join(d, "real"), 0o755)
		os.MkdirAll(filepath.Join(d, "c"), 0o755)
		if err := os.Symlink("../real", filepath.Join(d, "c", "d")); err != nil {
			t.Fatal(err)
		}
		if err := receive(t, ib, "/c/d/z", c, 0, 100, hdr(c)); !errors.Is(err, ErrUnsafePath) {
			t.Fatalf("through a link inside the inbox: %v, want ErrUnsafePath", err)
		}
		if _, err := os.Lstat(filepath.Join(d, "real", "z")); err == nil {
			t.Fatal("written through a link inside the inbox")
		}
		// The inbox's own files are still received.
		if err := receive(t, ib, "/top2", c, 0, 100, hdr(c)); err != nil {
			t.Fatal(err)
		}
	})
}

// The parent directory is replaced by a link out while a file is being
// received (after Begin, before Finish): the file is not installed outside.
func TestSymlinkPlantedInParentDuringTransfer(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d, outside := t.TempDir(), t.TempDir()
		ib := open(t, d)
		c := []byte("content")
		p := written(t, ib, "/a/b/x", c)
		if err := os.RemoveAll(filepath.Join(d, "a")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(d, "a")); err != nil {
			t.Fatal(err)
		}
		if err := p.Finish(hdr(c)); err == nil {
			t.Fatal("Finish through a link out of the inbox succeeded")
		}
		outsideUntouched(t, outside)
		// The next file there is refused, the inbox goes on.
		if err := receive(t, ib, "/a/b/y", c, 0, 100, hdr(c)); !errors.Is(err, ErrUnsafePath) {
			t.Fatalf("after the link: %v, want ErrUnsafePath", err)
		}
		outsideUntouched(t, outside)
		if err := receive(t, ib, "/c/y", c, 0, 100, hdr(c)); err != nil {
			t.Fatal(err)
		}
	})
}

// Escapes, traversal and absolute paths, on both paths.
func TestEscapesBothPaths(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d, outside := t.TempDir(), t.TempDir()
		ib := open(t, d)
		os.Symlink(outside, filepath.Join(d, "evil"))
		os.Symlink("../"+filepath.Base(outside), filepath.Join(d, "evil2"))
		os.Symlink("/", filepath.Join(d, "abs"))
		c := []byte("pwned")
		for _, vp := range []string{"/evil/x", "/evil/sub/x", "/evil2/y", "/abs" + outside + "/z"} {
			if err := receive(t, ib, vp, c, 0, 100, nil); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("%s: %v, want ErrUnsafePath", vp, err)
			}
		}
		for _, vp := range []string{"../x", "/../x", "/a/../../b", "/a/./b", outside + "/../x", "//x", "/a//b", "/a/b/"} {
			if _, err := ib.Begin(vp, 0); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Begin(%q): %v, want ErrUnsafePath", vp, err)
			}
		}
		outsideUntouched(t, outside)
	})
}

// A user's file in the way is never overwritten, also when it appears
// between Begin and Finish (the rename does not replace a name it has not
// checked).
func TestUserFileAppearingDuringTransfer(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d := t.TempDir()
		ib := open(t, d)
		c := []byte("server")
		p := written(t, ib, "/f", c)
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Finish(hdr(c)); !errors.Is(err, ErrNotOwned) {
			t.Fatalf("Finish over a user's new file: %v, want ErrNotOwned", err)
		}
		if got := readFile(t, filepath.Join(d, "f")); got != "mine" {
			t.Fatalf("user's file: %q", got)
		}
		if exists(filepath.Join(d, ".f.fmqpart")) {
			t.Fatal("partial left behind")
		}
		// fmq's own file is updated in place.
		if err := receive(t, ib, "/g", c, 0, 100, hdr(c)); err != nil {
			t.Fatal(err)
		}
		c2 := []byte("server, v2")
		if err := receive(t, ib, "/g", c2, 0, 3, hdr(c2)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(d, "g")); got != string(c2) {
			t.Fatalf("update: %q", got)
		}
	})
}

// The server's MODE and MTIME reach the installed file, and the cache
// records what is on disk.
func TestMetadataBothPaths(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d := t.TempDir()
		ib := open(t, d)
		c := []byte("content")
		for _, mode := range []string{"600", "644", "755", "444"} {
			h := hdr(c)
			h["MODE"], h["MTIME"] = mode, "1704067200123456789"
			vp := "/m/" + mode
			if err := receive(t, ib, vp, c, 0, 100, h); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Join(d, "m", mode))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm().String(); got != parseMeta(h).mode.String() {
				t.Errorf("%s: mode %s", mode, got)
			}
			if fi.ModTime().UnixNano() != 1704067200123456789 {
				t.Errorf("%s: mtime %v", mode, fi.ModTime())
			}
			ib.mu.Lock()
			e := ib.cache[vp]
			ib.mu.Unlock()
			if !e.Installed || e.Size != int64(len(c)) || e.MTime != fi.ModTime().UnixNano() {
				t.Errorf("%s: cache entry %+v", mode, e)
			}
		}
	})
}

// BeginWhole leaves the check of the target to Finish: the same files are
// refused with the same errors, and nothing of the attempt is left.
func TestBeginWholeChecksAtFinish(t *testing.T) {
	paths(t, func(t *testing.T, open func(*testing.T, string) *Inbox) {
		d := t.TempDir()
		ib := open(t, d)
		whole := func(vp string, c []byte) error {
			p, err := ib.BeginWhole(vp, false, "")
			if err != nil {
				return err
			}
			if err := p.Write(0, c); err != nil {
				return err
			}
			return p.Finish(hdr(c))
		}
		c := []byte("server")
		os.WriteFile(filepath.Join(d, "mine"), []byte("user"), 0o644)
		if err := whole("/mine", c); !errors.Is(err, ErrNotOwned) {
			t.Fatalf("over a user's file: %v, want ErrNotOwned", err)
		}
		if got := readFile(t, filepath.Join(d, "mine")); got != "user" {
			t.Fatalf("user's file: %q", got)
		}
		os.MkdirAll(filepath.Join(d, "dir", "x"), 0o755)
		if err := whole("/dir", c); !errors.Is(err, ErrConflict) {
			t.Fatalf("over a directory: %v, want ErrConflict", err)
		}
		for _, p := range []string{".mine.fmqpart", ".dir.fmqpart"} {
			if exists(filepath.Join(d, p)) {
				t.Fatalf("%s left behind", p)
			}
		}
		if err := whole("/ours", c); err != nil {
			t.Fatal(err)
		}
		c2 := []byte("server v2")
		if err := whole("/ours", c2); err != nil {
			t.Fatalf("update of fmq's own file: %v", err)
		}
		if got := readFile(t, filepath.Join(d, "ours")); got != string(c2) {
			t.Fatalf("update: %q", got)
		}
	})
}
