package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// TestResumeAfterKill: a client killed (Close, no KTHXBAI) in the middle of
// a large file and started again on the same inbox transfers only the
// remainder: the bytes it receives are the file's size less the partial it
// kept, and complete files are not fetched again.
func TestResumeAfterKill(t *testing.T) {
	const size = 24 << 20
	pub, in := t.TempDir(), t.TempDir()
	small := content(7, 100_000)
	writeFile(t, pub, "a-small.txt", small) // sorted first: complete before the kill
	writeBigFile(t, pub, "data/big.bin", 11, size)
	want := treeSums(t, pub)
	srv := startServer(t, pub, "", withSettings("chunk_size", "65536"))
	settings := map[string]string{"window": "262144", "slice": "65536"}

	// The first client is held on the chunk that takes it past half the
	// big file, and killed there: however fast the machine, the kill
	// lands in the middle (at most a credit window more arrives while
	// Close runs).
	const chunk = 65536
	gate := newChunkGate(func(n int64) bool { return n == size/2/chunk+1 }) // +1: the small file's chunk
	c1 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Settings: settings, Wire: gate.Wire})
	t.Cleanup(gate.Close)
	select {
	case <-gate.held:
	case <-c1.Done():
		t.Fatalf("first client ended before half way: %v", c1.Err())
	case <-time.After(60 * time.Second):
		t.Fatalf("first client not half way after 60s: %d bytes received", c1.Stats().Bytes.Load())
	}
	closed := make(chan error, 1)
	go func() { closed <- c1.Close() }() // killed: no Stop, no KTHXBAI
	gate.Close()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	got1 := c1.Stats().Bytes.Load()
	fi, err := os.Stat(filepath.Join(in, "data", ".big.bin.fmqpart"))
	if err != nil {
		t.Fatalf("no partial file kept after the kill: %v", err)
	}
	partial := fi.Size()
	t.Logf("killed after %d bytes; partial holds %d of %d", got1, partial, size)
	if partial <= 0 || partial >= size {
		t.Fatalf("partial size %d, want between 0 and %d", partial, size)
	}
	if partial != got1-int64(len(small)) {
		t.Errorf("partial size %d, want the %d bytes received less the small file (%d)", partial, got1, len(small))
	}
	if _, err := os.Stat(filepath.Join(in, "data", "big.bin")); err == nil {
		t.Fatalf("big.bin installed before it was complete")
	}

	start := time.Now()
	c2 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Settings: settings, Once: true})
	waitClient(t, c2, 60*time.Second, "restarted client")
	st := c2.Stats()
	t.Logf("restarted client: %d bytes in %v, resumed %d", st.Bytes.Load(), time.Since(start), st.Resumed.Load())
	if d := diffSums(want, treeSums(t, in)); d != "" {
		t.Fatalf("inbox differs: %s", d)
	}
	if got, want := st.Bytes.Load(), size-partial; got != want {
		t.Errorf("restarted client received %d bytes, want size - partial = %d", got, want)
	}
	if got := st.Resumed.Load(); got != partial {
		t.Errorf("Stats().Resumed = %d, want %d", got, partial)
	}
	if got := st.Files.Load(); got != 1 {
		t.Errorf("restarted client completed %d files, want 1 (the small one was complete)", got)
	}
	if _, err := os.Stat(filepath.Join(in, "data", ".big.bin.fmqpart")); !os.IsNotExist(err) {
		t.Errorf("partial left behind after the sync: %v", err)
	}
}
