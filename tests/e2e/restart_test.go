package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// TestServerRestart: the server is closed in the middle of a sync and
// started again on the same port; the clients reconnect by themselves and
// finish, resuming the file they were receiving and fetching no complete
// file twice.
func TestServerRestart(t *testing.T) {
	const (
		nSmall  = 20
		smallSz = 256 << 10
		bigSz   = 8 << 20
		total   = nSmall*smallSz + bigSz
	)
	pub := t.TempDir()
	for i := range nSmall {
		writeFile(t, pub, fmt.Sprintf("a/f%02d.bin", i), content(uint64(200+i), smallSz))
	}
	writeBigFile(t, pub, "z-big.bin", 3, bigSz) // sorted last
	want := treeSums(t, pub)
	bind := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	srv1 := startServer(t, pub, bind, withSettings("chunk_size", "65536"))
	closeSrv1 := closer(srv1)
	t.Cleanup(func() { closeSrv1() })

	settings := map[string]string{"window": "262144", "slice": "65536"}
	var clients []*host.Client
	var inboxes []string
	for range 2 {
		in := t.TempDir()
		inboxes = append(inboxes, in)
		clients = append(clients, startClient(t, host.ClientConfig{Connect: bind, Inbox: in, Settings: settings, Once: true}))
	}
	// Stop the server once both clients are inside the big file.
	for i, c := range clients {
		eventually(t, 60*time.Second, fmt.Sprintf("client %d inside the big file", i), func() string {
			st := c.Stats()
			cur := st.Current.Load()
			if cur == nil || *cur != "/z-big.bin" || st.Bytes.Load() < nSmall*smallSz+bigSz/8 {
				name := "<none>"
				if cur != nil {
					name = *cur
				}
				return fmt.Sprintf("current %s, %d bytes", name, st.Bytes.Load())
			}
			return ""
		})
	}
	if err := closeSrv1(); err != nil {
		t.Fatalf("closing the first server: %v", err)
	}
	before := make([]int64, len(clients))
	for i, c := range clients {
		before[i] = c.Stats().Bytes.Load()
	}
	time.Sleep(300 * time.Millisecond)
	srv2 := startServer(t, pub, bind, withSettings("chunk_size", "65536"))
	for i, c := range clients {
		waitClient(t, c, 60*time.Second, fmt.Sprintf("client %d", i))
		if d := diffSums(want, treeSums(t, inboxes[i])); d != "" {
			t.Fatalf("client %d: inbox differs: %s", i, d)
		}
		st := c.Stats()
		t.Logf("client %d: %d bytes before the restart, %d in all (tree %d), resumed %d, sessions %d",
			i, before[i], st.Bytes.Load(), total, st.Resumed.Load(), c.Sessions())
		if c.Sessions() < 2 {
			t.Errorf("client %d: %d sessions, want a reconnection", i, c.Sessions())
		}
		if got := st.Files.Load(); got != int64(len(want)) {
			t.Errorf("client %d: %d files completed, want %d (a complete file was fetched again)", i, got, len(want))
		}
		if got := st.Bytes.Load(); got != total {
			t.Errorf("client %d: received %d bytes, want exactly the tree's %d (resume lost or repeated data)", i, got, total)
		}
		if st.Resumed.Load() <= 0 {
			t.Errorf("client %d: Stats().Resumed = 0: the big file was not resumed", i)
		}
	}
	if err := srv2.Err(); err != nil {
		t.Errorf("second server: %v", err)
	}
}
