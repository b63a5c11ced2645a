package publish

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// Transfers of a large file version that start before its digest is known
// share one background computation (fan-out hashes once), resumed ones do
// not hash their prefix, and every Reader ends with the right digest.
func TestDigestSharedByTransfers(t *testing.T) {
	d := t.TempDir()
	content := bytes.Repeat([]byte("fan-out digest "), asyncDigestMin/8)
	write(t, d, "big", string(content))
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	const readers = 6
	var wg sync.WaitGroup
	sums := make([]string, readers)
	rs := make([]*Reader, readers)
	for i := range rs {
		r, err := tr.OpenAt("/big", int64(i)*1000)
		if err != nil {
			t.Fatal(err)
		}
		if r.h != nil {
			t.Fatal("a large file's Reader hashes in line")
		}
		rs[i] = r
	}
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			buf := make([]byte, 64<<10)
			for off := int64(i) * 1000; ; {
				n, eof, err := r.ReadChunk(buf, off)
				if err != nil {
					t.Error(err)
					return
				}
				off += int64(n)
				if eof {
					break
				}
			}
			sums[i], _ = r.Digest()
		}()
	}
	wg.Wait()
	for i, s := range sums {
		if s != sha(content) {
			t.Errorf("reader %d: digest %q", i, s)
		}
	}
	if n := tr.hashRuns.Load(); n != 1 {
		t.Errorf("%d digest computations for one version, want 1", n)
	}
	if got, err := tr.Digest("/big"); err != nil || got != sha(content) {
		t.Errorf("Digest after the transfers: %q, %v", got, err)
	}
	if n := tr.hashRuns.Load(); n != 1 {
		t.Errorf("Digest hashed again (%d computations)", n)
	}
}

// A file that changes while its background digest runs yields ErrChanged
// from Digest, never a digest of a mix of versions.
func TestDigestAsyncChanged(t *testing.T) {
	d := t.TempDir()
	content := bytes.Repeat([]byte("x"), 2*asyncDigestMin)
	p := write(t, d, "big", string(content))
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	r, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	<-r.call.done // the first version's digest
	if r.call.err != nil {
		t.Fatal(r.call.err)
	}
	// A new version of the same size (mtime moves): a new Reader of it is
	// refused until published; a background digest asked for the old key
	// fails rather than hash the new content.
	later := time.Now().Add(time.Hour)
	if err := os.WriteFile(p, bytes.Repeat([]byte("y"), len(content)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	c := tr.digestAsync("/big", statKey{id: r.key.id, size: r.key.size, mtime: r.key.mtime - 1})
	<-c.done
	if !errors.Is(c.err, ErrChanged) {
		t.Fatalf("digest of a version that is gone: %q, %v", c.sum, c.err)
	}
	if _, err := tr.OpenAt("/big", 0); !errors.Is(err, ErrChanged) {
		t.Fatalf("unsettled version opened: %v", err)
	}
}

// Close stops a background digest and waits for it (no goroutine left).
func TestDigestAsyncStopsOnClose(t *testing.T) {
	d := t.TempDir()
	content := bytes.Repeat([]byte("z"), 16*asyncDigestMin)
	write(t, d, "big", string(content))
	tr, err := New([]Mount{{d, "/"}}, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.call.done:
	default:
		t.Fatal("Close returned with the digest still running")
	}
	// Stopped (ErrClosed), or finished first: then it is right.
	if err := r.call.err; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("digest after Close: %v", err)
	} else if err == nil && r.call.sum != sha(content) {
		t.Fatalf("digest %q", r.call.sum)
	}
}
