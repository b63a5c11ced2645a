package e2e

import (
	"fmt"
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

	c1 := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Settings: settings})
	eventually(t, 60*time.Second, "first client half way", func() string {
		if b := c1.Stats().Bytes.Load(); b < size/2 {
			return fmt.Sprintf("%d bytes received", b)
		}
		return ""
	})
	if err := c1.Close(); err != nil { // killed: no Stop, no KTHXBAI
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
