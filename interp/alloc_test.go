package interp_test

import (
	"testing"
	"time"

	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// allocMachine exercises the dispatch paths beyond the benchmark's: a
// raised event (the queue), an external self-transition (exit, entry, an
// `after` timer re-armed), a heartbeat delivered by Tick that no state
// handles, and the expiry pushed back by every frame.
const allocMachine = `
[machine]
name      = "alloc"
role      = "server"
protocol  = "nom"
initial   = "start"
expiry    = "30s"
heartbeat = "3s"

[state.start]
on.OHAI = { do = ["count", "send OHAI-OK"], next = "open" }

[state.open]
after   = { poke = "1h" }
entry   = ["count"]
exit    = ["bump"]
on.HUGZ = [
  { when = "peer.N < 0", do = ["terminate"] },
  { when = "peer.N >= 0 && state == 'open'", do = ["count", "raise ping"] },
]
on.ping = { do = ["bump", "send HUGZ-OK"], next = "open" }
on.poke = { do = ["count"] }
on."*"  = { do = ["terminate"] }
`

// TestDispatchZeroAllocs asserts the hot path: once an instance exists,
// dispatching a frame (decode, guard, actions, encode and send, timers)
// allocates nothing.
func TestDispatchZeroAllocs(t *testing.T) {
	hugz := frame(t, &nom.Hugz{})
	ohai := frame(t, nom.NewOhai())
	for _, tc := range []struct {
		name string
		load func() (*interp.Machine, error)
		tick bool
	}{
		{"bench_server", func() (*interp.Machine, error) {
			return interp.Load("testdata/bench_server.toml", interp.LoadOptions{Library: benchLib})
		}, false},
		{"raise+transition+timers", func() (*interp.Machine, error) {
			return interp.LoadBytes("alloc.toml", []byte(allocMachine), interp.LoadOptions{Library: benchLib})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.load()
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			var frames int
			e, err := interp.NewServer(m, interp.Options{
				Now:    func() time.Time { return now },
				Sender: interp.SenderFunc(func(string, []byte) error { frames++; return nil }),
			})
			if err != nil {
				t.Fatal(err)
			}
			e.Input("peer", ohai)
			if s, _ := e.PeerState("peer"); s != "open" {
				t.Fatalf("state %q after OHAI", s)
			}
			for i := 0; i < 16; i++ { // warm up scratch buffers
				e.Input("peer", hugz)
			}
			before, sentBefore := e.Stats(), frames
			const runs = 1000
			allocs := testing.AllocsPerRun(runs, func() {
				now = now.Add(time.Second)
				if tc.tick {
					e.Tick(now)
				}
				e.Input("peer", hugz)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per dispatched event, want 0", allocs)
			}
			// The work was done: one HUGZ-OK per frame, the instance alive.
			after := e.Stats()
			if got := frames - sentBefore; got != runs+1 { // AllocsPerRun runs once more to warm up
				t.Errorf("sent %d frames for %d inputs", got, runs+1)
			}
			if got := after.Sent - before.Sent; got != runs+1 {
				t.Errorf("Stats.Sent moved by %d for %d inputs", got, runs+1)
			}
			if s, _ := e.PeerState("peer"); s != "open" {
				t.Errorf("state %q at the end", s)
			}
			if tc.tick && after.Events-before.Events < 2*(runs+1) {
				t.Errorf("Stats.Events moved by %d: the raised event was not dispatched", after.Events-before.Events)
			}
		})
	}
}
