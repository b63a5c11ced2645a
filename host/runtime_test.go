package host

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/machines"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

// rawPeer is a hand-driven FileMQ client over a bare Dealer.
type rawPeer struct {
	t *testing.T
	d *transport.Dealer
}

func dialRaw(t *testing.T, ep, identity string) *rawPeer {
	t.Helper()
	d, err := transport.Dial(ep, transport.Options{Identity: identity, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &rawPeer{t: t, d: d}
}

func (p *rawPeer) send(m codec.Message) {
	p.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.d.Send(b); err != nil {
		p.t.Fatalf("send %s: %v", m.Info().Name, err)
	}
}

// recv returns the next message, or nil when the connection is lost or
// nothing comes within d.
func (p *rawPeer) recv(d time.Duration) codec.Message {
	p.t.Helper()
	select {
	case m, ok := <-p.d.Recv():
		if !ok {
			return nil
		}
		msg, err := filemq.Protocol.Decode(m.Body, nil)
		if err != nil {
			p.t.Fatalf("undecodable frame: %v", err)
		}
		return msg
	case <-p.d.Lost():
		return nil
	case <-time.After(d):
		return nil
	}
}

func (p *rawPeer) expect(name string) codec.Message {
	p.t.Helper()
	m := p.recv(10 * time.Second)
	if m == nil || m.Info().Name != name {
		p.t.Fatalf("got %v, want %s", m, name)
	}
	return m
}

func publishOne(t *testing.T) string {
	pub := t.TempDir()
	writeFile(t, filepath.Join(pub, "secret.txt"), []byte("for logged-in users only\n"))
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "secret.txt"), old, old)
	return pub
}

// A second connection presenting the identity of a logged-in client never
// inherits its session: it is refused and downloads nothing.
func TestTakeoverDownloadsNothing(t *testing.T) {
	pub := publishOne(t)
	pw := filepath.Join(t.TempDir(), "passwords")
	writeFile(t, pw, []byte("ada:lovelace\n"))
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Passwords: pw, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ada := dialRaw(t, srv.Endpoint(), "ada-box")
	ada.send(filemq.NewOhai())
	ada.expect("ORLY")
	ada.send(&filemq.Yarly{Mechanism: "PLAIN", Response: []byte("\x00ada\x00lovelace")})
	ada.expect("OHAI-OK")

	eve := dialRaw(t, srv.Endpoint(), "ada-box")
	eve.d.Send(mustAppend(t, &filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}}))
	eve.d.Send(mustAppend(t, &filemq.Nom{Credit: 1 << 20}))
	for {
		m := eve.recv(2 * time.Second)
		if m == nil {
			break
		}
		if m.Info().Name == "CHEEZBURGER" {
			t.Fatalf("the second connection downloaded %s without credentials", m.(*filemq.Cheezburger).Filename)
		}
	}
	// ada's session is intact and still hers
	ada.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}})
	ada.expect("ICANHAZ-OK")
	ada.send(&filemq.Nom{Credit: 1 << 20})
	if c := ada.expect("CHEEZBURGER").(*filemq.Cheezburger); c.Filename != "/secret.txt" {
		t.Fatalf("ada got %q", c.Filename)
	}
}

func mustAppend(t *testing.T, m codec.Message) []byte {
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A machine file that binds an action to the wrong message is refused when
// the checker knows the action's contract; loaded anyway, the first such
// message ends that one session, logged with the machine position, and
// the server and its other sessions go on.
func TestWrongMessageActionEndsOneSession(t *testing.T) {
	_, src, err := machines.Source("fmq_server.toml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), `on.NOM     = { do = ["store credit", "next chunk"] }`,
		`on.NOM     = { do = ["store subscription", "next chunk"] }`, 1)
	if bad == string(src) {
		t.Fatal("fmq_server.toml no longer has the NOM line this test edits")
	}
	file := filepath.Join(t.TempDir(), "wrong.toml")
	writeFile(t, file, []byte(bad))
	var logs testutil.LockedBuffer
	srv, err := StartServer(ServerConfig{Machine: file, Publish: []publish.Mount{{Dir: publishOne(t), Alias: "/"}},
		Bind: "tcp://127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		// The checker knows what "store subscription" accepts: refused at load.
		if !strings.Contains(err.Error(), "wrong.toml:") || !strings.Contains(err.Error(), "store subscription") {
			t.Fatalf("refused without naming the position and action: %v", err)
		}
		return
	}
	defer srv.Close()
	victim := dialRaw(t, srv.Endpoint(), "")
	victim.send(filemq.NewOhai())
	victim.expect("OHAI-OK")
	other := dialRaw(t, srv.Endpoint(), "")
	other.send(filemq.NewOhai())
	other.expect("OHAI-OK")
	victim.send(&filemq.Nom{Credit: 1000}) // the action asserts ICANHAZ: panics
	waitUntil(t, func() bool { st := srv.Engine().Stats(); return st.Panics == 1 && st.Instances == 1 },
		func() string { return fmt.Sprintf("stats %+v", srv.Engine().Stats()) })
	other.send(&filemq.Hugz{})
	other.expect("HUGZ-OK")
	other.send(&filemq.Icanhaz{Path: "/", Options: map[string]string{"RESYNC": "1"}})
	other.expect("ICANHAZ-OK")
	log := logs.String()
	for _, want := range []string{`panic in action \"store subscription\"; session ended`, "at=" + file + ":", "event=NOM"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if err := srv.Err(); err != nil {
		t.Fatalf("server failed: %v", err)
	}

}
