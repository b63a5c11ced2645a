package publish

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/fmq/fmq/internal/chunksum"
)

func randomContent(n int) string {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return string(b)
}

// openDigested opens vpath once its digest (and chunk table) is known,
// closed when the test ends.
func openDigested(t *testing.T, tr *Tree, vpath string) *Reader {
	t.Helper()
	if _, err := tr.Digest(vpath); err != nil {
		t.Fatal(err)
	}
	r, err := tr.Open(vpath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The chunk digest table made with a large file's SHA-1 holds the XXH3-128
// of every chunk of its grid (the last one short), and nothing else.
func TestChunkDigestTable(t *testing.T) {
	d := t.TempDir()
	const grid = 100_000
	content := randomContent(25*grid + 1234) // 2.5 MB: hashed in the background
	write(t, d, "big", content)
	write(t, d, "small", content[:grid])
	write(t, d, "small2", content[:grid])
	tr := newTree(t, []Mount{{d, "/"}}, Options{ChunkGrid: grid})
	r := openDigested(t, tr, "/big")
	size := int64(len(content))
	chunks := 0
	for off := int64(0); off < size; off += grid {
		n := min(grid, size-off)
		got, ok := r.ChunkDigest(off, n)
		if want := chunksum.Of([]byte(content[off : off+n])); !ok || got != want {
			t.Fatalf("chunk at %d: %v %v, want %v", off, got, ok, want)
		}
		chunks++
	}
	if chunks != 26 {
		t.Fatalf("%d chunks", chunks)
	}
	for _, c := range []struct{ off, n int64 }{{5, grid}, {0, grid - 1}, {0, 2 * grid}, {size - 1234, 1000}, {size, 0}, {-grid, grid}} {
		if _, ok := r.ChunkDigest(c.off, c.n); ok {
			t.Errorf("a digest for %d bytes at %d, off the grid", c.n, c.off)
		}
	}
	// A file hashed as it is read (under 1 MiB) has no table.
	if _, ok := openDigested(t, tr, "/small").ChunkDigest(0, grid); ok {
		t.Error("a chunk digest for a small file")
	}
	// One not hashed yet is hashed as it is read: it gives no sections.
	rs2, err := tr.Open("/small2")
	if err != nil {
		t.Fatal(err)
	}
	defer rs2.Close()
	if _, _, err := rs2.Section(0, grid); !errors.Is(err, ErrNoSection) {
		t.Errorf("Section of a small file hashed as read: %v, want ErrNoSection", err)
	}

	// No tables with a negative grid.
	tn := newTree(t, []Mount{{d, "/"}}, Options{ChunkGrid: -1})
	if _, ok := openDigested(t, tn, "/big").ChunkDigest(0, grid); ok {
		t.Error("a chunk digest without tables")
	}
}

// A reader that opens a version whose digest is still being computed in
// the background gets its table once that is done.
func TestChunkDigestAfterBackgroundHash(t *testing.T) {
	d := t.TempDir()
	content := randomContent(3 * DefaultChunkGrid)
	write(t, d, "big", content)
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	r, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := tr.Digest("/big"); err != nil { // joins the background computation
		t.Fatal(err)
	}
	got, ok := r.ChunkDigest(DefaultChunkGrid, DefaultChunkGrid)
	if want := chunksum.Of([]byte(content[DefaultChunkGrid : 2*DefaultChunkGrid])); !ok || got != want {
		t.Fatalf("second chunk: %v %v, want %v", got, ok, want)
	}
	if n := tr.hashRuns.Load(); n != 1 {
		t.Fatalf("%d digest computations, want 1", n)
	}
}

// A section keeps its file open after its Reader closed, until it is
// released; it counts as read (the Reader's Digest needs every byte); a
// file changed since Open gives no section but ErrChanged.
func TestSection(t *testing.T) {
	d := t.TempDir()
	content := randomContent(2*DefaultChunkGrid + 10)
	p := write(t, d, "big", content)
	tr := newTree(t, []Mount{{d, "/"}}, Options{})
	sum, err := tr.Digest("/big")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	var secs []*Section
	for off := int64(0); off < int64(len(content)); off += DefaultChunkGrid {
		n := min(DefaultChunkGrid, int64(len(content))-off)
		s, eof, err := r.Section(off, n)
		if err != nil {
			t.Fatal(err)
		}
		if eof != (off+n == int64(len(content))) {
			t.Fatalf("section at %d: eof %v", off, eof)
		}
		secs = append(secs, s)
	}
	if got, err := r.Digest(); err != nil || got != sum {
		t.Fatalf("Digest after sections: %q, %v; want %q", got, err, sum)
	}
	if _, _, err := r.Section(int64(len(content))-5, 10); !errors.Is(err, ErrNoSection) {
		t.Fatalf("section past the end: %v", err)
	}
	r.Close()
	for _, s := range secs {
		b := make([]byte, s.N)
		if _, err := s.File.ReadAt(b, s.Off); err != nil {
			t.Fatalf("section at %d after its reader closed: %v", s.Off, err)
		}
		if !bytes.Equal(b, []byte(content[s.Off:s.Off+s.N])) {
			t.Fatalf("section at %d: wrong bytes", s.Off)
		}
	}
	f := secs[0].File
	for _, s := range secs {
		s.Release()
		s.Release() // a second release does nothing
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file still open after every section was released: %v", err)
	}

	// Rewritten in place after Open: no section.
	r2, err := tr.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := os.WriteFile(p, []byte(randomContent(len(content)+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, _, err := r2.Section(0, DefaultChunkGrid); !errors.Is(err, ErrChanged) {
		s.Release()
		t.Fatalf("section of a rewritten file: %v, want ErrChanged", err)
	}
}
