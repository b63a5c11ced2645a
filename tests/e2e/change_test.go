package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// waitInside waits until the client is receiving vpath and has at least
// min bytes.
func waitInside(t testing.TB, c *host.Client, vpath string, min int64) {
	t.Helper()
	eventually(t, 30*time.Second, "client inside "+vpath, func() string {
		st := c.Stats()
		cur := st.Current.Load()
		if cur == nil || *cur != vpath || st.Bytes.Load() < min {
			name := "<none>"
			if cur != nil {
				name = *cur
			}
			return fmt.Sprintf("current %s, %d bytes", name, st.Bytes.Load())
		}
		return ""
	})
}

// TestChangeWhileSending: a file rewritten while a continuous client is
// receiving it arrives in its new version, and one deleted while being
// received is gone from the inbox with no partial left behind.
func TestChangeWhileSending(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	writeBigFile(t, pub, "a-rewritten.bin", 21, 8<<20)
	writeBigFile(t, pub, "b-deleted.bin", 22, 8<<20)
	writeFile(t, pub, "c-last.txt", []byte("last\n"))
	srv := startServer(t, pub, "", withSettings("chunk_size", "32768"))
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in,
		Settings: map[string]string{"window": "65536", "slice": "32768"}})

	waitInside(t, c, "/a-rewritten.bin", 1<<20)
	writeBigFile(t, pub, "a-rewritten.bin", 23, 5<<20) // shorter, other content
	if err := os.Chtimes(filepath.Join(pub, "a-rewritten.bin"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	waitInside(t, c, "/b-deleted.bin", 0)
	mustRemove(t, pub, "b-deleted.bin")

	waitTree(t, 60*time.Second, "inbox after the changes", in, func() map[string]string { return treeSums(t, pub) })
	eventually(t, 10*time.Second, "no partial left", func() string {
		for _, e := range listAll(t, in) {
			if filepath.Ext(e) == ".fmqpart" {
				return "partial " + e
			}
		}
		return ""
	})
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	t.Logf("files %d, deleted %d, bytes %d, problems %d, sessions %d", st.Files.Load(), st.Deleted.Load(), st.Bytes.Load(), st.Problems.Load(), c.Sessions())
}

// TestResumeChangedFile: a client killed mid-file comes back after the file
// changed on the server: its partial no longer matches, so the file is sent
// again from the start (nothing resumed) and arrives in its new version.
func TestResumeChangedFile(t *testing.T) {
	const size = 8 << 20
	pub, in := t.TempDir(), t.TempDir()
	writeBigFile(t, pub, "f.bin", 31, size)
	srv := startServer(t, pub, "", withSettings("chunk_size", "65536"))
	settings := map[string]string{"window": "131072", "slice": "65536"}
	// The first client is held on the chunk that starts at a quarter of
	// the file and closed there, so a partial is left however fast the
	// machine is (polling for a quarter let it finish now and then).
	var held atomic.Bool
	gate := newChunkGate(nil)
	gate.holdLine = func(line string) bool {
		return strings.Contains(line, `filename="/f.bin"`) && chunkOffset(line) >= size/4 && held.CompareAndSwap(false, true)
	}
	t.Cleanup(gate.Close)
	c1 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Settings: settings, Wire: gate.Wire})
	select {
	case <-gate.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the client never reached a quarter of the file (%d bytes)", c1.Stats().Bytes.Load())
	}
	closed := make(chan struct{})
	go func() { c1.Close(); close(closed) }() // cancels first, then waits for the held engine
	gate.Close()
	<-closed
	if _, err := os.Stat(filepath.Join(in, ".f.bin.fmqpart")); err != nil {
		t.Fatalf("no partial: %v", err)
	}
	writeBigFile(t, pub, "f.bin", 32, size) // same size, other content, dated in the past
	// The rewrite keeps the size and the (past) modification time: the
	// server must still notice the new content before the client returns.
	newSum := sha1File(t, filepath.Join(pub, "f.bin"))
	eventually(t, 20*time.Second, "server digest of the new version", func() string {
		d, err := srv.Tree().Digest("/f.bin")
		if err != nil {
			return err.Error()
		}
		if !strings.EqualFold(d, newSum) {
			return fmt.Sprintf("digest %s, want %s", d, newSum)
		}
		return ""
	})
	c2 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Settings: settings, Once: true})
	waitClient(t, c2, 60*time.Second, "client after the change")
	if d := diffSums(treeSums(t, pub), treeSums(t, in)); d != "" {
		t.Fatalf("inbox differs: %s", d)
	}
	st := c2.Stats()
	if st.Resumed.Load() != 0 {
		t.Errorf("Resumed = %d: a partial of the old version was resumed", st.Resumed.Load())
	}
	if st.Bytes.Load() != size {
		t.Errorf("received %d bytes, want the whole file %d", st.Bytes.Load(), size)
	}
}

func sha1File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
