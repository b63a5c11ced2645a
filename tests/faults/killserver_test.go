package faults

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

// TestKillServerMidSync runs fmqrun serve as a process on a fixed port and
// kills it with SIGKILL three times at seeded points of a sync by three
// fmqrun sync --once clients, restarting it on the same port after a seeded
// pause. Every client must reconnect and finish with the whole tree, and
// (thanks to resume) receive every byte exactly once.
func TestKillServerMidSync(t *testing.T) {
	const (
		seed    = 0x5e7e
		clients = 3
		kills   = 3
	)
	pub := t.TempDir()
	tr := makeTree(t, pub, seed, 16, 200_000, 1_200_000)
	total := tr.total()
	ep := fmt.Sprintf("tcp://127.0.0.1:%d", testutil.FreePort(t))
	serverArgs := []string{"--set", "chunk_size=8192", "--settle", "50ms"}
	srv := startServeProc(t, pub, ep, serverArgs...)

	rng := rand.New(rand.NewPCG(seed, 2))
	work := t.TempDir()
	inboxes := make([]string, clients)
	procs := make([]*proc, clients)
	for i := range procs {
		inboxes[i] = filepath.Join(work, fmt.Sprintf("inbox%d", i))
		procs[i] = start(t, syncArgs(ep, inboxes[i], "--set", "window=16384", "--set", "slice=8192")...)
	}
	progress := func() int64 { // of the slowest client still running
		low := int64(-1)
		for i, p := range procs {
			if p.Exited() {
				continue
			}
			st, err := scanInbox(inboxes[i])
			if err != nil {
				continue
			}
			if got := st.completeSum + st.partialSum; low < 0 || got < low {
				low = got
			}
		}
		return low
	}
	t0 := time.Now()
	for k := range kills {
		target := int64((float64(k) + 0.2 + 0.6*rng.Float64()) / kills * float64(total))
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := progress()
			if got < 0 {
				t.Fatalf("kill %d: every client finished before the server was killed at %d bytes", k+1, target)
			}
			if got >= target {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no progress to %d bytes within 60s (at %d)", k+1, target, got)
			}
			time.Sleep(500 * time.Microsecond)
		}
		srv.Kill()
		pause := time.Duration(50+rng.IntN(350)) * time.Millisecond
		for i := range procs {
			checkInbox(t, inboxes[i], tr)
		}
		t.Logf("server killed at %s (slowest client); restarting after %v", fmtBytes(target), pause)
		time.Sleep(pause)
		srv = startServeProc(t, pub, ep, serverArgs...)
	}
	for i, p := range procs {
		s, err := p.wait(t, 90*time.Second)
		if err != nil {
			t.Errorf("client %d: %v\n%s", i, err, tail(p.Stderr.String()))
			continue
		}
		sameTree(t, inboxes[i], tr)
		if s.Bytes != total || s.Problems != 0 {
			t.Errorf("client %d: received %d bytes (problems %d) for a tree of %d: a byte was sent twice or lost; stderr:\n%s", i, s.Bytes, s.Problems, total, tail(p.Stderr.String()))
		}
		if s.Sessions < 2 {
			t.Errorf("client %d: %d session(s); it should have reconnected after a kill", i, s.Sessions)
		}
		t.Logf("client %d: %d sessions, %s received, %s resumed, %d ms", i, s.Sessions, fmtBytes(s.Bytes), fmtBytes(s.ResumedBytes), s.ElapsedMS)
	}
	t.Logf("%d server kills, %d clients, %s each, in %v", kills, clients, fmtBytes(total), time.Since(t0).Round(time.Millisecond))
}
