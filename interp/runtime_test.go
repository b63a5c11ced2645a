package interp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/interp"
)

// rtMachine exercises the concurrent runtime: a blocking action (one slow
// session must not stall another), a panicking action and guard
// (containment), Later (slices) and Go (off-dispatch work).
const rtMachine = `
[machine]
name     = "rt"
role     = "server"
protocol = "nom"
initial  = "open"

[events.poke]
doc  = "Host: start off-dispatch work."
args = ["n"]

[state.open]
on.OHAI    = { do = ["block", "send OHAI-OK"] }
on.HUGZ    = { do = ["record", "send HUGZ-OK"] }
on.ICANHAZ = [
  { when = "msg.what == '/guard' && peer.Bad()", do = [] },
  { when = "msg.what == '/slices'", do = ["slice"] },
  { do = ["boom"] },
]
on.more    = { do = ["slice"] }
on.poke    = { do = ["work"] }
on.worked  = { do = ["record", "send HUGZ-OK"] }
on.HUGZ-OK = {}
on.error   = { do = ["terminate"] }
on.overflow = { do = ["send WTF reason = 'too much input', code = 429"] }
`

type rtPeer struct {
	id     string
	log    []string
	slices int
	closed *atomic.Int32
}

func (p *rtPeer) Bad() bool { panic("guard blew up") }

func (p *rtPeer) Close() error { p.closed.Add(1); return nil }

type rtEnv struct {
	t       *testing.T
	e       *interp.Engine
	logs    *testutil.LockedBuffer
	closed  atomic.Int32
	release chan struct{}
	blocked chan string

	mu   sync.Mutex
	sent map[string][]string
	cond chan struct{}
}

func rtLib(env *rtEnv) func(string, string) *interp.Library {
	return func(string, string) *interp.Library {
		return &interp.Library{
			PeerType: (*rtPeer)(nil),
			Actions: interp.Actions{
				"block": {Fn: func(ctx *interp.Ctx) error {
					if ctx.PeerID() == "slow" {
						env.blocked <- ctx.PeerID()
						<-env.release // a stuck action: only this session waits
					}
					return nil
				}},
				"record": {Fn: func(ctx *interp.Ctx) error {
					p := ctx.Peer().(*rtPeer)
					p.log = append(p.log, fmt.Sprint(ctx.Event(), ctx.Value()))
					ctx.Notify(ctx.Event(), p)
					return nil
				}},
				"boom": {Fn: func(ctx *interp.Ctx) error {
					_ = ctx.Msg().(*nom.Hugz) // the wrong message: panics
					return nil
				}},
				"slice": {Raises: []string{"more"}, Fn: func(ctx *interp.Ctx) error {
					p := ctx.Peer().(*rtPeer)
					p.slices++
					if err := ctx.Send(&nom.HugzOk{}); err != nil {
						return err
					}
					if p.slices < 5 {
						ctx.Later("more", nil)
					}
					return nil
				}},
				"work": {Raises: []string{"worked"}, Fn: func(ctx *interp.Ctx) error {
					n := ctx.Value().(int)
					ctx.Go("worked", func(context.Context) (any, error) {
						if n < 0 {
							return nil, errors.New("negative")
						}
						return n * 2, nil
					})
					return nil
				}},
			},
		}
	}
}

func newRT(t *testing.T, opts interp.Options) *rtEnv {
	t.Helper()
	env := &rtEnv{t: t, logs: &testutil.LockedBuffer{}, release: make(chan struct{}), blocked: make(chan string, 1),
		sent: map[string][]string{}, cond: make(chan struct{}, 1)}
	m, err := interp.LoadBytes("rt.toml", []byte(rtMachine), interp.LoadOptions{Library: rtLib(env)})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(env.logs, nil))
	opts.NewPeer = func(id string) any { return &rtPeer{id: id, closed: &env.closed} }
	opts.Sender = interp.SenderFunc(func(peer string, body []byte) error {
		msg, err := nom.Protocol.Decode(body, nil)
		if err != nil {
			return err
		}
		env.mu.Lock()
		env.sent[peer] = append(env.sent[peer], msg.Info().Name)
		env.mu.Unlock()
		select {
		case env.cond <- struct{}{}:
		default:
		}
		return nil
	})
	env.e, err = interp.NewServer(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// run starts Run and returns a stop function that waits for it.
func (env *rtEnv) run() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.e.Run(ctx, nil) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				env.t.Errorf("Run: %v", err)
			}
		})
	}
}

func (env *rtEnv) in(peer string, m codec.Message) {
	b, err := m.Append(nil)
	if err != nil {
		env.t.Fatal(err)
	}
	env.e.Deliver(peer, b)
}

// waitSent waits until peer was sent n messages and returns them.
func (env *rtEnv) waitSent(peer string, n int) []string {
	env.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		env.mu.Lock()
		got := append([]string(nil), env.sent[peer]...)
		env.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-env.cond:
		case <-time.After(10 * time.Millisecond): // re-check: cond is shared by every peer
		case <-deadline:
			env.t.Fatalf("peer %q: sent %v, want %d messages", peer, got, n)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunSessionsInParallel(t *testing.T) {
	env := newRT(t, interp.Options{})
	stop := env.run()
	defer stop()
	env.in("slow", nom.NewOhai())
	<-env.blocked // the slow session is stuck inside an action
	for i := 0; i < 20; i++ {
		env.in("fast", nom.NewOhai())
		env.in("fast", &nom.Hugz{})
	}
	got := env.waitSent("fast", 40) // served while the slow one is blocked
	for i, name := range got {
		if want := []string{"OHAI-OK", "HUGZ-OK"}[i%2]; name != want {
			t.Fatalf("fast session: message %d is %s, want %s (order kept per session): %v", i, name, want, got)
		}
	}
	env.in("slow", &nom.Hugz{}) // queued behind the blocked input
	close(env.release)
	eqStrings(t, env.waitSent("slow", 2), "OHAI-OK", "HUGZ-OK")
}

func eqStrings(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRunPanicEndsOneSession(t *testing.T) {
	env := newRT(t, interp.Options{})
	stop := env.run()
	defer stop()
	env.in("good", &nom.Hugz{})
	env.in("bad", &nom.Hugz{})
	env.waitSent("bad", 1)
	env.in("bad", &nom.Icanhaz{What: "/x"}) // the action asserts the wrong message type
	env.in("guard", &nom.Hugz{})
	env.waitSent("guard", 1)
	env.in("guard", &nom.Icanhaz{What: "/guard"}) // the guard panics (expr turns it into an error)
	waitFor(t, "sessions ended", func() bool { return len(env.e.Peers()) == 1 })
	if n := env.e.Stats().Panics; n != 1 {
		t.Errorf("%d panics counted, want 1", n)
	}
	env.in("good", &nom.Hugz{})
	eqStrings(t, env.waitSent("good", 2), "HUGZ-OK", "HUGZ-OK")
	logs := env.logs.String()
	for _, want := range []string{
		`msg="panic in action \"boom\"; session ended"`, "at=rt.toml:18:12 peer=bad state=open event=ICANHAZ",
		`interface conversion: codec.Message is *nom.Icanhaz, not *nom.Hugz`,
		`msg="guard failed"`, "at=rt.toml:16:3 peer=guard event=ICANHAZ", `guard \"msg.what == '/guard' && peer.Bad()\"`, "guard blew up",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if n := env.closed.Load(); n != 2 {
		t.Errorf("%d peer values closed, want 2 (the ended sessions)", n)
	}
	// the ended session's peer starts afresh
	env.in("bad", &nom.Hugz{})
	eqStrings(t, env.waitSent("bad", 2), "HUGZ-OK", "HUGZ-OK")
}

func TestRunLaterAndGo(t *testing.T) {
	env := newRT(t, interp.Options{})
	stop := env.run()
	defer stop()
	env.in("p", &nom.Icanhaz{What: "/slices"})
	env.in("p", &nom.Hugz{}) // between the slices, not after all of them
	got := env.waitSent("p", 6)
	if got[0] != "HUGZ-OK" || got[len(got)-1] != "HUGZ-OK" || strings.Count(strings.Join(got, " "), "HUGZ-OK") != 6 {
		t.Fatalf("sent %v", got)
	}
	if err := env.e.Post("p", "poke", 21); err != nil {
		t.Fatal(err)
	}
	env.waitSent("p", 7)
	if err := env.e.Post("p", "poke", -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed work to end the session", func() bool { return len(env.e.Peers()) == 0 })
}

func TestRunForgetOrdersWithFrames(t *testing.T) {
	env := newRT(t, interp.Options{})
	stop := env.run()
	defer stop()
	env.in("slow", nom.NewOhai())
	<-env.blocked
	env.in("slow", &nom.Hugz{}) // the departed connection's: the old session's
	env.e.Forget("slow")
	env.in("slow", &nom.Hugz{}) // a new connection: a new session
	close(env.release)
	// The old session's output after Forget never reaches the identity (a
	// new connection may hold it): its OHAI-OK is refused, which ends it,
	// and its HUGZ is dropped with it. Only the new session answers.
	waitFor(t, "the old session closed", func() bool { return env.closed.Load() == 1 })
	eqStrings(t, env.waitSent("slow", 1), "HUGZ-OK")
	select {
	case n := <-env.e.Notifications():
		if n.Name != "HUGZ" {
			t.Errorf("notification %v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new session did not handle its HUGZ")
	}
	// (counters are published per batch: wait for the old session's)
	waitFor(t, "the forgotten session's sends counted as refused", func() bool { return env.e.Stats().SendErrors > 0 })
	eqStrings(t, env.e.Peers(), "slow")
	stop()
	if n := len(env.e.Notifications()); n != 0 {
		t.Errorf("%d more notifications: a frame of the departed connection reached a session", n)
	}
	env.mu.Lock()
	eqStrings(t, env.sent["slow"], "HUGZ-OK")
	env.mu.Unlock()
}

func TestRunMailboxBounded(t *testing.T) {
	env := newRT(t, interp.Options{Mailbox: 8})
	stop := env.run()
	defer stop()
	env.in("slow", nom.NewOhai())
	<-env.blocked
	for i := 0; i < 20; i++ {
		env.in("slow", &nom.Hugz{})
	}
	close(env.release)
	waitFor(t, "the flooded session ended", func() bool { return len(env.e.Peers()) == 0 })
	if st := env.e.Stats(); st.Overflows != 1 {
		t.Errorf("overflows %d", st.Overflows)
	}
	// The machine's overflow handler answered before the session ended;
	// the HUGZ still waiting were dropped, not answered.
	env.mu.Lock()
	eqStrings(t, env.sent["slow"], "OHAI-OK", "WTF")
	env.mu.Unlock()
	if !strings.Contains(env.logs.String(), "session ended: mailbox full") {
		t.Errorf("no log of the overflow:\n%s", env.logs.String())
	}
}

func TestRunMaxSessionsAndClose(t *testing.T) {
	var refused []string
	env := newRT(t, interp.Options{MaxSessions: 2, Refuse: func(p string) { refused = append(refused, p) }})
	stop := env.run()
	for _, p := range []string{"a", "b", "c"} {
		env.in(p, &nom.Hugz{})
	}
	env.waitSent("a", 1)
	env.waitSent("b", 1)
	eqStrings(t, refused, "c")
	if st := env.e.Stats(); st.Refused != 1 || st.Instances != 2 {
		t.Errorf("stats %+v", st)
	}
	stop()
	// Run returned: every session's resources are released
	if n := env.closed.Load(); n != 2 {
		t.Errorf("%d peer values closed at Run's end, want 2", n)
	}
	if st := env.e.Stats(); st.Instances != 0 {
		t.Errorf("%d instances left", st.Instances)
	}
}

// clientOrderMachine records every frame and call of a client in the
// order its one instance handles them.
const clientOrderMachine = `
[machine]
name     = "co"
role     = "client"
protocol = "nom"
initial  = "open"

[events.mark]
doc = "Host: a marker between frames."

[state.open]
final      = true
on.HUGZ-OK = { do = ["record"] }
on.mark    = { do = ["record"] }
on."*"  = {}
`

// newOrderClient is a client engine of clientOrderMachine whose "record"
// action calls record (on the engine's goroutine).
func newOrderClient(t *testing.T, record func(*interp.Ctx)) *interp.Engine {
	t.Helper()
	lib := func(string, string) *interp.Library {
		return &interp.Library{Actions: interp.Actions{"record": {Fn: func(ctx *interp.Ctx) error {
			record(ctx)
			return nil
		}}}}
	}
	m, err := interp.LoadBytes("co.toml", []byte(clientOrderMachine), interp.LoadOptions{Library: lib})
	if err != nil {
		t.Fatal(err)
	}
	e, err := interp.NewClient(m, interp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A client's frames (Deliver), calls and departure (Forget) are handled in
// the order they were made from the hosting goroutine, beyond the backlog
// where Deliver waits for Run; Run returns ErrForgotten once what came
// before the departure is handled.
func TestRunClientDeliverOrderedWithCalls(t *testing.T) {
	var mu sync.Mutex
	var got []string
	e := newOrderClient(t, func(ctx *interp.Ctx) {
		mu.Lock()
		got = append(got, ctx.Event())
		mu.Unlock()
	})
	hugz, _ := (&nom.HugzOk{}).Append(nil)
	ran := make(chan struct{})
	var want []string
	for i := 0; i < 300; i++ { // a backlog of 64: Deliver waits for Run on the way
		if i%50 == 49 {
			if err := e.Call("mark", nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, "mark")
		}
		e.Deliver("", hugz)
		want = append(want, "HUGZ-OK")
		if i == 10 {
			go func() {
				defer close(ran)
				if err := e.Run(context.Background(), nil); !errors.Is(err, interp.ErrForgotten) {
					t.Errorf("Run: %v, want ErrForgotten", err)
				}
			}()
		}
	}
	e.Forget("")
	e.Deliver("", hugz) // after the departure: never handled
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Forget")
	}
	e.Deliver("", hugz) // Run returned: dropped, Deliver does not wait
	mu.Lock()
	defer mu.Unlock()
	eqStrings(t, got, want...)
}
