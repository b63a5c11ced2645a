package interp_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// quotaMachine is the nom server's policy written in TOML alone: the
// greeting remembers the nickname, every order is counted in a variable,
// the order past settings.max_orders is refused with a WTF whose reason
// and code are expressions, and each served order is logged.
const quotaMachine = `
[machine]
name     = "quota"
role     = "server"
protocol = "nom"
initial  = "start"

[settings]
max_orders = { default = 2, min = 0, doc = "Orders served per client." }

[vars]
orders = 0
nick   = { default = "", doc = "The client's nickname." }

[state.start]
on.OHAI = [
  { when = "msg.nickname != ''", do = ["set nick = msg.nickname", "send OHAI-OK"], next = "open" },
  { do = ["send WTF reason = 'say who you are', code = 401", "terminate"] },
]

[state.open]
on.ICANHAZ = [
  { when = "vars.orders >= settings.max_orders", do = ["send WTF reason = 'quota of ' + string(settings.max_orders) + ' orders reached, ' + vars.nick, code = 429"] },
  { do = ["set orders = vars.orders + 1", "send CHEEZBURGER serial = vars.orders, digest = 'nom!', body = msg.what", "log info 'order served', what = msg.what, orders = vars.orders"] },
]
on.HUGZ = { do = ["send HUGZ-OK"] }
on."*"  = { do = ["terminate"] }
`

func loadQuota(t *testing.T, src string, settings map[string]string) (*harness, *bytes.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quota.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, path, actions.Lookup, settings)
	var logs bytes.Buffer
	m := h.e.Machine()
	e, err := interp.NewServer(m, interp.Options{
		Sender: interp.SenderFunc(func(peer string, body []byte) error {
			msg, err := h.proto.Decode(append([]byte(nil), body...), nil)
			if err != nil {
				t.Errorf("undecodable frame: %v", err)
				return nil
			}
			h.sent = append(h.sent, sent{peer, msg})
			return nil
		}),
		Now:      func() time.Time { return h.now },
		Settings: settings,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	return h, &logs
}

func TestVerbsQuotaInTOML(t *testing.T) {
	h, logs := loadQuota(t, quotaMachine, nil)
	h.in("a", ohai("ada"))
	eq(t, "greeting", h.take(), []string{"OHAI-OK"})
	for i := 1; i <= 2; i++ {
		h.in("a", icanhaz("/soup", nil))
		eq(t, "served", h.take(), []string{"CHEEZBURGER"})
		if t.Failed() {
			t.Fatal(logs.String())
		}
	}
	h.in("a", icanhaz("/soup", nil))
	w, ok := h.lastSent().(*nom.Wtf)
	if !ok {
		t.Fatalf("third order: sent %v", h.take())
	}
	eq(t, "reason", w.Reason, "quota of 2 orders reached, ada")
	eq(t, "code", w.Code, 429)
	h.take()
	// Exact: every further order is refused too; another client has its own count.
	h.in("a", icanhaz("/soup", nil))
	eq(t, "fourth", h.take(), []string{"WTF"})
	h.in("b", ohai("bob"))
	h.in("b", icanhaz("/tea", nil))
	c, ok := h.lastSent().(*nom.Cheezburger)
	if !ok || c.Serial != 1 {
		t.Fatalf("bob's first order: %v", h.lastSent())
	}
	h.take()
	h.in("c", ohai(""))
	w, ok = h.lastSent().(*nom.Wtf)
	if !ok || w.Reason != "say who you are" || w.Code != 401 {
		t.Fatalf("nameless: %v", h.lastSent())
	}
	for _, want := range []string{`msg="order served"`, `what=/soup`, `orders=2`, `what=/tea`, `state=open event=ICANHAZ`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	// The quota is a setting: --set changes it, the range is enforced.
	h, _ = loadQuota(t, quotaMachine, map[string]string{"max_orders": "0"})
	h.in("a", ohai("ada"))
	h.in("a", icanhaz("/soup", nil))
	eq(t, "max_orders=0", h.take(), []string{"OHAI-OK", "WTF"})
}

func TestVerbsRefusedAtLoad(t *testing.T) {
	for _, tc := range []struct{ old, repl, want string }{
		{`"set nick = msg.nickname"`, `"set nick = 3"`, `set nick: it is a string, the expression "3" gives a number`},
		{`"set orders = vars.orders + 1"`, `"set orderz = 1"`, `set orderz: no variable "orderz" in [vars]`},
		{`"send CHEEZBURGER serial = vars.orders, digest = 'nom!', body = msg.what"`, `"send CHEEZBURGER cereal = 1"`,
			`send CHEEZBURGER: no field "cereal" (fields: serial, digest, body)`},
		{`"log info 'order served', what = msg.what, orders = vars.orders"`, `"log info 'x', what = msg.nope"`,
			`log: what: type nom.Icanhaz has no field nope`},
		{`"send OHAI-OK"`, `"send OHAI-OK x"`, `send OHAI-OK: want FIELD = EXPRESSION`},
		{`"log info 'order served', what = msg.what, orders = vars.orders"`, `"log loud 'x'"`, `unknown action "log loud 'x'"`},
	} {
		src := strings.Replace(quotaMachine, tc.old, tc.repl, 1)
		if src == quotaMachine {
			t.Fatalf("quotaMachine lacks %s", tc.old)
		}
		_, err := interp.LoadBytes("q.toml", []byte(src), loadOpts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "q.toml:") {
			t.Errorf("%s: got %v, want q.toml:LINE:COL: ...%q", tc.repl, err, tc.want)
		}
	}
}

// verbsAllocMachine: set and send with fields on the hot path.
const verbsAllocMachine = `
[machine]
name     = "verbs"
role     = "server"
protocol = "nom"
initial  = "start"
expiry   = "30s"

[settings]
limit = 1000000000

[vars]
hugs = 0
last = ""

[state.start]
on.OHAI = { do = ["set last = msg.nickname", "send OHAI-OK"], next = "open" }

[state.open]
on.HUGZ = [
  { when = "vars.hugs > settings.limit", do = ["terminate"] },
  { do = ["set hugs = vars.hugs + 1", "send WTF reason = vars.last, code = 7", "send HUGZ-OK"] },
]
on."*" = { do = ["terminate"] }
`

func TestVerbsZeroAllocs(t *testing.T) {
	m, err := interp.LoadBytes("verbs.toml", []byte(verbsAllocMachine), loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	frames := 0
	e, err := interp.NewServer(m, interp.Options{Sender: interp.SenderFunc(func(_ string, b []byte) error {
		frames++
		last = append(last[:0], b...)
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	e.Input("p", frame(t, func() *nom.Ohai { o := nom.NewOhai(); o.Nickname = "ada"; return o }()))
	hugz := frame(t, &nom.Hugz{})
	e.Input("p", hugz)
	for i := 0; i < 16; i++ {
		e.Input("p", hugz)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		e.Input("p", hugz)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per event with set and send fields, want 0", allocs)
	}
	if frames != 1+2*(17+1001) { // OHAI-OK, then WTF and HUGZ-OK per HUGZ
		t.Errorf("%d frames", frames)
	}
}

// lentPeer holds a chunk and headers a machine sends as they are.
type lentPeer struct {
	Body   []byte
	Digest []byte
	Tags   map[string]string
	N      int64
}

// lentMachine sends a slice field of its peer (as fmq_server.toml sends
// peer.Next.chunk): the slice is lent to the message, never copied.
const lentMachine = `
[machine]
name     = "lent"
role     = "server"
protocol = "nom"
initial  = "start"
expiry   = "30s"

[state.start]
on.OHAI = { do = ["send OHAI-OK"], next = "open" }

[state.open]
on.ICANHAZ = { do = ["send CHEEZBURGER serial = peer.N, digest = peer.Digest, body = peer.Body"] }
on.HUGZ = { do = ["send HUGZ-OK"] }
on."*" = { do = ["terminate"] }
`

func TestVerbsSendLentSliceZeroAllocs(t *testing.T) {
	body := bytes.Repeat([]byte("chunk!"), 10000)
	lib := func(p, r string) *interp.Library {
		if p != "nom" || r != interp.RoleServer {
			return nil
		}
		return &interp.Library{Actions: interp.Actions{}, PeerType: (*lentPeer)(nil),
			NewPeer: func(string) any { return &lentPeer{Body: body, Digest: []byte("nom!"), N: 42} }}
	}
	m, err := interp.LoadBytes("lent.toml", []byte(lentMachine), interp.LoadOptions{Library: lib})
	if err != nil {
		t.Fatal(err)
	}
	var got *nom.Cheezburger
	e, err := interp.NewServer(m, interp.Options{Sender: interp.SenderFunc(func(_ string, b []byte) error {
		if msg, err := nom.Decode(append([]byte(nil), b...), nil); err == nil {
			if c, ok := msg.(*nom.Cheezburger); ok {
				got = c
			}
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	e.Input("p", frame(t, nom.NewOhai()))
	order := frame(t, &nom.Icanhaz{What: "soup"})
	e.Input("p", order)
	if got == nil || got.Serial != 42 || !bytes.Equal(got.Body, body) {
		st, _ := e.PeerState("p")
		t.Fatalf("sent %+v (state %q, %+v)", got, st, e.Stats())
	}
	got = nil
	e2, err := interp.NewServer(m, interp.Options{Sender: interp.SenderFunc(func(string, []byte) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	e2.Input("p", frame(t, nom.NewOhai()))
	for i := 0; i < 16; i++ {
		e2.Input("p", order)
	}
	// A copy of the 60 KB body into the message would allocate.
	if allocs := testing.AllocsPerRun(200, func() { e2.Input("p", order) }); allocs != 0 {
		t.Errorf("%v allocations per event sending a peer's slice, want 0", allocs)
	}
}

// A slice or map field goes only into a field of its own type.
func TestVerbsLentSliceTypeChecked(t *testing.T) {
	lib := func(p, r string) *interp.Library {
		return &interp.Library{Actions: interp.Actions{}, PeerType: (*lentPeer)(nil),
			NewPeer: func(string) any { return &lentPeer{} }}
	}
	src := strings.Replace(lentMachine, "body = peer.Body", "body = peer.Tags", 1)
	_, err := interp.LoadBytes("lent.toml", []byte(src), interp.LoadOptions{Library: lib})
	if err == nil || !strings.Contains(err.Error(), `send CHEEZBURGER: field body: it is a []uint8, the expression "peer.Tags" gives a map[string]string`) {
		t.Errorf("got %v", err)
	}
}
