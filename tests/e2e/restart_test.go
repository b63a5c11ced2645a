package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/internal/testutil"
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
	bind := fmt.Sprintf("tcp://127.0.0.1:%d", testutil.FreePort(t))
	srv1 := startServer(t, pub, bind, withSettings("chunk_size", "65536"))
	closeSrv1 := closer(srv1)
	t.Cleanup(func() { closeSrv1() })

	settings := map[string]string{"window": "262144", "slice": "65536"}
	var clients []*host.Client
	var inboxes []string
	var gates []*chunkGate
	for range 2 {
		in := t.TempDir()
		inboxes = append(inboxes, in)
		// Each client is held on the first chunk of the big file that
		// starts past its first eighth, so the restart lands inside it
		// however fast the machine is.
		var held atomic.Bool
		gate := newChunkGate(nil)
		gate.holdLine = func(line string) bool {
			return strings.Contains(line, `filename="/z-big.bin"`) && chunkOffset(line) >= bigSz/8 && held.CompareAndSwap(false, true)
		}
		gates = append(gates, gate)
		clients = append(clients, startClient(t, host.ClientConfig{Connect: bind, Inbox: in, Settings: settings, Once: true, Wire: gate.Wire}))
		t.Cleanup(gate.Close)
	}
	// Stop the server once both clients are held inside the big file.
	for i, g := range gates {
		select {
		case <-g.held:
		case <-time.After(60 * time.Second):
			t.Fatalf("client %d never reached the big file's first eighth (%d bytes)", i, clients[i].Stats().Bytes.Load())
		}
	}
	fails := make([]int64, len(clients))
	for i, c := range clients {
		fails[i] = c.DialFailures()
	}
	if err := closeSrv1(); err != nil {
		t.Fatalf("closing the first server: %v", err)
	}
	before := make([]int64, len(clients))
	for i, c := range clients {
		before[i] = c.Stats().Bytes.Load()
	}
	for _, g := range gates {
		g.Close() // held no more
	}
	// Restart only once every client has found the server gone: each has
	// failed to redial it at least once (it is in its reconnect loop).
	for i, c := range clients {
		eventually(t, 30*time.Second, fmt.Sprintf("client %d to fail a redial", i), func() string {
			if c.DialFailures() > fails[i] {
				return ""
			}
			return fmt.Sprintf("%d failed dials", c.DialFailures()-fails[i])
		})
	}
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

// TestChangedWhileAway: files deleted, renamed and changed while a client
// was away are deleted, moved and updated when it comes back (its cache
// lists what it holds; the resync answers for every entry).
func TestChangedWhileAway(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	for i := range 10 {
		writeFile(t, pub, fmt.Sprintf("d%d/f%d.txt", i%2, i), content(uint64(800+i), 5000))
	}
	srv := startServer(t, pub, "")
	c1 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
	waitClient(t, c1, 30*time.Second, "first sync")
	c1.Close()

	mustRemove(t, pub, "d0/f0.txt")
	mustRemove(t, pub, "d1") // a whole directory
	mustRename(t, pub, "d0/f2.txt", "moved/f2.txt")
	writeFile(t, pub, "d0/f4.txt", []byte("changed\n"))
	want := treeSums(t, pub)
	eventually(t, 20*time.Second, "server tree updated", func() string {
		if n := srv.Tree().Len(); n != len(want) {
			return fmt.Sprintf("server publishes %d files, want %d", n, len(want))
		}
		return ""
	})

	c2 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
	waitClient(t, c2, 30*time.Second, "second sync")
	if d := diffSums(want, treeSums(t, in)); d != "" {
		t.Fatalf("inbox differs after coming back: %s", d)
	}
	if dirs := visibleDirs(t, in); len(dirs) != 2 {
		t.Errorf("directories %v, want [d0 moved]", dirs)
	}
	st := c2.Stats()
	t.Logf("second sync: files %d, deleted %d, bytes %d", st.Files.Load(), st.Deleted.Load(), st.Bytes.Load())
	if st.Files.Load() != 2 {
		t.Errorf("second sync fetched %d files, want 2 (the moved and the changed one)", st.Files.Load())
	}
}

// chunkOffset reads the offset field of a CHEEZBURGER wire line (-1 if none).
func chunkOffset(line string) int64 {
	_, rest, ok := strings.Cut(line, " offset=")
	if !ok {
		return -1
	}
	v, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
