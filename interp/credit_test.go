package interp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/interp"
)

// The client's credit policy is written in fmq_client.toml: the first
// ICANHAZ-OK grants settings.window, and a NOM tops the window up once
// settings.slice of it is used, with the credit and sequence the Go action
// used to compute.
func TestClientCreditPolicyInTOML(t *testing.T) {
	m, err := interp.Load("../machines/fmq_client.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	ib := openTestInbox(t)
	var sent []any
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e, err := interp.NewClient(m, interp.Options{
		Settings: map[string]string{"window": "1000", "slice": "300"},
		NewPeer:  func(string) any { return actions.NewFMQClientPeer(ib, []string{"/"}) },
		Now:      func() time.Time { return now },
		Sender: interp.SenderFunc(func(_ string, b []byte) error {
			msg, err := filemq.Protocol.Decode(append([]byte(nil), b...), nil)
			if err != nil {
				t.Error(err)
			}
			sent = append(sent, msg)
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := func(m interface{ Append([]byte) ([]byte, error) }) {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Input("", b)
	}
	noms := func() []string {
		var out []string
		for _, s := range sent {
			if n, ok := s.(*filemq.Nom); ok {
				out = append(out, interp.FormatMessage("C", n))
			}
		}
		sent = sent[:0]
		return out
	}
	e.Start()
	if err := e.Call("connect", nil); err != nil {
		t.Fatal(err)
	}
	e.Tick(now)
	in(&filemq.OhaiOk{})
	in(&filemq.IcanhazOk{})
	eq(t, "first ICANHAZ-OK", noms(), []string{"C: NOM credit=1000 sequence=0"})
	in(&filemq.IcanhazOk{})
	eq(t, "second ICANHAZ-OK", noms(), []string(nil))
	var seq uint64
	var off uint64
	chunk := func(size int) {
		in(&filemq.Cheezburger{Sequence: seq, Operation: 1, Filename: "/x", Offset: off, Chunk: make([]byte, size)})
		seq++
		off += uint64(size)
	}
	chunk(200)
	eq(t, "200 of 1000 used", noms(), []string(nil))
	chunk(100)
	eq(t, "300 used", noms(), []string{"C: NOM credit=300 sequence=2"})
	chunk(299)
	eq(t, "299 used", noms(), []string(nil))
	chunk(701)
	eq(t, "all used", noms(), []string{"C: NOM credit=1000 sequence=4"})
	e.Call("stop", nil)
	e.Tick(now)
}

// A client reloads like a server: the session running keeps its machine,
// the next one (the host's "connect" in the initial state) runs the new
// one.
func TestClientAdoptsReloadedMachine(t *testing.T) {
	m, err := interp.Load("../machines/fmq_client.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	src := mustRead(t, "../machines/fmq_client.toml")
	m2, err := interp.LoadBytes("new.toml", []byte(strings.Replace(src, `window    = { default = 4000000,`, `window    = { default = 777,`, 1)), loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	ib := openTestInbox(t)
	var credits []uint64
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e, err := interp.NewClient(m, interp.Options{
		NewPeer: func(string) any { return actions.NewFMQClientPeer(ib, []string{"/"}) },
		Now:     func() time.Time { return now },
		Sender: interp.SenderFunc(func(_ string, b []byte) error {
			if msg, err := filemq.Protocol.Decode(append([]byte(nil), b...), nil); err == nil {
				if n, ok := msg.(*filemq.Nom); ok {
					credits = append(credits, n.Credit)
				}
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := func(m interface{ Append([]byte) ([]byte, error) }) {
		b, _ := m.Append(nil)
		e.Input("", b)
	}
	session := func() {
		if err := e.Call("connect", nil); err != nil {
			t.Fatal(err)
		}
		e.Tick(now)
		in(&filemq.OhaiOk{})
		in(&filemq.IcanhazOk{})
	}
	e.Start()
	session()
	if err := e.Reload(m2); err != nil {
		t.Fatal(err)
	}
	in(&filemq.IcanhazOk{}) // the running session: still the old machine
	if err := e.Call("lost", map[string]any{"reason": "test"}); err != nil {
		t.Fatal(err)
	}
	e.Tick(now)
	session()
	eq(t, "credits", credits, []uint64{4000000, 777})
	e.Call("stop", nil)
	e.Tick(now)
}

// openTestInbox opens an inbox in a temporary directory, closed at cleanup.
func openTestInbox(t *testing.T) *inbox.Inbox {
	t.Helper()
	ib, err := inbox.OpenOptions(t.TempDir(), inbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ib.Close() })
	return ib
}
