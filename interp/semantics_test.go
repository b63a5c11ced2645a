package interp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

type semPeer struct{ Log []string }

func semLib(string, string) *interp.Library {
	note := func(tag string) interp.ActionSpec {
		return interp.ActionSpec{Fn: func(ctx *interp.Ctx) error {
			p := ctx.Peer().(*semPeer)
			p.Log = append(p.Log, tag+":"+ctx.Event()+"@"+ctx.State())
			return nil
		}}
	}
	return &interp.Library{
		PeerType: (*semPeer)(nil),
		NewPeer:  func(string) any { return &semPeer{} },
		Actions: interp.Actions{
			"note":                 note("note"),
			"note entry":           note("entry"),
			"note exit":            note("exit"),
			"note after emit":      note("after-emit"),
			"note unreachable":     note("UNREACHABLE"),
			"note after terminate": note("after-terminate"),
			"note vm guard":        note("vm-guard"),
			"emit tick":            {Fn: func(ctx *interp.Ctx) error { ctx.Raise("tick"); return nil }, Raises: []string{"tick"}},
			"boom":                 {Fn: func(*interp.Ctx) error { return errors.New("boom") }},
			"oops": {Fn: func(*interp.Ctx) error { return &interp.Exception{Event: "oops", Err: errors.New("x")} },
				Raises: []string{"oops"}},
		},
	}
}

func semServer(t *testing.T) (*harness, *semPeer) {
	h := newHarness(t, "testdata/sem_server.toml", semLib, nil)
	var peer *semPeer
	h.e = nil
	m, err := interp.Load("testdata/sem_server.toml", interp.LoadOptions{Library: semLib})
	if err != nil {
		t.Fatal(err)
	}
	h.e, err = interp.NewServer(m, interp.Options{
		Now: func() time.Time { return h.now },
		NewPeer: func(string) any {
			peer = &semPeer{}
			return peer
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.in("p", ohai("x")) // creates the instance: entry of start, then OHAI
	return h, peer
}

func (p *semPeer) take() string {
	s := strings.Join(p.Log, " ")
	p.Log = p.Log[:0]
	return s
}

func TestSemanticsEntryExit(t *testing.T) {
	h, p := semServer(t)
	// the initial state's entry runs when the instance is created
	eq(t, "log", p.take(), "entry:@start note:OHAI@start exit:OHAI@start entry:OHAI@open")
	eq(t, "state", h.state("p"), "open")
	// after: one-shot timer armed on entry
	h.advance(5 * time.Second)
	eq(t, "log", p.take(), "note:alarm@open entry:alarm@start")
	// no next: stay, no exit/entry; explicit self-transition: exit and entry
	if err := h.e.Post("p", "poke", 1); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Broadcast("changed", nil); err != nil {
		t.Fatal(err)
	}
	h.e.Tick(h.now)
	eq(t, "log", p.take(), "note:poke@start note:changed@start exit:changed@start entry:changed@start")
	// raised events run after the action list completes, never re-entrantly
	h.in("p", &nom.Hugz{})
	eq(t, "log", p.take(), "note:HUGZ@start after-emit:HUGZ@start note:tick@start")
	// undeclared host events are refused at once
	if err := h.e.Post("p", "tick", nil); !errors.Is(err, interp.ErrUnknownEvent) {
		t.Errorf("post of an internal event: %v", err)
	}
}

func TestSemanticsFailures(t *testing.T) {
	h, p := semServer(t)
	p.take()
	// a plain error: rest of the list skipped, state unchanged, "error" raised
	h.in("p", &nom.Hugz{})
	eq(t, "log", p.take(), "note:HUGZ@open note:error@open")
	eq(t, "state", h.state("p"), "open")
	// an *Exception raises its own event
	h.in("p", &nom.HugzOk{})
	eq(t, "log", p.take(), "note:oops@open")
	eq(t, "state", h.state("p"), "open")
	// guards: first match wins; one on a map runs on expr's VM
	h.in("p", icanhaz("/a", map[string]string{"x": "y"}))
	h.in("p", icanhaz("/a", nil))
	eq(t, "log", p.take(), "vm-guard:ICANHAZ@open note:ICANHAZ@open")
	// "*": unexpected and malformed messages
	h.in("p", ohai("again"))
	h.e.Input("p", []byte{0xAA, 0xA0, 0x77})
	eq(t, "log", p.take(), "note:OHAI@open note:malformed@open")
	// terminate: the list completes, then the instance ends
	h.in("p", icanhaz("/bye", nil))
	eq(t, "log", p.take(), "note:ICANHAZ@open after-terminate:ICANHAZ@open")
	eq(t, "state", h.state("p"), "<none>")
}

func TestSemanticsLoopAndForget(t *testing.T) {
	h, p := semServer(t)
	p.take()
	if err := h.e.Post("p", "poke", nil); err != nil {
		t.Fatal(err)
	}
	h.e.Tick(h.now) // raise loop -> bounded by max_steps, instance stopped
	eq(t, "state", h.state("p"), "<none>")
	eq(t, "loops", h.e.Stats().Loops, 1)
	h.in("q", ohai("x"))
	eq(t, "peers", h.e.Peers(), []string{"q"})
	h.e.Forget("q")
	h.e.Tick(h.now)
	eq(t, "peers", h.e.Peers(), []string{})
}

func TestReloadKeepsRunningPeers(t *testing.T) {
	h := nomServer(t, nil)
	h.in("old", ohai("ada"))
	h.take()
	m2, err := interp.LoadBytes("v2.toml", []byte(strings.Replace(mustRead(t, "../machines/nom_server.toml"),
		`when = "msg.nickname != ''"`, `when = "msg.nickname == 'ada'"`, 1)), loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.e.Reload(m2); err != nil {
		t.Fatal(err)
	}
	h.in("new", ohai("bob")) // new peers get the new machine
	eq(t, "sent", h.take(), []string{"WTF"})
	h.in("old", &nom.Hugz{}) // old peers finish on theirs
	eq(t, "sent", h.take(), []string{"HUGZ-OK"})
	eq(t, "state", h.state("old"), "peering")
	client, _ := interp.Load("../machines/nom_client.toml", loadOpts)
	if err := h.e.Reload(client); err == nil {
		t.Error("reload with a client machine accepted")
	}
}

func nomClient(t *testing.T, settings map[string]string) *harness {
	return newHarness(t, "../machines/nom_client.toml", actions.Lookup, settings)
}

func serve(c *nom.Cheezburger) *nom.Cheezburger {
	sum := sha1Sum(c.Body)
	c.Digest = sum[:4]
	return c
}

func TestNomClient(t *testing.T) {
	h := nomClient(t, map[string]string{"pieces": "2"})
	h.e.Tick(h.now) // start: the initial state's entry sends OHAI
	eq(t, "sent", h.take(), []string{"OHAI"})
	h.in("", &nom.OhaiOk{})
	ic := h.lastSent().(*nom.Icanhaz)
	eq(t, "icanhaz", ic.What+" "+ic.Options["pieces"], "/cheezburger 2")
	h.take()
	h.advance(2 * time.Second) // heartbeat
	eq(t, "sent", h.take(), []string{"HUGZ"})
	h.in("", &nom.HugzOk{})
	h.in("", serve(&nom.Cheezburger{Serial: 0, Body: []byte("a")}))
	select {
	case <-h.e.Done():
		t.Fatal("done too early")
	default:
	}
	h.in("", serve(&nom.Cheezburger{Serial: 1, Body: []byte("b")}))
	<-h.e.Done() // full, leave_when_full: terminated
	var names []string
	for len(h.e.Notifications()) > 0 {
		n := <-h.e.Notifications()
		names = append(names, n.Name)
	}
	eq(t, "notes", names, []string{"piece", "piece", "full"})
}

func TestNomClientCallsAndBadFood(t *testing.T) {
	h := nomClient(t, map[string]string{"pieces": "1", "leave_when_full": "false"})
	h.e.Tick(h.now)
	h.in("", &nom.OhaiOk{})
	h.in("", serve(&nom.Cheezburger{Body: []byte("a")}))
	h.take()
	if err := h.e.Call("order", map[string]any{}); err == nil || !strings.Contains(err.Error(), `missing argument "what"`) {
		t.Errorf("call without args: %v", err)
	}
	if err := h.e.Call("eat", nil); !errors.Is(err, interp.ErrUnknownEvent) {
		t.Errorf("call of an unknown event: %v", err)
	}
	if err := h.e.Call("order", map[string]any{"what": "/hotdog"}); err != nil {
		t.Fatal(err)
	}
	h.e.Tick(h.now)
	eq(t, "what", h.lastSent().(*nom.Icanhaz).What, "/hotdog")
	h.in("", &nom.Cheezburger{Body: []byte("a"), Digest: []byte{1, 2, 3, 4}})
	<-h.e.Done()
	var last interp.Notification
	for len(h.e.Notifications()) > 0 {
		last = <-h.e.Notifications()
	}
	if last.Name != "bad-food" || !strings.Contains(last.Value.(string), "digest 01020304") {
		t.Errorf("last notification %+v", last)
	}
	// the expiry timer of a silent server
	h = nomClient(t, nil)
	h.e.Tick(h.now)
	for i := 0; i < 5; i++ {
		h.advance(2 * time.Second)
	}
	<-h.e.Done()
}
