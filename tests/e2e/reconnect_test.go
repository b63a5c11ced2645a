package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// TestReconnectAfterCuts: the server cuts a syncing client's connection
// again and again; every time it reconnects, opens a new session and
// resumes, and the sync completes with no error.
func TestReconnectAfterCuts(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	for i := range 40 {
		writeFile(t, pub, fmt.Sprintf("d%d/f%02d.bin", i%4, i), content(uint64(100+i), 256<<10))
	}
	want := treeSums(t, pub)
	srv := startServer(t, pub, "", withSettings("chunk_size", "16384"))
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in,
		Settings: map[string]string{"window": "65536", "slice": "16384"}})
	cuts := 0
	deadline := time.Now().Add(60 * time.Second)
	for cuts < 8 && time.Now().Before(deadline) {
		select {
		case <-c.Done():
			t.Fatalf("client ended after %d cuts: %v", cuts, c.Err())
		case <-c.Synced():
			t.Logf("synced before all cuts were made")
			cuts = 1 << 30
			continue
		case <-time.After(150 * time.Millisecond):
		}
		for _, p := range srv.Engine().Peers() {
			if srv.Transport().Disconnect(p) {
				cuts++
			}
		}
	}
	waitTree(t, 30*time.Second, "inbox after cuts", in, func() map[string]string { return want })
	if err := c.Err(); err != nil {
		t.Fatalf("client error: %v", err)
	}
	st := c.Stats()
	t.Logf("sessions %d, bytes %d (tree %d), resumed %d", c.Sessions(), st.Bytes.Load(), 40*256<<10, st.Resumed.Load())
	if c.Sessions() < 2 {
		t.Errorf("sessions = %d: the cuts did not happen", c.Sessions())
	}
}
