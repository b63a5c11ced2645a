package interp_test

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

type sent struct {
	peer string
	msg  codec.Message
}

// harness drives an engine synchronously with a fake clock.
type harness struct {
	t     *testing.T
	e     *interp.Engine
	now   time.Time
	sent  []sent
	wire  []string
	proto codec.Protocol
}

func newHarness(t *testing.T, path string, lib func(p, r string) *interp.Library, settings map[string]string) *harness {
	t.Helper()
	m, err := interp.Load(path, interp.LoadOptions{Library: lib})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), proto: m.Proto}
	opts := interp.Options{
		Sender: interp.SenderFunc(func(peer string, body []byte) error {
			msg, err := h.proto.Decode(append([]byte(nil), body...), nil)
			if err != nil {
				t.Errorf("engine sent an undecodable frame % x: %v", body, err)
				return nil
			}
			h.sent = append(h.sent, sent{peer, msg})
			return nil
		}),
		Now:      func() time.Time { return h.now },
		Wire:     func(l string) { h.wire = append(h.wire, l) },
		Settings: settings,
	}
	if m.Role == interp.RoleServer {
		h.e, err = interp.NewServer(m, opts)
	} else {
		h.e, err = interp.NewClient(m, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) in(peer string, m codec.Message) {
	h.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.e.Input(peer, b)
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.e.Tick(h.now)
}

// take returns the names of messages sent since the last take.
func (h *harness) take() []string {
	var out []string
	for _, s := range h.sent {
		out = append(out, s.msg.Info().Name)
	}
	h.sent = h.sent[:0]
	return out
}

func (h *harness) lastSent() codec.Message {
	if len(h.sent) == 0 {
		h.t.Fatal("nothing sent")
	}
	return h.sent[len(h.sent)-1].msg
}

func (h *harness) state(peer string) string {
	s, ok := h.e.PeerState(peer)
	if !ok {
		return "<none>"
	}
	return s
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func ohai(nick string) *nom.Ohai { m := nom.NewOhai(); m.Nickname = nick; return m }

func icanhaz(what string, opts map[string]string, toppings ...string) *nom.Icanhaz {
	return &nom.Icanhaz{What: what, Options: opts, Toppings: toppings}
}

func nomServer(t *testing.T, settings map[string]string) *harness {
	return newHarness(t, "../machines/nom_server.toml", actions.Lookup, settings)
}

func TestNomServerOrder(t *testing.T) {
	h := nomServer(t, nil)
	h.in("p1", ohai("ada"))
	eq(t, "sent", h.take(), []string{"OHAI-OK"})
	eq(t, "state", h.state("p1"), "peering")
	h.in("p1", icanhaz("/cheezburger", map[string]string{"pieces": "2"}, "cheese"))
	var serials []uint32
	for _, s := range h.sent {
		c := s.msg.(*nom.Cheezburger)
		sum := sha1.Sum(c.Body)
		if string(sum[:4]) != string(c.Digest) || s.peer != "p1" {
			t.Errorf("bad piece %+v to %s", c, s.peer)
		}
		serials = append(serials, c.Serial)
	}
	eq(t, "sent", h.take(), []string{"CHEEZBURGER", "CHEEZBURGER"})
	eq(t, "serials", serials, []uint32{0, 1})
	// the default order size is a setting
	h.in("p1", icanhaz("/hotdog", nil))
	eq(t, "sent", h.take(), []string{"CHEEZBURGER", "CHEEZBURGER", "CHEEZBURGER"})
	n := <-h.e.Notifications()
	eq(t, "notify", n.Name+" "+fmt.Sprint(n.Value), "welcome ada")
	n = <-h.e.Notifications()
	eq(t, "notify", n.Name+" "+fmt.Sprint(n.Value), "served ada: /cheezburger x2")
	eq(t, "wire", h.wire[0], `C: OHAI protocol="NOM" version=1 nickname="ada"`)
	if !strings.HasPrefix(h.wire[3], `S: CHEEZBURGER serial=0 digest=<4 bytes> body=<`) {
		t.Errorf("wire line %q", h.wire[3])
	}
}

func TestNomServerRefusals(t *testing.T) {
	h := nomServer(t, nil)
	// first alternative's guard fails: the second one refuses and terminates
	h.in("p1", ohai(""))
	eq(t, "sent", h.take(), []string{"WTF"})
	eq(t, "state", h.state("p1"), "<none>")

	// an unexpected message goes to "*"
	h.in("p2", ohai("bob"))
	h.in("p2", ohai("bob"))
	w := h.lastSent().(*nom.Wtf)
	eq(t, "wtf", fmt.Sprint(w.Code, " ", w.Reason), "409 OHAI was not expected in state peering")
	eq(t, "state", h.state("p2"), "<none>")

	// a message of the wrong direction is unexpected too
	h.take()
	h.in("p3", ohai("cy"))
	h.in("p3", &nom.Cheezburger{Digest: make([]byte, 4)})
	eq(t, "sent", h.take(), []string{"OHAI-OK", "WTF"})
	eq(t, "state", h.state("p3"), "<none>")

	// a malformed frame is event "malformed", handled by "*"
	h.in("p4", ohai("di"))
	h.take()
	h.e.Input("p4", []byte{0xAA, 0xA0, 0x04, 0, 0})
	w = h.lastSent().(*nom.Wtf)
	if w.Code != 400 || !strings.Contains(w.Reason, "truncated") {
		t.Errorf("malformed: WTF %d %q", w.Code, w.Reason)
	}
	// frames without the signature are dropped silently and counted
	h.take()
	h.e.Input("p5", []byte{0xAA, 0xA3, 0x01})
	h.e.Input("p5", nil)
	eq(t, "sent", h.take(), []string(nil))
	eq(t, "state", h.state("p5"), "<none>")
	st := h.e.Stats()
	eq(t, "bad signature", st.BadSignature, 2)
	eq(t, "malformed", st.Malformed, 1)
}

func TestNomServerExceptions(t *testing.T) {
	h := nomServer(t, nil)
	h.in("p", ohai("ada"))
	h.take()
	// an action's *Exception raises its event; the state does not change
	h.in("p", icanhaz("/x", map[string]string{"pieces": "lots"}))
	w := h.lastSent().(*nom.Wtf)
	eq(t, "wtf", fmt.Sprint(w.Code, " ", w.Reason), `422 bad order: pieces="lots": want 1..1000`)
	eq(t, "state", h.state("p"), "peering")
	// a guard over a slice length and a setting (fast evaluator)
	h.in("p", icanhaz("/x", nil, "a", "b", "c", "d", "e", "f", "g", "h", "i"))
	eq(t, "sent", h.take(), []string{"WTF", "WTF"})
	h.in("p", icanhaz("nopath", nil))
	eq(t, "sent", h.take(), []string{"WTF"})
	eq(t, "state", h.state("p"), "peering")
}

func TestNomServerTimers(t *testing.T) {
	h := nomServer(t, map[string]string{"heartbeat": "4s", "expiry": "10s"})
	h.in("p", ohai("ada"))
	h.take()
	h.advance(3 * time.Second)
	eq(t, "sent", h.take(), []string(nil))
	h.advance(1 * time.Second)
	eq(t, "sent", h.take(), []string{"HUGZ"})
	h.in("p", &nom.HugzOk{}) // resets expiry: due at 14s now
	h.advance(5 * time.Second)
	eq(t, "sent", h.take(), []string{"HUGZ"})
	eq(t, "state", h.state("p"), "peering")
	h.advance(4 * time.Second) // t=13s
	eq(t, "state", h.state("p"), "peering")
	h.advance(1 * time.Second) // t=14s: expired
	eq(t, "state", h.state("p"), "<none>")
	if d, ok := h.e.NextDeadline(); ok {
		t.Errorf("timer left after the only instance ended: %v", d)
	}
}

func TestNomServerStepBound(t *testing.T) {
	// Raise chains of thousands of steps are fine...
	h := nomServer(t, map[string]string{"max_pieces": "5000"})
	h.in("p", ohai("ada"))
	h.take()
	h.in("p", icanhaz("/x", map[string]string{"pieces": "3000"}))
	eq(t, "pieces", len(h.take()), 3000)
	eq(t, "state", h.state("p"), "peering")
	// ...and a bound (a setting) stops a runaway one: the instance ends.
	h = nomServer(t, map[string]string{"max_steps": "50"})
	h.in("p", ohai("ada"))
	h.in("p", icanhaz("/x", map[string]string{"pieces": "100"}))
	eq(t, "state", h.state("p"), "<none>")
	eq(t, "loops", h.e.Stats().Loops, 1)
}

func TestBadSettings(t *testing.T) {
	m, err := interp.Load("../machines/nom_server.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = interp.NewServer(m, interp.Options{Settings: map[string]string{"expiry": "soon", "nope": "1", "pieces": "x"}})
	eq(t, "err", err, "setting expiry: \"soon\" is not a duration\nmachine nom_server has no setting \"nope\"\nsetting pieces: \"x\" is not an integer")
	if _, err := interp.NewClient(m, interp.Options{}); !errors.Is(err, interp.ErrWrongRole) {
		t.Errorf("NewClient on a server machine: %v", err)
	}
}

func sha1Sum(b []byte) [20]byte { return sha1.Sum(b) }

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
