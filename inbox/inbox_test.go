package inbox

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func sha(b []byte) string {
	s := sha1.Sum(b)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func open(t *testing.T, dir string) *Inbox {
	t.Helper()
	ib, err := OpenOptions(dir, Options{Logger: quiet, Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ib.Close() })
	return ib
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// receive runs a whole transfer in chunks of step bytes from offset.
func receive(t *testing.T, ib *Inbox, vpath string, content []byte, from int64, step int, headers map[string]string) error {
	t.Helper()
	p, err := ib.Begin(vpath, from)
	if err != nil {
		return err
	}
	for off := from; off < int64(len(content)); off += int64(step) {
		end := min(off+int64(step), int64(len(content)))
		if err := p.Write(off, content[off:end]); err != nil {
			return err
		}
	}
	return p.Finish(headers)
}

func hdr(content []byte) map[string]string {
	return map[string]string{"SHA1": sha(content), "SIZE": strconv.Itoa(len(content))}
}

func TestResolve(t *testing.T) {
	good := map[string]string{
		"/a":                                    "a",
		"/a/b.txt":                              "a/b.txt",
		"/dir/sub/x y z":                        "dir/sub/x y z",
		"/a..b":                                 "a..b",
		"/.hidden":                              ".hidden",
		"/a/.git/config":                        "a/.git/config",
		"/..x":                                  "..x",
		"/ünïcode/ß":                            "ünïcode/ß",
		"/" + strings.Repeat("n", MaxComponent): strings.Repeat("n", MaxComponent),
	}
	for in, want := range good {
		if got, err := (&Inbox{}).Resolve(in); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                  "empty",
		"/":                 "inbox itself",
		"a/b":               "start with",
		"../x":              "start with",
		"/../../etc/passwd": `".."`,
		"/a/../../b":        `".."`,
		"/a/..":             `".."`,
		"/a/./b":            `"."`,
		"//a":               "empty component",
		"/a//b":             "empty component",
		"/a/":               "empty component",
		"/a/.b.fmqpart":     "reserves",
		"/.fmq-cache":       "reserves",
		"/.fmq-cache.tmp":   "reserves",
		"/d/.fmq-inbox":     "reserves",
		"/a\x00b":           "NUL",
		`/a\..\b`:           "backslash",
		"/a\nb":             "control",
		"/a\x7fb":           "control",
		"/" + strings.Repeat("n", MaxComponent+1): "component longer",
		"/" + strings.Repeat("a/", MaxPath/2):     "longer than",
	}
	for in, why := range bad {
		_, err := resolve(in)
		var ue *UnsafePathError
		if !errors.Is(err, ErrUnsafePath) || !errors.As(err, &ue) || ue.Path != in || !strings.Contains(err.Error(), why) {
			t.Errorf("Resolve(%q) = %v; want unsafe (%s)", in, err, why)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/a/b", "/../x", "/a/./b", "//", "/.x", "/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rel, err := resolve(s)
		if err != nil {
			return
		}
		// Whatever is accepted stays inside and names nothing fmq keeps
		// for itself (hidden names are files like any other).
		if !filepath.IsLocal(rel) || strings.Contains(rel, "\\") {
			t.Fatalf("accepted %q -> %q", s, rel)
		}
		for _, c := range strings.Split(rel, "/") {
			if c == "." || c == ".." || Reserved(c) {
				t.Fatalf("accepted %q -> %q", s, rel)
			}
		}
	})
}

func TestTransfer(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	content := bytes.Repeat([]byte("0123456789"), 1000)
	if err := receive(t, ib, "/photos/2024/a.bin", content, 0, 777, hdr(content)); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(d, "photos", "2024", "a.bin")
	if got := readFile(t, target); got != string(content) {
		t.Fatal("content differs")
	}
	if exists(filepath.Join(d, "photos", "2024", ".a.bin.fmqpart")) {
		t.Fatal("partial left behind")
	}
	c, ok := ib.Cached("/photos/2024/a.bin")
	fi, _ := os.Stat(target)
	if !ok || c.SHA1 != sha(content) || c.Size != int64(len(content)) || c.MTime != fi.ModTime().UnixNano() {
		t.Fatalf("cache entry %+v %v", c, ok)
	}
	// No headers: accepted as is. Zero-length file.
	if err := receive(t, ib, "/empty", nil, 0, 1, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(d, "empty")); err != nil || fi.Size() != 0 {
		t.Fatal("empty file", err)
	}
	// A newer version replaces the old one; lowercase SHA1 and header names.
	v2 := []byte("version two")
	if err := receive(t, ib, "/photos/2024/a.bin", v2, 0, 4, map[string]string{"sha1": strings.ToLower(sha(v2)), "size": "11"}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, target); got != "version two" {
		t.Fatal(got)
	}
	// The transfer is over: further use is refused.
	p, _ := ib.Begin("/x", 0)
	p.Write(0, []byte("x"))
	p.Finish(nil)
	if err := p.Write(1, []byte("y")); !errors.Is(err, ErrFinished) {
		t.Fatalf("Write after Finish: %v", err)
	}
	if err := p.Finish(nil); !errors.Is(err, ErrFinished) {
		t.Fatalf("Finish twice: %v", err)
	}
}

func TestOutOfOrderAndBusy(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	p, err := ib.Begin("/f", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ib.Begin("/f", 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v", err)
	}
	p.Write(0, []byte("abc"))
	for _, off := range []int64{0, 2, 4, -1} {
		err := p.Write(off, []byte("zzz"))
		var oe *OrderError
		if !errors.As(err, &oe) || !errors.Is(err, ErrOutOfOrder) || oe.Want != 3 || oe.Got != off {
			t.Fatalf("Write(%d): %v", off, err)
		}
	}
	if err := p.Write(3, []byte("def")); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(hdr([]byte("abcdef"))); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(d, "f")) != "abcdef" {
		t.Fatal("content")
	}
	if _, err := ib.Begin("/f", 0); err != nil {
		t.Fatalf("Begin after Finish: %v", err)
	}
}

func TestResume(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	content := bytes.Repeat([]byte("resume me "), 500)
	p, err := ib.Begin("/dir/r.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(0, content[:1234])
	if err := p.Abort(true); err != nil {
		t.Fatal(err)
	}
	want := []PartialInfo{{VPath: "/dir/r.txt", Size: 1234}}
	got := ib.Partials()
	if len(got) != 1 || got[0].VPath != want[0].VPath || got[0].Size != 1234 || got[0].Active {
		t.Fatalf("Partials = %+v", got)
	}
	// Wrong offsets.
	for _, off := range []int64{1000, 1235, -5} {
		_, err := ib.Begin("/dir/r.txt", off)
		var re *ResumeError
		if !errors.Is(err, ErrResume) || !errors.As(err, &re) {
			t.Fatalf("Begin(%d): %v", off, err)
		}
		if off > 0 && re.Have != 1234 {
			t.Fatalf("Have = %d", re.Have)
		}
	}
	if _, err := ib.Begin("/none", 10); !errors.Is(err, ErrResume) {
		t.Fatalf("resume without partial: %v", err)
	}
	// Resume: the SHA1 covers the whole file (prefix hashed at Begin).
	if err := receive(t, ib, "/dir/r.txt", content, 1234, 1000, hdr(content)); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(d, "dir", "r.txt")) != string(content) {
		t.Fatal("content")
	}
	if len(ib.Partials()) != 0 {
		t.Fatal("partial left")
	}
	// Resume at the very end (server sends only the eof chunk).
	p, _ = ib.Begin("/e", 0)
	p.Write(0, []byte("whole"))
	p.Abort(true)
	p, err = ib.Begin("/e", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(hdr([]byte("whole"))); err != nil {
		t.Fatal(err)
	}
	// Offset 0 discards an old partial.
	p, _ = ib.Begin("/g", 0)
	p.Write(0, []byte("stale stale"))
	p.Abort(true)
	if err := receive(t, ib, "/g", []byte("new"), 0, 10, hdr([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(d, "g")) != "new" {
		t.Fatal("g")
	}
	// Abort(false) removes the partial.
	p, _ = ib.Begin("/h", 0)
	p.Write(0, []byte("h"))
	p.Abort(false)
	if exists(filepath.Join(d, ".h.fmqpart")) {
		t.Fatal("partial kept")
	}
}

func TestVerifyFailureKeepsOldCopy(t *testing.T) {
	for _, c := range []struct {
		name    string
		headers map[string]string
		field   string
	}{
		{"sha1", map[string]string{"SHA1": sha([]byte("something else"))}, "SHA1"},
		{"size", map[string]string{"SIZE": "3"}, "SIZE"},
		{"size garbage", map[string]string{"SIZE": "12x"}, "SIZE"},
		{"size negative", map[string]string{"SIZE": "-4"}, "SIZE"},
		{"sha1 garbage", map[string]string{"SHA1": "zz"}, "SHA1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			ib := open(t, d)
			old := []byte("good old copy")
			if err := receive(t, ib, "/v", old, 0, 5, hdr(old)); err != nil {
				t.Fatal(err)
			}
			err := receive(t, ib, "/v", []byte("new version"), 0, 5, c.headers)
			var ve *VerifyError
			if !errors.Is(err, ErrVerify) || !errors.As(err, &ve) || ve.Header != c.field || ve.VPath != "/v" {
				t.Fatalf("err = %v", err)
			}
			checkRejected(t, ib, d, "v", old)
		})
	}
}

// faultFile fails writes with ENOSPC once budget bytes have been written,
// after writing what fits (a short write, as a full disk does).
type faultFile struct {
	partFile
	mu      sync.Mutex
	budget  int64
	syncErr error
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if int64(len(b)) <= f.budget {
		n, err := f.partFile.WriteAt(b, off)
		f.budget -= int64(n)
		return n, err
	}
	n, _ := f.partFile.WriteAt(b[:f.budget], off)
	f.budget = 0
	return n, &os.PathError{Op: "write", Path: "partial", Err: syscall.ENOSPC}
}

func (f *faultFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.partFile.Sync()
}

func TestWriteErrorKeepsPreviousAndPartial(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	old := []byte("previous copy")
	if err := receive(t, ib, "/w", old, 0, 100, hdr(old)); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("abcdefgh"), 100) // 800 bytes
	ib.wrap = func(f partFile) partFile { return &faultFile{partFile: f, budget: 250} }
	err := receive(t, ib, "/w", content, 0, 100, hdr(content))
	var we *WriteError
	if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &we) {
		t.Fatalf("err = %v", err)
	}
	if we.Offset != 200 || we.Kept != 200 || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteError = %+v: %v", we, err)
	}
	if readFile(t, filepath.Join(d, "w")) != string(old) {
		t.Fatal("previous copy lost")
	}
	// The partial holds exactly the bytes before the failed chunk.
	if got := readFile(t, filepath.Join(d, ".w.fmqpart")); got != string(content[:200]) {
		t.Fatalf("partial holds %d bytes", len(got))
	}
	if ps := ib.Partials(); len(ps) != 1 || ps[0].Size != 200 || ps[0].Active {
		t.Fatalf("Partials = %+v", ps)
	}
	// The space comes back: resume from Kept.
	ib.wrap = nil
	if err := receive(t, ib, "/w", content, we.Kept, 100, hdr(content)); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(d, "w")) != string(content) {
		t.Fatal("resumed content")
	}

	// A failing fsync at Finish keeps the previous copy and the partial.
	ib.wrap = func(f partFile) partFile {
		return &faultFile{partFile: f, budget: 1 << 30, syncErr: &os.PathError{Op: "fsync", Path: "p", Err: syscall.EIO}}
	}
	err = receive(t, ib, "/w", []byte("third"), 0, 10, hdr([]byte("third")))
	if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync failure: %v", err)
	}
	if readFile(t, filepath.Join(d, "w")) != string(content) || readFile(t, filepath.Join(d, ".w.fmqpart")) != "third" {
		t.Fatal("sync failure: files")
	}
}

func TestSymlinksCannotEscape(t *testing.T) {
	d, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	ib := open(t, d)

	// A directory link pointing outside: writing through it fails.
	os.Symlink(outside, filepath.Join(d, "evil"))
	if err := receive(t, ib, "/evil/x", []byte("pwned"), 0, 10, nil); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("write through escaping directory link: %v, want ErrUnsafePath", err)
	}
	if err := receive(t, ib, "/evil/sub/x", []byte("pwned"), 0, 10, nil); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("mkdir through escaping directory link: %v, want ErrUnsafePath", err)
	}
	if exists(filepath.Join(outside, "x")) || exists(filepath.Join(outside, ".x.fmqpart")) || exists(filepath.Join(outside, "sub")) {
		t.Fatal("file written outside the inbox")
	}
	// Relative link climbing out.
	os.Symlink("../"+filepath.Base(outside), filepath.Join(d, "evil2"))
	if err := receive(t, ib, "/evil2/y", []byte("pwned"), 0, 10, nil); !errors.Is(err, ErrUnsafePath) || exists(filepath.Join(outside, "y")) {
		t.Fatalf("relative escaping link: %v", err)
	}
	if err := ib.Delete("/evil/victim"); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("delete through escaping link: %v, want ErrUnsafePath", err)
	}
	// A partial name planted as a link to a file outside: replaced, not followed.
	os.Symlink(victim, filepath.Join(d, ".t.fmqpart"))
	if err := receive(t, ib, "/t", []byte("fine"), 0, 10, nil); err != nil {
		t.Fatal(err)
	}
	// A resume through a planted partial link is refused.
	os.Symlink(victim, filepath.Join(d, ".t2.fmqpart"))
	if _, err := ib.Begin("/t2", 8); !errors.Is(err, ErrResume) {
		t.Fatalf("resume through link: %v", err)
	}
	// A target name planted as a link: not fmq's, so neither followed nor
	// replaced.
	os.Symlink(victim, filepath.Join(d, "u"))
	if err := receive(t, ib, "/u", []byte("mine"), 0, 10, nil); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("receive over a planted link: %v, want ErrNotOwned", err)
	}
	if fi, _ := os.Lstat(filepath.Join(d, "u")); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("planted link replaced")
	}
	// CacheFor and Delete do not follow links either.
	if cf := ib.CacheFor("/"); cf["/evil/victim"] != "" || cf["/evil2/victim"] != "" {
		t.Fatalf("CacheFor followed a link: %v", cf)
	}
	if got := readFile(t, victim); got != "precious" {
		t.Fatalf("victim changed: %q", got)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Fatalf("outside dir has %d entries", len(ents))
	}
}

func TestTraversalRejected(t *testing.T) {
	d := t.TempDir()
	ib := open(t, filepath.Join(d, "inbox"))
	for _, vp := range []string{"../x", "/../x", "/../../etc/passwd", "/a/../../b", "/a/../b", "a/b", "/a//b", "/.fmq-cache", "/a/.b.fmqpart"} {
		if _, err := ib.Begin(vp, 0); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Begin(%q): %v", vp, err)
		}
		if err := ib.Delete(vp); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("Delete(%q): %v", vp, err)
		}
	}
	ents, _ := os.ReadDir(d)
	if len(ents) != 1 {
		t.Fatalf("something was created next to the inbox: %v", ents)
	}
}

func TestDelete(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	receive(t, ib, "/a/b/c/file", []byte("x"), 0, 1, nil)
	receive(t, ib, "/a/other", []byte("y"), 0, 1, nil)
	p, _ := ib.Begin("/a/b/c/file", 0) // a partial next to it
	p.Write(0, []byte("partial"))
	p.Abort(true)
	if err := ib.Delete("/a/b/c/file"); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(d, "a", "b")) {
		t.Fatal("empty parents left")
	}
	if !exists(filepath.Join(d, "a", "other")) {
		t.Fatal("non-empty parent removed")
	}
	if _, ok := ib.Cached("/a/b/c/file"); ok {
		t.Fatal("cache entry left")
	}
	if err := ib.Delete("/a/b/c/file"); err != nil {
		t.Fatalf("deleting a missing file: %v", err)
	}
	// A directory fmq made that still holds a file: kept.
	if err := ib.Delete("/a"); !errors.Is(err, ErrNotOwned) || !exists(filepath.Join(d, "a", "other")) {
		t.Fatalf("deleting a directory: %v", err)
	}
	if err := ib.Delete("/a/other/below"); err != nil || !exists(filepath.Join(d, "a", "other")) {
		t.Fatalf("path through a file: %v", err)
	}
	// A stale file where the server now has a directory.
	if _, err := ib.Begin("/a/other/below", 0); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `"/a/other"`) {
		t.Fatalf("Begin below a file: %v", err)
	}
	ib.Delete("/a/other")
	if !exists(d) || exists(filepath.Join(d, "a")) {
		t.Fatal("inbox root must stay, /a must go")
	}
	// Deleting a file while it is being received cancels the transfer.
	p, _ = ib.Begin("/busy", 0)
	p.Write(0, []byte("abc"))
	if err := ib.Delete("/busy"); err != nil {
		t.Fatal(err)
	}
	if err := p.Write(3, []byte("d")); !errors.Is(err, ErrFinished) {
		t.Fatalf("Write after Delete: %v", err)
	}
	if exists(filepath.Join(d, ".busy.fmqpart")) || exists(filepath.Join(d, "busy")) {
		t.Fatal("busy files left")
	}
}

func TestCacheFor(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	files := map[string]string{
		"/a.txt":      "alpha",
		"/sub/b.txt":  "bravo bravo",
		"/sub/d.txt":  "delta",
		"/subway/x":   "not under /sub",
		"/sub/deep/e": "echo",
		"/sub/empty":  "",
	}
	for vp, c := range files {
		if err := receive(t, ib, vp, []byte(c), 0, 3, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A file the cache never saw (copied in by hand).
	os.WriteFile(filepath.Join(d, "sub", "manual"), []byte("by hand"), 0o644)
	// A resumable partial with no complete copy, and one next to a complete copy.
	p, _ := ib.Begin("/sub/c.bin", 0)
	p.Write(0, []byte("charlie-part"))
	p.Abort(true)
	p, _ = ib.Begin("/sub/d.txt", 0)
	p.Write(0, []byte("delta v2 partial"))
	p.Abort(true)
	// An empty partial is not advertised, nor the cache or the marker;
	// hidden files are files like any other.
	p, _ = ib.Begin("/sub/z", 0)
	p.Abort(true)
	os.WriteFile(filepath.Join(d, "sub", ".hidden"), []byte("h"), 0o644)
	ib.SaveCache()

	want := map[string]string{
		"/sub/b.txt":   sha([]byte("bravo bravo")),
		"/sub/deep/e":  sha([]byte("echo")),
		"/sub/empty":   sha(nil),
		"/sub/manual":  sha([]byte("by hand")),
		"/sub/.hidden": sha([]byte("h")),
		"/sub/c.bin":   sha([]byte("charlie-part")) + "@12",
		"/sub/d.txt":   sha([]byte("delta v2 partial")) + "@16",
	}
	for _, prefix := range []string{"/sub", "/sub/"} {
		if got := ib.CacheFor(prefix); !reflect.DeepEqual(got, want) {
			t.Fatalf("CacheFor(%q) =\n%v\nwant\n%v", prefix, got, want)
		}
	}
	all := ib.CacheFor("/")
	if len(all) != len(want)+2 || all["/a.txt"] != sha([]byte("alpha")) || all["/subway/x"] != sha([]byte("not under /sub")) {
		t.Fatalf("CacheFor(/) = %v", all)
	}
	if got := ib.CacheFor("/sub/b.txt"); !reflect.DeepEqual(got, map[string]string{"/sub/b.txt": sha([]byte("bravo bravo"))}) {
		t.Fatalf("single file: %v", got)
	}
	if got := ib.CacheFor("/sub/c.bin"); got["/sub/c.bin"] != want["/sub/c.bin"] {
		t.Fatalf("single partial: %v", got)
	}
	for _, bad := range []string{"", "sub", "/../x", "/nothing"} {
		if got := ib.CacheFor(bad); len(got) != 0 {
			t.Fatalf("CacheFor(%q) = %v", bad, got)
		}
	}
	// The hand-copied file is now cached.
	if e, ok := ib.Cached("/sub/manual"); !ok || e.SHA1 != sha([]byte("by hand")) {
		t.Fatal("unknown file not cached")
	}
	// A changed file (new size/mtime) is hashed again.
	os.WriteFile(filepath.Join(d, "sub", "b.txt"), []byte("bravo changed"), 0o644)
	if got := ib.CacheFor("/sub/b.txt")["/sub/b.txt"]; got != sha([]byte("bravo changed")) {
		t.Fatalf("changed file: %s", got)
	}
	// Files deleted from disk drop out of the cache.
	os.Remove(filepath.Join(d, "sub", "deep", "e"))
	if got := ib.CacheFor("/sub"); got["/sub/deep/e"] != "" {
		t.Fatal("deleted file advertised")
	}
	if _, ok := ib.Cached("/sub/deep/e"); ok {
		t.Fatal("deleted file still cached")
	}
	// An active transfer's partial is not advertised.
	p, _ = ib.Begin("/sub/c.bin", 12)
	if got := ib.CacheFor("/sub/c.bin"); len(got) != 0 {
		t.Fatalf("active partial advertised: %v", got)
	}
	p.Abort(true)
}

func TestCacheRoundTrip(t *testing.T) {
	d := t.TempDir()
	ib, err := OpenOptions(d, Options{Logger: quiet, Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("persist me")
	receive(t, ib, "/p/q", content, 0, 4, hdr(content))
	receive(t, ib, "/r", []byte("r"), 0, 4, nil)
	before, _ := ib.Cached("/p/q")
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ib.Close(); err != nil {
		t.Fatal("second Close", err)
	}
	if _, err := ib.Begin("/x", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Begin after Close: %v", err)
	}
	raw := readFile(t, filepath.Join(d, CacheFile))
	if !strings.Contains(raw, `"/p/q"`) || !strings.Contains(raw, sha(content)) {
		t.Fatalf("cache file: %s", raw)
	}
	if exists(filepath.Join(d, CacheFile+".tmp")) {
		t.Fatal("temporary cache file left")
	}

	ib2 := open(t, d)
	after, ok := ib2.Cached("/p/q")
	if !ok || after != before {
		t.Fatalf("after reopen %+v, before %+v", after, before)
	}
	// Proof that CacheFor trusts the cache while size and mtime are unchanged:
	// rewrite the bytes in place, restore the mtime, and the cached digest
	// (now stale on purpose) is returned without reading the file.
	target := filepath.Join(d, "p", "q")
	fi, _ := os.Stat(target)
	os.WriteFile(target, []byte("PERSIST ME"), 0o644)
	os.Chtimes(target, fi.ModTime(), fi.ModTime())
	if got := ib2.CacheFor("/p")["/p/q"]; got != sha(content) {
		t.Fatalf("cache not used: %s", got)
	}
	later := fi.ModTime().Add(time.Second)
	os.Chtimes(target, later, later)
	if got := ib2.CacheFor("/p")["/p/q"]; got != sha([]byte("PERSIST ME")) {
		t.Fatalf("mtime change not noticed: %s", got)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestDamagedCache(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, CacheFile), []byte("{\n  \"version\": 1,\n  \"files\": {oops}\n}\n"), 0o644)
	var lb logBuf
	ib, err := OpenOptions(d, Options{Logger: slog.New(slog.NewTextHandler(&lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	if !strings.Contains(lb.b.String(), CacheFile+":3:13") {
		t.Fatalf("log lacks file:line:col: %s", lb.b.String())
	}
	if len(ib.cache) != 0 {
		t.Fatal("cache not empty")
	}
	ib.Close()
	// Invalid entries are dropped, valid ones kept.
	os.WriteFile(filepath.Join(d, CacheFile), []byte(fmt.Sprintf(
		`{"version":1,"files":{"/ok":{"size":1,"mtime_ns":5,"sha1":"%s"},"/../bad":{"size":1,"sha1":"%s"},"/short":{"sha1":"AB"}}}`,
		strings.ToLower(sha([]byte("x"))), sha(nil))), 0o644)
	ib3 := open(t, d)
	if len(ib3.cache) != 1 || ib3.cache["/ok"].SHA1 != sha([]byte("x")) {
		t.Fatalf("cache = %v", ib3.cache)
	}
}

func TestConcurrentTransfers(t *testing.T) {
	d := t.TempDir()
	ib, err := OpenOptions(d, Options{Logger: quiet, SaveEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bytes.Repeat([]byte{byte(i)}, 1000+i)
			p, err := ib.Begin(fmt.Sprintf("/d%d/f", i%4), 0)
			if errors.Is(err, ErrBusy) {
				return
			}
			if err != nil {
				errs <- err
				return
			}
			for off := 0; off < len(c); off += 100 {
				if err := p.Write(int64(off), c[off:min(off+100, len(c))]); err != nil {
					errs <- err
					return
				}
			}
			if err := p.Finish(hdr(c)); err != nil {
				errs <- err
			}
			ib.CacheFor("/")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Directories are remembered once made; one removed behind the inbox's back
// (by a user, between two files) is made again.
func TestKnownDirRemovedBehindOurBack(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	a, b := []byte("first"), []byte("second")
	if err := receive(t, ib, "/x/y/a", a, 0, 100, hdr(a)); err != nil {
		t.Fatal(err)
	}
	if !ib.knownDir("x/y") || !ib.knownDir("x") {
		t.Fatal("parent directories not remembered")
	}
	if err := os.RemoveAll(filepath.Join(d, "x")); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, ib, "/x/y/b", b, 0, 100, hdr(b)); err != nil {
		t.Fatalf("after the directory was removed: %v", err)
	}
	if got := readFile(t, filepath.Join(d, "x", "y", "b")); got != "second" {
		t.Fatalf("got %q", got)
	}
	// Delete forgets the directories it removes.
	if err := ib.Delete("/x/y/b"); err != nil {
		t.Fatal(err)
	}
	if ib.knownDir("x/y") || ib.knownDir("x") {
		t.Fatal("removed directories still remembered")
	}
}

// WriteOwned hashes large chunks on a goroutine of its own: the digest is
// the same, mixing with Write keeps the order, and every way a transfer
// ends stops the hasher (goleak checks the package).
func TestWriteOwnedHashesInOrder(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	content := make([]byte, 5*asyncHashMin+1234)
	for i := range content {
		content[i] = byte(i * 7)
	}
	chunks := []int{asyncHashMin, 100, 2 * asyncHashMin, asyncHashMin, len(content) - 4*asyncHashMin - 100}
	p, err := ib.Begin("/big", 0)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for i, n := range chunks {
		b := append([]byte(nil), content[off:off+n]...)
		if i == 1 {
			err = p.Write(int64(off), b) // a caller-owned buffer in the middle
		} else {
			err = p.WriteOwned(int64(off), b, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := p.Finish(hdr(content)); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if got := readFile(t, filepath.Join(d, "big")); got != string(content) {
		t.Fatal("content differs")
	}
	// A wrong digest is still caught, and an abort mid-way stops the hasher.
	p, err = ib.Begin("/big2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteOwned(0, append([]byte(nil), content[:2*asyncHashMin]...), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(map[string]string{"SHA1": sha([]byte("other"))}); !errors.Is(err, ErrVerify) {
		t.Fatalf("want ErrVerify, got %v", err)
	}
	p, err = ib.Begin("/big3", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteOwned(0, append([]byte(nil), content[:2*asyncHashMin]...), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(true); err != nil {
		t.Fatal(err)
	}
}
