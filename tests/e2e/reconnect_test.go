package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// chunkGate holds a client's engine on a received CHEEZBURGER when hold
// says so, until the test releases it: the transfer cannot run ahead of
// the test, however fast the machine is. Install Wire as the client's
// ClientConfig.Wire, and register Close (after StartClient) so that a
// failing test never leaves the engine held.
type chunkGate struct {
	hold func(n int64) bool // n: CHEEZBURGERs received so far (this one included)
	// holdLine, when set, decides instead of hold, from the wire line.
	holdLine func(line string) bool
	n        atomic.Int64
	held     chan int64
	release  chan struct{}
	closed   chan struct{}
	once     atomic.Bool
}

func newChunkGate(hold func(n int64) bool) *chunkGate {
	return &chunkGate{hold: hold, held: make(chan int64), release: make(chan struct{}), closed: make(chan struct{})}
}

// Wire is the client's wire hook (called on the engine goroutine).
func (g *chunkGate) Wire(line string) {
	if !strings.HasPrefix(line, "S: CHEEZBURGER ") {
		return
	}
	n := g.n.Add(1)
	if g.holdLine != nil {
		if !g.holdLine(line) {
			return
		}
	} else if !g.hold(n) {
		return
	}
	select {
	case g.held <- n:
	case <-g.closed:
		return
	}
	select {
	case <-g.release:
	case <-g.closed:
	}
}

// Close releases the engine for good.
func (g *chunkGate) Close() {
	if g.once.CompareAndSwap(false, true) {
		close(g.closed)
	}
}

// TestReconnectAfterCuts: the server cuts a syncing client's connection
// again and again; every time it reconnects, opens a new session and
// resumes, and the sync completes with no error. The client is held on a
// chunk at each cut (every 40th chunk received), so all eight cuts land
// in the middle of the transfer on any machine.
func TestReconnectAfterCuts(t *testing.T) {
	const (
		files, fileSize = 40, 256 << 10
		chunk           = 16384
		every           = 40 // chunks between cuts: 8 cuts within the first half of the tree
		wantCuts        = 8
	)
	pub, in := t.TempDir(), t.TempDir()
	for i := range files {
		writeFile(t, pub, fmt.Sprintf("d%d/f%02d.bin", i%4, i), content(uint64(100+i), fileSize))
	}
	want := treeSums(t, pub)
	srv := startServer(t, pub, "", withSettings("chunk_size", fmt.Sprint(chunk)))
	var cutsDone atomic.Int64
	gate := newChunkGate(func(n int64) bool { return cutsDone.Load() < wantCuts && n%every == 0 })
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in,
		Settings: map[string]string{"window": "65536", "slice": fmt.Sprint(chunk)}, Wire: gate.Wire})
	t.Cleanup(gate.Close)
	deadline := time.After(60 * time.Second)
	for cutsDone.Load() < wantCuts {
		select {
		case <-c.Done():
			t.Fatalf("client ended after %d cuts: %v", cutsDone.Load(), c.Err())
		case <-c.Synced():
			t.Fatalf("synced with %d of %d cuts made: the gate did not hold the transfer", cutsDone.Load(), wantCuts)
		case <-deadline:
			t.Fatalf("%d of %d cuts after 60s (%d chunks received)", cutsDone.Load(), wantCuts, gate.n.Load())
		case n := <-gate.held:
			// The client holds chunk n of a live session: its connection
			// is open on the server side.
			for _, p := range srv.Engine().Peers() {
				if srv.Transport().Disconnect(p) {
					cutsDone.Add(1)
					t.Logf("cut %d at chunk %d", cutsDone.Load(), n)
				}
			}
			gate.release <- struct{}{}
		}
	}
	waitTree(t, 60*time.Second, "inbox after cuts", in, func() map[string]string { return want })
	if err := c.Err(); err != nil {
		t.Fatalf("client error: %v", err)
	}
	st := c.Stats()
	t.Logf("sessions %d, bytes %d (tree %d), resumed %d", c.Sessions(), st.Bytes.Load(), files*fileSize, st.Resumed.Load())
	if c.Sessions() < wantCuts+1 {
		t.Errorf("sessions = %d after %d cuts, want at least %d", c.Sessions(), wantCuts, wantCuts+1)
	}
}
