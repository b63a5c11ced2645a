package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// listAll lists every entry under root (hidden ones too), slash paths.
func listAll(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestHostileServer: a server sends names that climb out of the inbox,
// look absolute, hold NUL or backslashes, name hidden files, or lead
// through symbolic links planted in the inbox. Nothing is written or
// deleted outside the inbox, every such command is refused and counted,
// and the legitimate files around them arrive intact.
func TestHostileServer(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "inbox")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{in, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := []byte("victim: must survive\n")
	if err := os.WriteFile(filepath.Join(outside, "victim.txt"), victim, 0o644); err != nil {
		t.Fatal(err)
	}
	// Links planted in the inbox: a directory link and a file link leading
	// outside, and a partial file name that is a link to a file outside.
	plant := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(in, name)); err != nil {
			t.Fatal(err)
		}
	}
	plant(outside, "link")
	plant("../outside", "rellink")
	plant(filepath.Join(outside, "victim.txt"), "flink")
	plant(filepath.Join(outside, "planted.txt"), ".planted.txt.fmqpart")
	baseBefore := listAll(t, base)

	evil := []byte("EVIL CONTENT\n")
	good := content(42, 300_000)
	hostile := []string{
		"../escape.txt",
		"escape-relative.txt",
		"/../escape.txt",
		"/a/../../escape.txt",
		"//etc/x",
		"/./x",
		"/nul\x00name.txt",
		"/back\\slash.txt",
		"/.fmq-cache",
		"/sub/.x.fmqpart", // a partial's name (hidden files are files, fmq's own names are not)
		"/.fmq-inbox",
		"/ctrl\x01char",
		"",
	}
	linked := []string{"/link/pwned.txt", "/rellink/pwned.txt", "/link/victim.txt"}
	srv := startFakeServer(t, func(s *fakeSession) {
		s.file("/first.txt", []byte("first\n"), 1024)
		for _, name := range hostile {
			s.file(name, evil, 5) // several chunks: the rest of a refused file is dropped too
		}
		s.file("/good/middle.bin", good, 65536)
		for _, name := range linked {
			s.file(name, evil, 1024)
		}
		for _, name := range []string{"../outside/victim.txt", "/link/victim.txt", "/rellink/victim.txt", "/flink/x"} {
			s.chunk(2, name, 0, true, nil, nil) // deletes
		}
		s.file("/planted.txt", []byte("planted partial was a link\n"), 1024)
		s.file("/flink", []byte("replaces the link, not its target\n"), 1024)
		s.file("/last.txt", []byte("last\n"), 1024)
		s.synced()
	})

	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
	ctx := 30 * time.Second
	waitErr := func() error {
		select {
		case <-c.Done():
			return c.Err()
		case <-time.After(ctx):
			t.Fatalf("client did not finish within %v", ctx)
			return nil
		}
	}
	err := waitErr()
	st := c.Stats()
	t.Logf("client: err %v; files %d, deleted %d, refused %d, problems %d, sessions %d (server saw %d)",
		err, st.Files.Load(), st.Deleted.Load(), st.Refused.Load(), st.Problems.Load(), c.Sessions(), srv.Sessions())

	// Nothing outside the inbox changed.
	afterOutside := listAll(t, outside)
	if len(afterOutside) != 1 || afterOutside[0] != "victim.txt" {
		t.Errorf("outside the inbox now holds %v, want only victim.txt", afterOutside)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "victim.txt")); err != nil || !bytes.Equal(b, victim) {
		t.Errorf("victim.txt changed: %q, %v", b, err)
	}
	var baseNow []string
	for _, e := range listAll(t, base) {
		if !strings.HasPrefix(e, "inbox/") {
			baseNow = append(baseNow, e)
		}
	}
	var baseWas []string
	for _, e := range baseBefore {
		if !strings.HasPrefix(e, "inbox/") {
			baseWas = append(baseWas, e)
		}
	}
	if strings.Join(baseNow, ",") != strings.Join(baseWas, ",") {
		t.Errorf("outside the inbox: before %v, after %v", baseWas, baseNow)
	}
	// No file with evil content anywhere in the inbox.
	filepath.Walk(in, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("EVIL")) {
				t.Errorf("hostile content written to %s", p)
			}
		}
		return nil
	})
	// The legitimate files arrived.
	for name, want := range map[string][]byte{
		"first.txt":       []byte("first\n"),
		"good/middle.bin": good,
		"planted.txt":     []byte("planted partial was a link\n"),
		"last.txt":        []byte("last\n"),
	} {
		if b, err := os.ReadFile(filepath.Join(in, name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("legitimate file %s: %d bytes, err %v", name, len(b), err)
		}
	}
	// The link planted in the inbox is not fmq's: neither followed nor
	// replaced, and the file the server sent under its name is a conflict.
	if fi, err := os.Lstat(filepath.Join(in, "flink")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("flink: want the planted link kept, got %v, %v", fi, err)
	}
	if n := st.Conflicts.Load(); n != 1 {
		t.Errorf("Stats().Conflicts = %d, want 1 (flink)", n)
	}
	if n := st.Refused.Load(); n < int64(len(hostile)+len(linked)+4) {
		t.Errorf("Stats().Refused = %d, want at least %d (every hostile name and delete)", n, len(hostile)+len(linked)+4)
	}
	if p := st.Problems.Load(); p != 0 {
		t.Errorf("Stats().Problems = %d: hostile names must be refusals, not storage failures", p)
	}
	if n := c.Sessions(); n != 1 {
		t.Errorf("%d sessions, want 1 (refusals are not failures to retry)", n)
	}
	if err != nil {
		t.Errorf("client ended with %v: refusing hostile names is not a failure to store files", err)
	}
}

// TestHostileLinks: a server sends links (operation 6) that lead out of
// the inbox, out of the subscription, or are absolute, a directory
// (operation 7) that climbs out, and a file under a link it made. Each is
// refused and counted; only the honest link is made; nothing is written
// through a link.
func TestHostileLinks(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "inbox")
	srv := startFakeServer(t, func(s *fakeSession) {
		link := func(name, target string) { s.chunk(6, name, 0, true, map[string]string{"LINK": target}, nil) }
		link("/sub/up", "../../outside") // out of the inbox
		link("/sub/abs", "/etc/passwd")  // absolute
		link("/sub/side", "../other/x")  // inside the inbox, out of the subscription
		link("/sub/empty", "")           // no target
		link("/other/l", "x")            // outside the subscription itself
		link("/sub/ok", "real/f")        // honest
		link("/sub/d", "real")           // honest, to a directory
		s.chunk(7, "/sub/../../x", 0, true, nil, nil)
		s.chunk(7, "/sub/real", 0, true, map[string]string{"MODE": "0755"}, nil)
		s.file("/sub/real/f", []byte("f\n"), 1024)
		s.file("/sub/d/pwned.txt", []byte("EVIL\n"), 1024) // through the link just made
		s.synced()
	})
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true, Subscribe: []string{"/sub"}})
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("client did not finish")
	}
	st := c.Stats()
	if r, l, f := st.Refused.Load(), st.Links.Load(), st.Files.Load(); r != 7 || l != 2 || f != 1 {
		t.Errorf("refused %d (want 7), links %d (want 2), files %d (want 1)", r, l, f)
	}
	for name, want := range map[string]string{"sub/ok": "real/f", "sub/d": "real"} {
		if got, err := os.Readlink(filepath.Join(in, name)); err != nil || got != want {
			t.Errorf("%s: %q, %v; want a link to %q", name, got, err, want)
		}
	}
	for _, name := range []string{"sub/up", "sub/abs", "sub/side", "sub/empty", "other", "sub/real/pwned.txt"} {
		if _, err := os.Lstat(filepath.Join(in, name)); err == nil {
			t.Errorf("%s exists", name)
		}
	}
	for _, e := range listAll(t, base) {
		if e != "inbox" && !strings.HasPrefix(e, "inbox/") {
			t.Errorf("%s made outside the inbox", e)
		}
	}
}
