package e2e

import (
	"github.com/fmq/fmq/publish"

	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// visibleDirs lists the non-hidden directories under root (slash paths).
func visibleDirs(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." || !d.IsDir() {
			return nil
		}
		if hidden(rel) {
			return filepath.SkipDir
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// parentDirs lists the directories that hold the files of sums.
func parentDirs(sums map[string]string) []string {
	set := map[string]bool{}
	for rel := range sums {
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// mirroredDirs lists the directories a client subscribed to subs holds:
// those of its files, and the published directories (empty ones too)
// under its subscriptions, with their parents.
func mirroredDirs(t testing.TB, pub string, subs []string) []string {
	sums := subset(treeSums(t, pub), subs...)
	for _, d := range visibleDirs(t, pub) {
		for _, s := range subs {
			if publish.Matches(s, "/"+d) {
				sums[d+"/."] = "" // a directory is the parent of its "."
			}
		}
	}
	return parentDirs(sums)
}

func mustRename(t testing.TB, root, from, to string) {
	t.Helper()
	dst := filepath.Join(root, filepath.FromSlash(to))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, filepath.FromSlash(from)), dst); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t testing.TB, root, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptions: five continuous clients with different subscriptions
// sync at once; each holds exactly its subscribed files, and updates,
// deletes and renames made in the published tree (during the initial sync
// and after it) reach exactly the clients they concern.
func TestSubscriptions(t *testing.T) {
	pub := t.TempDir()
	files := map[string][]byte{
		"top.txt":            []byte("top\n"),
		"a/x.txt":            []byte("x1\n"),
		"a/y.txt":            []byte("y\n"),
		"a/b/z.txt":          []byte("z\n"),
		"a/b/deep/w.txt":     []byte("w\n"),
		"a/b/big.bin":        content(1, 3<<20),
		"ab/not-under-a.txt": []byte("prefix trap: /a must not match /ab\n"),
		"c/one.txt":          []byte("one\n"),
		"c/two/three.txt":    []byte("three\n"),
		"c/two/four.txt":     []byte("four\n"),
		"c/big.bin":          content(2, 3<<20),
		"d/other.txt":        []byte("other\n"),
	}
	for rel, data := range files {
		writeFile(t, pub, rel, data)
	}
	srv := startServer(t, pub, "", withSettings("chunk_size", "32768"))
	subs := []struct {
		name string
		subs []string
	}{
		{"root", []string{"/"}},
		{"a", []string{"/a"}},
		{"ab", []string{"/a/b"}},
		{"c", []string{"/c"}},
		{"a+c", []string{"/a", "/c"}},
	}
	type cl struct {
		name string
		subs []string
		dir  string
		c    *host.Client
	}
	var clients []cl
	for _, s := range subs {
		dir := t.TempDir()
		c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: dir, Subscribe: s.subs,
			// a small window keeps the initial sync going while the tree changes
			Settings: map[string]string{"window": "131072", "slice": "32768"}})
		clients = append(clients, cl{s.name, s.subs, dir, c})
	}
	converge := func(phase string) {
		t.Helper()
		for _, c := range clients {
			waitTree(t, 30*time.Second, fmt.Sprintf("%s: client %s %v", phase, c.name, c.subs), c.dir,
				func() map[string]string { return subset(treeSums(t, pub), c.subs...) })
		}
		for _, c := range clients {
			want := mirroredDirs(t, pub, c.subs)
			eventually(t, 10*time.Second, fmt.Sprintf("%s: client %s directories", phase, c.name), func() string {
				if got := visibleDirs(t, c.dir); strings.Join(got, ",") != strings.Join(want, ",") {
					return fmt.Sprintf("dirs %v, want %v", got, want)
				}
				return ""
			})
			st := c.c.Stats()
			if r, p := st.Refused.Load(), st.Problems.Load(); r != 0 || p != 0 {
				t.Errorf("%s: client %s: refused %d, problems %d", phase, c.name, r, p)
			}
			if err := c.c.Err(); err != nil {
				t.Fatalf("%s: client %s: %v", phase, c.name, err)
			}
		}
	}

	// Changes while the clients are in their initial sync: once data flows.
	eventually(t, 30*time.Second, "data flowing", func() string {
		for _, c := range clients {
			if c.c.Stats().Bytes.Load() > 0 {
				return ""
			}
		}
		return "no client has received data"
	})
	syncing := 0
	for _, c := range clients {
		select {
		case <-c.c.Synced():
		default:
			syncing++
		}
	}
	t.Logf("%d of %d clients still in their initial sync when the tree changes", syncing, len(clients))
	writeFile(t, pub, "a/x.txt", []byte("x2: updated, longer\n"))
	mustRemove(t, pub, "c/one.txt")
	mustRename(t, pub, "a/y.txt", "c/y-moved-from-a.txt") // leaves /a, enters /c
	writeFile(t, pub, "a/b/new.txt", []byte("new\n"))
	writeFile(t, pub, "ab/new.txt", []byte("not under /a either\n"))
	for _, c := range clients {
		waitSynced(t, c.c, 30*time.Second, "client "+c.name)
	}
	converge("during sync")

	// Changes after the initial sync.
	mustRename(t, pub, "a/b/z.txt", "a/b/z-renamed.txt")
	mustRename(t, pub, "c/two", "c/2")       // a directory rename
	mustRemove(t, pub, "a/b/deep")           // its directory goes too
	mustRename(t, pub, "d/other.txt", "a/d") // enters /a
	writeFile(t, pub, "c/big.bin", content(3, 1<<20))
	converge("after sync")

	for _, c := range clients {
		st := c.c.Stats()
		t.Logf("client %-4s %v: files %d deleted %d bytes %d sessions %d", c.name, c.subs,
			st.Files.Load(), st.Deleted.Load(), st.Bytes.Load(), c.c.Sessions())
		if c.c.Sessions() != 1 {
			t.Errorf("client %s: %d sessions, want 1", c.name, c.c.Sessions())
		}
	}
}

// TestOverlappingSubscriptions: a file matched by several subscriptions of
// one client is sent once; a subscription to a single file or to a path
// that does not exist yet completes its sync too.
func TestOverlappingSubscriptions(t *testing.T) {
	pub := t.TempDir()
	for i := range 12 {
		writeFile(t, pub, fmt.Sprintf("a/b/f%02d", i), content(uint64(600+i), 40_000))
		writeFile(t, pub, fmt.Sprintf("a/g%02d", i), content(uint64(700+i), 40_000))
	}
	writeFile(t, pub, "solo/file.txt", []byte("just me\n"))
	writeFile(t, pub, "solo/file.txt.bak", []byte("not me\n"))
	srv := startServer(t, pub, "")
	in := t.TempDir()
	subs := []string{"/a", "/a/b", "/", "/solo/file.txt", "/not/yet"}
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true, Subscribe: subs})
	waitClient(t, c, 30*time.Second, "overlapping subscriptions")
	want := treeSums(t, pub)
	if d := diffSums(want, treeSums(t, in)); d != "" {
		t.Fatalf("inbox differs: %s", d)
	}
	if got := c.Stats().Files.Load(); got != int64(len(want)) {
		t.Errorf("%d files received for %d distinct files: some were sent more than once", got, len(want))
	}

	in2 := t.TempDir()
	c2 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in2, Once: true, Subscribe: []string{"/solo/file.txt", "/not/yet"}})
	waitClient(t, c2, 30*time.Second, "single-file subscription")
	if d := diffSums(subset(want, "/solo/file.txt"), treeSums(t, in2)); d != "" {
		t.Fatalf("single-file subscription: %s", d)
	}
}
