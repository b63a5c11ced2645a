package publish

import (
	"crypto/sha1"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

const benchFiles = 10000

// makeBenchTree creates 100 directories of 100 small files.
func makeBenchTree(b *testing.B) string {
	b.Helper()
	d := b.TempDir()
	for i := 0; i < benchFiles/100; i++ {
		sub := filepath.Join(d, fmt.Sprintf("dir%03d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 100; j++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.dat", j)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return d
}

// BenchmarkScanBaseline: filepath.WalkDir + Info over the same tree, the floor
// any scanner must pay. Compare ns/file with BenchmarkScan.
func BenchmarkScanBaseline(b *testing.B) {
	d := makeBenchTree(b)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() {
				if _, err := de.Info(); err == nil {
					n++
				}
			}
			return nil
		})
		if n != benchFiles {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFiles, "ns/file")
}

// BenchmarkScan: a full Rescan of 10,000 unchanged files (no hashing).
func BenchmarkScan(b *testing.B) {
	d := makeBenchTree(b)
	tr, err := New([]Mount{{d, "/"}}, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	if tr.Len() != benchFiles {
		b.Fatal(tr.Len())
	}
	b.ResetTimer()
	for b.Loop() {
		if ch, err := tr.Rescan(); err != nil || len(ch) != 0 {
			b.Fatal(err, len(ch))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFiles, "ns/file")
}

// BenchmarkNew: initial scan of 10,000 files, including building the index.
func BenchmarkNew(b *testing.B) {
	d := makeBenchTree(b)
	b.ResetTimer()
	for b.Loop() {
		tr, err := New([]Mount{{d, "/"}}, Options{Logger: quiet})
		if err != nil || tr.Len() != benchFiles {
			b.Fatal(err)
		}
		tr.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFiles, "ns/file")
}

func BenchmarkSnapshot(b *testing.B) {
	d := makeBenchTree(b)
	tr, _ := New([]Mount{{d, "/"}}, Options{Logger: quiet})
	defer tr.Close()
	b.ResetTimer()
	for b.Loop() {
		if len(tr.Match("/dir050")) != 100 {
			b.Fatal("match")
		}
	}
}

const bigSize = 32 << 20

func makeBig(b *testing.B) (string, *Tree) {
	d := b.TempDir()
	buf := make([]byte, bigSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(d, "big"), buf, 0o644)
	tr, err := New([]Mount{{d, "/"}}, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return filepath.Join(d, "big"), tr
}

// BenchmarkHashBaseline: read the file with ReadAt in 256 KiB blocks and SHA-1
// it; the floor for Digest and for ReadChunk.
func BenchmarkHashBaseline(b *testing.B) {
	p, _ := makeBig(b)
	buf := make([]byte, 256<<10)
	b.SetBytes(bigSize)
	b.ResetTimer()
	for b.Loop() {
		f, _ := os.Open(p)
		h := sha1.New()
		for off := int64(0); ; {
			n, err := f.ReadAt(buf, off)
			h.Write(buf[:n])
			off += int64(n)
			if err == io.EOF {
				break
			}
		}
		f.Close()
	}
}

// BenchmarkDigestUncached hashes the whole file each time (cache dropped).
func BenchmarkDigestUncached(b *testing.B) {
	_, tr := makeBig(b)
	b.SetBytes(bigSize)
	b.ResetTimer()
	for b.Loop() {
		tr.dmu.Lock()
		clear(tr.digests)
		tr.dmu.Unlock()
		if _, err := tr.Digest("/big"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigestCached: a repeated call costs an open and a stat.
func BenchmarkDigestCached(b *testing.B) {
	_, tr := makeBig(b)
	tr.Digest("/big")
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Digest("/big"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadChunk reads the file in 256 KiB chunks with change detection and
// the running SHA-1 (compare MB/s with BenchmarkHashBaseline).
func BenchmarkReadChunk(b *testing.B) {
	_, tr := makeBig(b)
	buf := make([]byte, 256<<10)
	b.SetBytes(bigSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := tr.Open("/big")
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); ; {
			n, eof, err := r.ReadChunk(buf, off)
			if err != nil {
				b.Fatal(err)
			}
			off += int64(n)
			if eof {
				break
			}
		}
		if _, err := r.Digest(); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
