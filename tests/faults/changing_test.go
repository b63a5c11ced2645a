package faults

import (
	"context"
	be "encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/interp"
)

// version returns version v of a file: size bytes, every 4 KiB block
// stamped with v, the rest seeded noise, so any mix of two versions has a
// digest of its own.
func version(v, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(v), 77))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for off := 0; off+8 <= size; off += 4096 {
		be.BigEndian.PutUint64(b[off:], uint64(v))
	}
	return b
}

// TestFileChangesWhileSent rewrites a published file over and over (in
// place, and by rename) while a slow client fetches it. At every moment
// the client's copy under the real name must be exactly one published
// version, never a mix, and at the end it must be the latest.
func TestFileChangesWhileSent(t *testing.T) {
	const (
		seed     = 0xc4a9
		versions = 14
	)
	pub, in, scratch := t.TempDir(), t.TempDir(), t.TempDir()
	live := filepath.Join(pub, "live.bin")
	rng := rand.New(rand.NewPCG(seed, 3))
	var mu sync.Mutex
	published := map[string]int{}
	publish := func(v int, inPlace bool) {
		b := version(v, 1_500_000+rng.IntN(1_500_000))
		mu.Lock()
		published[digest(b)] = v
		mu.Unlock()
		if inPlace {
			// os.WriteFile truncates first: until its write lands the file
			// is empty, a real state of it that a loaded machine may leave
			// visible past the server's settle time. A client holding that
			// empty file holds a published state, not a mix.
			mu.Lock()
			published[digest(nil)] = -1
			mu.Unlock()
			if err := os.WriteFile(live, b, 0o644); err != nil {
				t.Error(err)
			}
			return
		}
		// The new version is written outside the published tree (same file
		// system) and renamed in: a temporary name inside it would be
		// published too (hidden files are), and a rename of it moves the
		// client's copy of whatever the temporary held, an empty file
		// included, under the real name.
		tmp := filepath.Join(scratch, "live.tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, live); err != nil {
			t.Error(err)
		}
	}
	publish(0, true)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(live, old, old)

	srv := startServer(t, pub, map[string]string{"chunk_size": "8192"})
	var files, problems int
	var nmu sync.Mutex
	cl, err := host.StartClient(host.ClientConfig{
		Connect: srv.Endpoint(), Inbox: in, Logger: quiet,
		Settings: map[string]string{"window": "16384", "slice": "8192"},
		OnNote: func(n interp.Notification) {
			nmu.Lock()
			defer nmu.Unlock()
			switch n.Name {
			case "file":
				files++
			case "problem":
				problems++
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// The writer: seeded pauses of 20-120ms, in place or by rename.
	writerDone := make(chan struct{})
	pauses := make([]time.Duration, versions)
	inPlace := make([]bool, versions)
	for i := range pauses {
		pauses[i] = time.Duration(20+rng.IntN(100)) * time.Millisecond
		inPlace[i] = rng.IntN(2) == 0
	}
	defer func() { <-writerDone }() // it reports through t: never after the test
	go func() {
		defer close(writerDone)
		for v := 1; v < versions; v++ {
			time.Sleep(pauses[v])
			publish(v, inPlace[v])
		}
	}()

	target := filepath.Join(in, "live.bin")
	seen := map[int]bool{}
	check := func() (int, bool) {
		b, err := os.ReadFile(target)
		if err != nil {
			return -1, false
		}
		mu.Lock()
		v, ok := published[digest(b)]
		mu.Unlock()
		if !ok {
			t.Fatalf("the client holds %d bytes under the real name that are no published version (a mix of versions)", len(b))
		}
		seen[v] = true
		return v, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	polls := 0
	for {
		polls++
		v, ok := check()
		select {
		case <-writerDone:
			if ok && v == versions-1 {
				nmu.Lock()
				t.Logf("%d versions published (%d in place); client held versions %v over %d polls; %d files received, %d problems",
					versions, count(inPlace[1:]), sortedInts(seen), polls, files, problems)
				nmu.Unlock()
				return
			}
		default:
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client did not get the latest version within 60s (holds version %d)", v)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func count(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

func sortedInts(m map[int]bool) []int {
	var out []int
	for i := 0; i < 1<<10; i++ {
		if m[i] {
			out = append(out, i)
		}
	}
	return out
}
