package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// TestBigTree: one large file, 1,000 small files and nested folders arrive
// identical (SHA-256 of every file) after a --once sync.
func TestBigTree(t *testing.T) {
	big := int64(200 << 20)
	small := 1000
	if testing.Short() {
		big, small = 16<<20, 200
	}
	pub, in := t.TempDir(), t.TempDir()
	start := time.Now()
	writeBigFile(t, pub, "media/video/big.bin", 1, big)
	for i := range small {
		// nested folders: d0..d9/e0..e4/ plus a few at the top
		rel := fmt.Sprintf("d%d/e%d/f%04d.txt", i%10, (i/10)%5, i)
		if i%100 == 0 {
			rel = fmt.Sprintf("top%04d", i)
		}
		writeFile(t, pub, rel, content(uint64(i+10), i%4096))
	}
	writeFile(t, pub, "empty/zero.dat", nil)
	writeFile(t, pub, "a/b/c/d/e/f/g/deep.txt", []byte("deep\n"))
	want := treeSums(t, pub)
	t.Logf("fixture: %d files, %d MiB big file, written and hashed in %v", len(want), big>>20, time.Since(start))

	srv := startServer(t, pub, "")
	start = time.Now()
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
	waitClient(t, c, 150*time.Second, "big tree sync")
	elapsed := time.Since(start)
	st := c.Stats()
	t.Logf("synced %d files, %d bytes in %v (%.1f MiB/s), sessions %d",
		st.Files.Load(), st.Bytes.Load(), elapsed, float64(st.Bytes.Load())/(1<<20)/elapsed.Seconds(), c.Sessions())
	if d := diffSums(want, treeSums(t, in)); d != "" {
		t.Fatalf("inbox differs from the published tree: %s", d)
	}
	if got := st.Files.Load(); got != int64(len(want)) {
		t.Errorf("Stats().Files = %d, want %d", got, len(want))
	}
	if p := st.Problems.Load(); p != 0 {
		t.Errorf("Stats().Problems = %d", p)
	}
}
