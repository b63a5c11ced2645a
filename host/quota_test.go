package host

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/publish"
)

// A quota of N files is a TOML-only edit of fmq_server.toml: a setting, a
// variable, "next chunk of one file" instead of "next chunk", and a handler
// of file-sent (every "next chunk" of the ready state becomes
// "next chunk of one file"). It is exact: with max_files = 2 and credit for all five
// files, the client gets exactly two whole files and then RTFM, not one
// byte of a third.
func TestFileQuotaInTOML(t *testing.T) {
	file := tomlEdit(t, "fmq_server.toml",
		`[settings]`, "[vars]\nfiles = 0\n\n[settings]\nmax_files = { default = 2, min = 1, doc = \"Files one client may receive.\" }",
		`on.ICANHAZ = { do = ["store subscription", "send ICANHAZ-OK", "next chunk"] }`, `on.ICANHAZ = { do = ["store subscription", "send ICANHAZ-OK", "next chunk of one file"] }`,
		`on.NOM     = { do = ["store credit", "next chunk"] }`, `on.NOM     = { do = ["store credit", "next chunk of one file"] }`,
		`on.send-more = { do = ["next chunk"]`, `on.send-more = { do = ["next chunk of one file"]`,
		`on.resynced  = { do = ["queue resync", "next chunk"]`, `on.resynced  = { do = ["queue resync", "next chunk of one file"]`,
		`  "next chunk",
], doc = "The next CHEEZBURGER`, `  "next chunk of one file",
], doc = "The next CHEEZBURGER`,
		`on.changed = { do = ["queue changes", "next chunk"] }`, `on.changed = { do = ["queue changes", "next chunk of one file"] }
on.file-sent = [
  { when = "vars.files + 1 >= settings.max_files", do = ["set files = vars.files + 1", "send RTFM reason = 'quota of ' + string(settings.max_files) + ' files reached'", "terminate"] },
  { do = ["set files = vars.files + 1", "next chunk of one file"] },
]`)
	pub := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for i := 1; i <= 5; i++ {
		p := filepath.Join(pub, fmt.Sprintf("f%d.txt", i))
		writeFile(t, p, []byte(fmt.Sprintf("file number %d\n", i)))
		os.Chtimes(p, old, old)
	}
	srv, err := StartServer(ServerConfig{Machine: file, Publish: []publish.Mount{{Dir: pub, Alias: "/"}},
		Bind: "tcp://127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := dialRaw(t, srv.Endpoint(), "")
	c.send(filemq.NewOhai())
	c.expect("OHAI-OK")
	c.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1", "INLINE-EOF": "1"}})
	c.expect("ICANHAZ-OK")
	c.send(&filemq.Nom{Credit: 1 << 20})
	files := map[string]bool{}
	for {
		m := c.recv(10 * time.Second)
		if m == nil {
			t.Fatalf("connection ended after %d files without RTFM", len(files))
		}
		if r, ok := m.(*filemq.Rtfm); ok {
			if r.Reason != "quota of 2 files reached" {
				t.Errorf("RTFM reason %q", r.Reason)
			}
			break
		}
		ch, ok := m.(*filemq.Cheezburger)
		if !ok {
			t.Fatalf("unexpected %s", m.Info().Name)
		}
		if ch.Operation == 1 {
			if files[ch.Filename] || ch.EOF != 1 {
				t.Errorf("chunk of %s at %d eof=%d: more than one whole file per chunk here", ch.Filename, ch.Offset, ch.EOF)
			}
			files[ch.Filename] = true
		}
	}
	if len(files) != 2 {
		t.Errorf("received %d files before the quota, want exactly 2: %v", len(files), files)
	}
	if m := c.recv(200 * time.Millisecond); m != nil {
		t.Errorf("after RTFM: %s", m.Info().Name)
	}
}
