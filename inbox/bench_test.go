package inbox

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const (
	benchSize  = 32 << 20
	benchChunk = 256 << 10
)

func benchContent() []byte {
	b := make([]byte, benchSize)
	for i := range b {
		b[i] = byte(i * 13)
	}
	return b
}

// BenchmarkReceiveBaseline: what any safe receiver must do: write a temporary
// file in chunks, SHA-1 it, fsync, rename.
func BenchmarkReceiveBaseline(b *testing.B) {
	d := b.TempDir()
	c := benchContent()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		tmp := filepath.Join(d, ".f.tmp")
		f, err := os.Create(tmp)
		if err != nil {
			b.Fatal(err)
		}
		h := sha1.New()
		for off := 0; off < benchSize; off += benchChunk {
			f.WriteAt(c[off:off+benchChunk], int64(off))
			h.Write(c[off : off+benchChunk])
		}
		h.Sum(nil)
		f.Sync()
		f.Close()
		os.Rename(tmp, filepath.Join(d, "f"))
	}
}

// BenchmarkReceive: Begin, Write in 256 KiB chunks, Finish with SIZE and SHA1.
func BenchmarkReceive(b *testing.B) {
	d := b.TempDir()
	ib, err := OpenOptions(d, Options{Logger: quiet, Fsync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ib.Close()
	c := benchContent()
	h := hdr(c)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := ib.Begin("/dir/f", 0)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < benchSize; off += benchChunk {
			if err := p.Write(int64(off), c[off:off+benchChunk]); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Finish(h); err != nil {
			b.Fatal(err)
		}
	}
}

func makeCacheTree(b *testing.B, n int) *Inbox {
	d := b.TempDir()
	for i := 0; i < n; i++ {
		p := filepath.Join(d, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, 4096), 0o644)
	}
	ib, err := OpenOptions(d, Options{Logger: quiet, Fsync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ib.Close() })
	return ib
}

// BenchmarkCacheForCold: 1000 files of 4 KiB the cache does not know (hashes all).
func BenchmarkCacheForCold(b *testing.B) {
	ib := makeCacheTree(b, 1000)
	b.ResetTimer()
	for b.Loop() {
		ib.mu.Lock()
		clear(ib.cache)
		ib.mu.Unlock()
		if len(ib.CacheFor("/")) != 1000 {
			b.Fatal("count")
		}
	}
}

// BenchmarkCacheForWarm: the same 1000 files, all cached (a walk and stats).
func BenchmarkCacheForWarm(b *testing.B) {
	ib := makeCacheTree(b, 1000)
	ib.CacheFor("/")
	b.ResetTimer()
	for b.Loop() {
		if len(ib.CacheFor("/")) != 1000 {
			b.Fatal("count")
		}
	}
}
