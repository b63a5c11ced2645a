package publish

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
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

// write creates dir/rel with content, making parents.
func write(t testing.TB, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func vpaths(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.VPath)
	}
	return out
}

func newTree(t *testing.T, mounts []Mount, opt Options) *Tree {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	tr, err := New(mounts, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestNewMountErrors(t *testing.T) {
	d := t.TempDir()
	f := write(t, d, "file", "x")
	cases := []struct {
		name   string
		mounts []Mount
		reason string
	}{
		{"none", nil, "no mounts"},
		{"empty alias", []Mount{{d, ""}}, "alias is empty"},
		{"relative alias", []Mount{{d, "photos"}}, "start with"},
		{"trailing slash", []Mount{{d, "/photos/"}}, "not clean"},
		{"dotdot", []Mount{{d, "/a/../b"}}, "not clean"},
		{"double slash", []Mount{{d, "/a//b"}}, "not clean"},
		{"hidden", []Mount{{d, "/.secret"}}, "hidden"},
		{"backslash", []Mount{{d, `/a\b`}}, "backslash"},
		{"control", []Mount{{d, "/a\nb"}}, "control"},
		{"duplicate", []Mount{{d, "/a"}, {d, "/a"}}, "duplicates"},
		{"root overlaps", []Mount{{d, "/"}, {d, "/a"}}, "overlaps"},
		{"nested", []Mount{{d, "/a/b"}, {d, "/a"}}, "overlaps"},
		{"missing dir", []Mount{{filepath.Join(d, "nope"), "/a"}}, "cannot open"},
		{"file as dir", []Mount{{f, "/a"}}, "not a directory"},
		{"empty dir", []Mount{{"", "/a"}}, "empty directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.mounts, Options{Logger: quiet})
			if !errors.Is(err, ErrBadMount) {
				t.Fatalf("err = %v, want ErrBadMount", err)
			}
			var me *MountError
			if !errors.As(err, &me) || !strings.Contains(me.Error(), c.reason) {
				t.Fatalf("err = %v, want reason containing %q", err, c.reason)
			}
		})
	}
	// Siblings with a common string prefix do not overlap.
	tr := newTree(t, []Mount{{d, "/photos"}, {d, "/photos2"}}, Options{})
	if got := len(tr.Mounts()); got != 2 {
		t.Fatalf("mounts = %d", got)
	}
}

func TestSnapshotMatchHidden(t *testing.T) {
	p, p2, r := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, p, "a.jpg", "a")
	write(t, p, "2024/b.jpg", "bb")
	write(t, p, ".hidden.jpg", "h")
	write(t, p, ".cache/x.jpg", "h")
	write(t, p, "sub/.git/config", "h")
	write(t, p2, "x", "x")
	write(t, r, "p-x", "dash") // sorts between "/p" and "/p/..."
	// Hidden files are published like any other; --exclude ".*" leaves
	// them out (and does not descend into hidden directories).
	all := newTree(t, []Mount{{p, "/p"}, {p2, "/p2"}, {r, "/q"}}, Options{})
	wantAll := []string{"/p/.cache/x.jpg", "/p/.hidden.jpg", "/p/2024/b.jpg", "/p/a.jpg", "/p/sub/.git/config", "/p2/x", "/q/p-x"}
	if got := vpaths(all.Snapshot()); !reflect.DeepEqual(got, wantAll) {
		t.Fatalf("Snapshot = %v, want %v", got, wantAll)
	}
	tr := newTree(t, []Mount{{p, "/p"}, {p2, "/p2"}, {r, "/q"}}, Options{Exclude: []string{".*"}})

	want := []string{"/p/2024/b.jpg", "/p/a.jpg", "/p2/x", "/q/p-x"}
	if got := vpaths(tr.Snapshot()); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot = %v, want %v", got, want)
	}
	e, ok := tr.Lookup("/p/2024/b.jpg")
	if !ok || e.Size != 2 || e.ModTime.IsZero() {
		t.Fatalf("Lookup = %+v %v", e, ok)
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"/", want},
		{"/p", []string{"/p/2024/b.jpg", "/p/a.jpg"}},
		{"/p/", []string{"/p/2024/b.jpg", "/p/a.jpg"}},
		{"/p/2024", []string{"/p/2024/b.jpg"}},
		{"/p/2024/b.jpg", []string{"/p/2024/b.jpg"}},
		{"/p/2024/b", []string{}},
		{"/p2", []string{"/p2/x"}},
		{"/q", []string{"/q/p-x"}},
		{"/q/p", []string{}},
		{"/nothing", []string{}},
		{"p", []string{}},
		{"", []string{}},
	} {
		if got := vpaths(tr.Match(c.prefix)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Match(%q) = %v, want %v", c.prefix, got, c.want)
		}
	}
	if !Matches("/photos", "/photos") || !Matches("/photos", "/photos/a") || Matches("/photos", "/photos2/x") ||
		!Matches("/", "/x") || Matches("photos", "/photos") {
		t.Fatal("Matches")
	}

	// Root alias: "/a/b.txt".
	tr2 := newTree(t, []Mount{{p2, "/"}}, Options{})
	if got := vpaths(tr2.Snapshot()); !reflect.DeepEqual(got, []string{"/x"}) {
		t.Fatalf("root alias: %v", got)
	}
}

func TestSymlinks(t *testing.T) {
	d, outside := t.TempDir(), t.TempDir()
	write(t, d, "real/f.txt", "inside")
	secret := write(t, outside, "secret.txt", "secret")
	write(t, outside, "odir/o.txt", "o")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("real/f.txt", filepath.Join(d, "in-file")))
	must(os.Symlink("real", filepath.Join(d, "in-dir")))
	must(os.Symlink(secret, filepath.Join(d, "abs-out")))
	must(os.Symlink("../"+filepath.Base(outside)+"/secret.txt", filepath.Join(d, "rel-out")))
	must(os.Symlink(filepath.Join(outside, "odir"), filepath.Join(d, "out-dir")))
	must(os.Symlink("..", filepath.Join(d, "real", "loop"))) // back to an ancestor
	must(os.Symlink("nowhere", filepath.Join(d, "dangling")))
	must(os.Symlink(filepath.Join(d, "real", "f.txt"), filepath.Join(d, "real", "abs-in"))) // absolute, inside
	must(os.Symlink("in-dir/f.txt", filepath.Join(d, "via-link")))                          // a chain of links, each carried
	// "up/../f2" reads as /f2 but the system resolves it as /sub/deep/../f2 = /sub/f2.
	write(t, d, "f2", "top")
	write(t, d, "sub/f2", "sub")
	write(t, d, "sub/deep/x", "x")
	must(os.Symlink("sub/deep", filepath.Join(d, "up")))
	must(os.Symlink("up/../f2", filepath.Join(d, "detour")))
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	// Links are never followed: the directory behind in-dir is published
	// once, under its own name.
	if got, want := vpaths(tr.Snapshot()), []string{"/f2", "/real/f.txt", "/sub/deep/x", "/sub/f2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot = %v, want %v", got, want)
	}
	wantLinks := []Link{
		{VPath: "/in-dir", Target: "real", TargetVPath: "/real"},
		{VPath: "/in-file", Target: "real/f.txt", TargetVPath: "/real/f.txt"},
		{VPath: "/real/abs-in", Target: "f.txt", TargetVPath: "/real/f.txt"}, // rewritten relative
		{VPath: "/real/loop", Target: "..", TargetVPath: "/"},
		{VPath: "/up", Target: "sub/deep", TargetVPath: "/sub/deep"},
		{VPath: "/via-link", Target: "in-dir/f.txt", TargetVPath: "/in-dir/f.txt"},
	}
	got := tr.Links("/")
	for i, l := range got {
		// The link's own mtime (lstat), not its target's.
		if fi, err := os.Lstat(filepath.Join(d, filepath.FromSlash(l.VPath))); err != nil || fi.ModTime().UnixNano() != l.MTime {
			t.Errorf("%s: MTime %d, want the link's own (%v)", l.VPath, l.MTime, err)
		}
		got[i].MTime, got[i].UID, got[i].GID = 0, 0, 0
	}
	if !reflect.DeepEqual(got, wantLinks) {
		t.Fatalf("Links = %+v, want %+v", got, wantLinks)
	}
	if got := vpaths2(tr.Dirs("/")); strings.Join(got, ",") != "/real,/sub,/sub/deep" {
		t.Fatalf("Dirs = %+v", got)
	}
	if _, err := tr.Open("/in-file"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a link: %v", err)
	}
	probs := map[string]string{}
	for _, p := range tr.Unpublishable("/") {
		probs[p.VPath] = p.Reason
	}
	for vp, want := range map[string]string{"/abs-out": "outside", "/rel-out": "outside", "/out-dir": "outside",
		"/dangling": "to nothing", "/detour": "through other links"} {
		if !strings.Contains(probs[vp], want) {
			t.Errorf("%s: reported %q, want %q", vp, probs[vp], want)
		}
	}
	if len(probs) != 5 {
		t.Errorf("reported %v", probs)
	}
}

func vpaths2(ds []Dir) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.VPath)
	}
	return out
}

func TestDigestCache(t *testing.T) {
	d := t.TempDir()
	p := write(t, d, "f", "hello world")
	tr := newTree(t, []Mount{{d, "/m"}}, Options{})
	got, err := tr.Digest("/m/f")
	if err != nil || got != sha([]byte("hello world")) {
		t.Fatalf("Digest = %q, %v", got, err)
	}
	fi, _ := os.Stat(p)
	// Unchanged: the cached digest is returned (the content is not read
	// again).
	if again, _ := tr.Digest("/m/f"); again != got || tr.hashRuns.Load() != 1 {
		t.Fatalf("cache not used: %q, %d computations", again, tr.hashRuns.Load())
	}
	// Rewritten in place with size and mtime kept (a copy preserving
	// times): the status change time tells, where there is one.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("HELLO"), 0)
	f.Close()
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	if again, _ := tr.Digest("/m/f"); ctimeOf(fi) != 0 && again != sha([]byte("HELLO world")) {
		t.Fatalf("stale digest after an in-place rewrite: %q", again)
	}
	// A new mtime invalidates it.
	f, _ = os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("HeLLO"), 0)
	f.Close()
	later := fi.ModTime().Add(time.Second)
	os.Chtimes(p, later, later)
	if again, _ := tr.Digest("/m/f"); again != sha([]byte("HeLLO world")) {
		t.Fatalf("stale digest after change: %q", again)
	}
	if _, err := tr.Digest("/m/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	// PrefixDigest.
	if pd, err := tr.PrefixDigest("/m/f", 5); err != nil || pd != sha([]byte("HeLLO")) {
		t.Fatalf("PrefixDigest = %q, %v", pd, err)
	}
	if pd, err := tr.PrefixDigest("/m/f", 0); err != nil || pd != sha(nil) {
		t.Fatalf("PrefixDigest 0 = %q, %v", pd, err)
	}
	if _, err := tr.PrefixDigest("/m/f", 12); !errors.Is(err, ErrRange) {
		t.Fatalf("PrefixDigest past end: %v", err)
	}
}

func TestDecide(t *testing.T) {
	d := t.TempDir()
	content := []byte("0123456789abcdefghij")
	write(t, d, "f", string(content))
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	whole := sha(content)
	pre := func(n int) string { return sha(content[:n]) + "@" + itoa(n) }
	cases := []struct {
		name   string
		value  string
		skip   bool
		offset int64
		err    error
	}{
		{"nothing", "", false, 0, nil},
		{"whole match", whole, true, 0, nil},
		{"whole match lowercase", strings.ToLower(whole), true, 0, nil},
		{"whole mismatch", sha([]byte("other")), false, 0, nil},
		{"prefix match", pre(7), false, 7, nil},
		{"prefix match lower", strings.ToLower(pre(7)), false, 7, nil},
		{"prefix whole file", pre(20), false, 20, nil},
		{"prefix mismatch", sha([]byte("0123456")) + "@6", false, 0, nil},
		{"prefix past end", sha(append(content, 'x')) + "@21", false, 0, nil},
		{"prefix zero", sha(nil) + "@0", false, 0, nil},
		{"bad hex", strings.Repeat("Z", 40), false, 0, ErrBadCacheValue},
		{"short", "ABC", false, 0, ErrBadCacheValue},
		{"bad length", whole + "@x", false, 0, ErrBadCacheValue},
		{"negative", whole + "@-1", false, 0, ErrBadCacheValue},
		{"empty length", whole + "@", false, 0, ErrBadCacheValue},
		{"huge length", whole + "@99999999999999999999", false, 0, ErrBadCacheValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skip, off, err := tr.Decide("/f", c.value)
			if skip != c.skip || off != c.offset || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("Decide(%q) = %v, %d, %v; want %v, %d, %v", c.value, skip, off, err, c.skip, c.offset, c.err)
			}
		})
	}
	if _, _, err := tr.Decide("/missing", whole); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// readAll reads a Reader in chunks of size step from offset.
func readAll(t *testing.T, r *Reader, from int64, step int) []byte {
	t.Helper()
	buf := make([]byte, step)
	var out []byte
	for off := from; ; {
		n, eof, err := r.ReadChunk(buf, off)
		if err != nil {
			t.Fatalf("ReadChunk(%d): %v", off, err)
		}
		out = append(out, buf[:n]...)
		off += int64(n)
		if eof {
			return out
		}
		if n == 0 {
			t.Fatal("no progress")
		}
	}
}

func TestReader(t *testing.T) {
	d := t.TempDir()
	content := bytes.Repeat([]byte("The quick brown fox. "), 1000)
	write(t, d, "big", string(content))
	write(t, d, "empty", "")
	tr := newTree(t, []Mount{{d, "/"}}, Options{})

	r, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Digest(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("early Digest: %v", err)
	}
	if got := readAll(t, r, 0, 4096); !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
	if dg, _ := r.Digest(); dg != sha(content) {
		t.Fatalf("Digest = %s", dg)
	}
	h, _ := r.Headers()
	if h["SHA1"] != sha(content) || h["SIZE"] != itoa(len(content)) {
		t.Fatalf("Headers = %v", h)
	}
	// Reading the final offset again gives an empty eof chunk.
	if n, eof, err := r.ReadChunk(make([]byte, 10), int64(len(content))); n != 0 || !eof || err != nil {
		t.Fatalf("at end: %d %v %v", n, eof, err)
	}
	if _, _, err := r.ReadChunk(make([]byte, 10), int64(len(content))+1); !errors.Is(err, ErrRange) {
		t.Fatalf("past end: %v", err)
	}
	r.Close()
	r.Close()
	if _, _, err := r.ReadChunk(make([]byte, 10), 0); err == nil {
		t.Fatal("read after close")
	}

	// Resume: Decide then OpenAt reuses the prefix hash; a fresh OpenAt hashes
	// the prefix itself. Both end with the whole-file digest.
	const n = 12345
	value := sha(content[:n]) + "@" + itoa(n)
	if _, off, err := tr.Decide("/big", value); err != nil || off != n {
		t.Fatalf("Decide = %d, %v", off, err)
	}
	for _, fresh := range []bool{false, true} {
		if fresh {
			tr.dmu.Lock()
			tr.prefixes = prefixCache{}
			tr.dmu.Unlock()
		}
		r, err := tr.OpenAt("/big", n)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, r, n, 1000); !bytes.Equal(got, content[n:]) {
			t.Fatal("resumed content differs")
		}
		if dg, _ := r.Digest(); dg != sha(content) {
			t.Fatalf("fresh=%v: resumed Digest = %s", fresh, dg)
		}
		r.Close()
	}
	if _, err := tr.OpenAt("/big", int64(len(content))+1); !errors.Is(err, ErrRange) {
		t.Fatalf("OpenAt past end: %v", err)
	}

	// Skipping ahead still yields the right digest.
	r, _ = tr.Open("/big")
	if got := readAll(t, r, 5000, 3000); !bytes.Equal(got, content[5000:]) {
		t.Fatal("skip content differs")
	}
	if dg, _ := r.Digest(); dg != sha(content) {
		t.Fatal("skip digest")
	}
	r.Close()

	// Empty file: one chunk, n=0, eof.
	r, _ = tr.Open("/empty")
	if n, eof, err := r.ReadChunk(make([]byte, 8), 0); n != 0 || !eof || err != nil {
		t.Fatalf("empty: %d %v %v", n, eof, err)
	}
	if dg, _ := r.Digest(); dg != sha(nil) {
		t.Fatal("empty digest")
	}
	r.Close()
}

func TestReaderChanged(t *testing.T) {
	content := strings.Repeat("x", 10000)
	for _, c := range []struct {
		name   string
		change func(p string)
	}{
		{"append", func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("more")
			f.Close()
		}},
		{"truncate", func(p string) { os.Truncate(p, 100) }},
		{"same size rewrite", func(p string) {
			fi, _ := os.Stat(p)
			os.WriteFile(p, []byte(strings.Repeat("y", 10000)), 0o644)
			later := fi.ModTime().Add(2 * time.Second)
			os.Chtimes(p, later, later)
		}},
		{"rewritten in place, times kept", func(p string) {
			// Only the status change time moves (a copy preserving times).
			fi, _ := os.Stat(p)
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			f.WriteAt([]byte("ABCD"), 4000)
			f.Close()
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}},
		{"replaced by rename", func(p string) {
			tmp := p + ".new"
			os.WriteFile(tmp, []byte(content), 0o644)
			os.Rename(tmp, p)
		}},
		{"removed", func(p string) { os.Remove(p) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			p := write(t, d, "f", content)
			tr := newTree(t, []Mount{{d, "/"}}, Options{})
			r, err := tr.Open("/f")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			buf := make([]byte, 1000)
			if _, _, err := r.ReadChunk(buf, 0); err != nil {
				t.Fatal(err)
			}
			c.change(p)
			_, _, err = r.ReadChunk(buf, 1000)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("err = %v, want ErrChanged", err)
			}
			var ce *ChangedError
			if !errors.As(err, &ce) || ce.VPath != "/f" {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestReadChunkAllocs(t *testing.T) {
	d := t.TempDir()
	write(t, d, "f", strings.Repeat("z", 1<<20))
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	// The version's digest first: its background computation (SHA-1 and
	// chunk table) would otherwise allocate while ReadChunk is measured.
	if _, err := tr.Digest("/f"); err != nil {
		t.Fatal(err)
	}
	r, _ := tr.Open("/f")
	defer r.Close()
	buf := make([]byte, 64<<10)
	var off int64
	allocs := testing.AllocsPerRun(10, func() {
		n, _, err := r.ReadChunk(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	})
	// The chunk data never allocates; on Linux the change check costs one small
	// allocation (the path given to stat); elsewhere FileInfo values.
	limit := 4.0
	if runtime.GOOS == "linux" {
		limit = 1
	}
	if allocs > limit {
		t.Fatalf("ReadChunk allocates %.0f times per chunk", allocs)
	}
	t.Logf("allocs per ReadChunk: %.0f", allocs)
}

func TestRescan(t *testing.T) {
	d := t.TempDir()
	write(t, d, "a", "1")
	write(t, d, "dir/b", "2")
	tr := newTree(t, []Mount{{d, "/m"}}, Options{})
	os.Remove(filepath.Join(d, "a"))
	write(t, d, "c", "3")
	write(t, d, "dir/b", "22")
	later := time.Now().Add(time.Second)
	os.Chtimes(filepath.Join(d, "dir/b"), later, later)
	ch, err := tr.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Op: Deleted, VPath: "/m/a", Size: 1},
		{Op: Created, VPath: "/m/c", Size: 1},
		{Op: Updated, VPath: "/m/dir/b", Size: 2},
	}
	if !sameChanges(ch, want) {
		t.Fatalf("Rescan = %v, want %v", ch, want)
	}
	os.RemoveAll(filepath.Join(d, "dir"))
	ch, _ = tr.Rescan()
	// The directory goes after what it held.
	if !sameChanges(ch, []Change{{Op: Deleted, VPath: "/m/dir/b", Size: 2}, {Op: Deleted, VPath: "/m/dir", Kind: KindDir}}) {
		t.Fatalf("Rescan after rmdir = %v", ch)
	}
	if ch, _ := tr.Rescan(); len(ch) != 0 {
		t.Fatalf("idle Rescan = %v", ch)
	}
	tr.Close()
	if _, err := tr.Rescan(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := tr.Digest("/m/c"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Digest after Close: %v", err)
	}
}

// sameChanges compares changes ignoring ModTime.
func sameChanges(got, want []Change) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Op != want[i].Op || got[i].VPath != want[i].VPath || got[i].Size != want[i].Size || got[i].Kind != want[i].Kind {
			return false
		}
	}
	return true
}

func TestParseCacheValue(t *testing.T) {
	w := strings.Repeat("ab", 20)
	if s, n, p, err := ParseCacheValue(w); s != w || n != 0 || p || err != nil {
		t.Fatal("whole")
	}
	if s, n, p, err := ParseCacheValue(w + "@0012"); s != w || n != 12 || !p || err != nil {
		t.Fatal("prefix")
	}
	if _, _, _, err := ParseCacheValue(strings.Repeat("\x00", 500)); !errors.Is(err, ErrBadCacheValue) || len(err.Error()) > 300 {
		t.Fatalf("garbage: %v", err)
	}
}

func FuzzParseCacheValue(f *testing.F) {
	f.Add(strings.Repeat("AB", 20) + "@10")
	f.Add("")
	f.Add("@")
	f.Fuzz(func(t *testing.T, v string) {
		s, n, p, err := ParseCacheValue(v)
		if err != nil {
			return
		}
		if len(s) != 40 || n < 0 || (!p && n != 0) {
			t.Fatalf("%q -> %q %d %v", v, s, n, p)
		}
	})
}

// A file version hashed once (by a whole transfer) is not hashed again by
// the next transfer; a new version is.
func TestReaderReusesDigestOfSameVersion(t *testing.T) {
	d := t.TempDir()
	content := strings.Repeat("fan-out ", 5000)
	write(t, d, "f", content)
	tr := newTree(t, []Mount{{Dir: d, Alias: "/"}}, Options{})
	readAll := func() (*Reader, string) {
		r, err := tr.Open("/f")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		buf := make([]byte, 4096)
		for off := int64(0); ; {
			n, eof, err := r.ReadChunk(buf, off)
			if err != nil {
				t.Fatal(err)
			}
			off += int64(n)
			if eof {
				break
			}
		}
		sum, err := r.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return r, sum
	}
	r1, s1 := readAll()
	if r1.known != "" || s1 != sha([]byte(content)) {
		t.Fatalf("first transfer: known %q, digest %s", r1.known, s1)
	}
	r2, s2 := readAll()
	if r2.known == "" || s2 != s1 {
		t.Fatalf("second transfer: known %q (want the cached digest), digest %s want %s", r2.known, s2, s1)
	}
	changed := strings.Repeat("new text", 5000)
	p := write(t, d, "f", changed)
	later := time.Now().Add(time.Minute)
	os.Chtimes(p, later, later)
	if _, err := tr.Rescan(); err != nil {
		t.Fatal(err)
	}
	r3, s3 := readAll()
	if r3.known != "" || s3 != sha([]byte(changed)) {
		t.Fatalf("new version: known %q, digest %s want %s", r3.known, s3, sha([]byte(changed)))
	}
}
