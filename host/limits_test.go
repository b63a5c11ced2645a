package host

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/machines"
	"github.com/fmq/fmq/publish"
)

// tomlEdit applies text edits to an embedded machine and writes it to a
// temporary file.
func tomlEdit(t *testing.T, name string, edits ...string) string {
	t.Helper()
	_, src, err := machines.Source(machines.EmbeddedPrefix + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s no longer holds %q", name, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	file := filepath.Join(t.TempDir(), name)
	writeFile(t, file, []byte(s))
	return file
}

// A per-server client limit is a TOML-only edit of fmq_server.toml: a
// setting and one guarded alternative on OHAI reading `sessions`. It is
// exact: with max_clients = 2 the third client is refused with SRSLY, and
// once a client leaves the next one is welcome.
func TestClientLimitInTOML(t *testing.T) {
	file := tomlEdit(t, "fmq_server.toml",
		`[settings]`, "[settings]\nmax_clients = { default = 2, min = 0, doc = \"Most clients served at once; 0 = no limit.\" }",
		`on.OHAI = [`, "on.OHAI = [\n  { when = \"settings.max_clients > 0 && sessions > settings.max_clients\", do = [\"send SRSLY reason = 'server full: ' + string(settings.max_clients) + ' clients'\", \"terminate\"] },")
	srv, err := StartServer(ServerConfig{Machine: file, Publish: []publish.Mount{{Dir: publishOne(t), Alias: "/"}},
		Bind: "tcp://127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	waitSessions := func(n uint64) {
		t.Helper()
		waitUntil(t, func() bool { return srv.Engine().Stats().Instances == n }, func() string {
			return fmt.Sprintf("sessions %d, want %d", srv.Engine().Stats().Instances, n)
		})
	}
	a := dialRaw(t, srv.Endpoint(), "")
	a.send(filemq.NewOhai())
	a.expect("OHAI-OK")
	b := dialRaw(t, srv.Endpoint(), "")
	b.send(filemq.NewOhai())
	b.expect("OHAI-OK")
	c := dialRaw(t, srv.Endpoint(), "")
	c.send(filemq.NewOhai())
	if r := c.expect("SRSLY").(*filemq.Srsly); r.Reason != "server full: 2 clients" {
		t.Errorf("SRSLY reason %q", r.Reason)
	}
	waitSessions(2)
	a.send(&filemq.Kthxbai{})
	waitSessions(1)
	d := dialRaw(t, srv.Endpoint(), "")
	d.send(filemq.NewOhai())
	d.expect("OHAI-OK")
	b.send(&filemq.Hugz{})
	b.expect("HUGZ-OK")
}
