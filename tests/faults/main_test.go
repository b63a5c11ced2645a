package faults

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/internal/testutil"
)

// TestMain builds nothing up front (fuzz workers run TestMain too): the
// fmqrun binary is built once, on first use, by fmqrunBinary. Goroutines left
// behind by any test fail the package.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilds()
	if code == 0 && !testing.Short() {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fmqrunBinary returns the path of an fmqrun built (without -race, for
// speed) on first use.
func fmqrunBinary(t testing.TB) string {
	return testutil.Build(t, "github.com/fmq/fmq/cmd/fmqrun")
}

var quiet = slog.New(slog.DiscardHandler)

// tree is a published fixture: relative path -> content.
type tree map[string][]byte

// makeTree writes a seeded tree of n files with sizes in [minSize, maxSize]
// (plus one empty file) under dir, dated an hour back so that it is
// published at once, and returns it.
func makeTree(t testing.TB, dir string, seed uint64, n, minSize, maxSize int) tree {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	tr := tree{"empty.txt": nil}
	for i := range n {
		size := minSize + rng.IntN(maxSize-minSize+1)
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("d%d/sub%d/file-%02d.bin", i%3, i%2, i)
		tr[name] = b
	}
	tr.write(t, dir)
	return tr
}

func (tr tree) write(t testing.TB, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for name, b := range tr {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func (tr tree) total() int64 {
	var n int64
	for _, b := range tr {
		n += int64(len(b))
	}
	return n
}

// inboxState is what a walk of an inbox finds.
type inboxState struct {
	complete    map[string]int64 // visible files and their sizes
	partials    map[string]int64 // target path -> partial size
	hidden      []string         // other hidden names
	completeSum int64
	partialSum  int64
}

// scanInbox lists an inbox (never following links). Unlike checkInbox it
// reads no content: it is cheap enough to poll.
func scanInbox(dir string) (inboxState, error) {
	st := inboxState{complete: map[string]int64{}, partials: map[string]int64{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a directory removed while walking
			}
			return err
		}
		if p == dir || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil // renamed or removed meanwhile
			}
			return err
		}
		base := d.Name()
		if strings.HasPrefix(base, ".") {
			if target, ok := strings.CutSuffix(base[1:], ".fmqpart"); ok {
				st.partials[pathJoin(filepath.ToSlash(filepath.Dir(rel)), target)] = info.Size()
				st.partialSum += info.Size()
			} else {
				st.hidden = append(st.hidden, rel)
			}
			return nil
		}
		st.complete[rel] = info.Size()
		st.completeSum += info.Size()
		return nil
	})
	return st, err
}

func pathJoin(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

// checkInbox verifies the "no half file" invariant: every visible file is
// a published file, byte for byte; every partial holds a prefix of its
// published file; the only other hidden names are the digest cache and its
// temporary. It returns the inbox state.
func checkInbox(t testing.TB, dir string, tr tree) inboxState {
	t.Helper()
	return checkInboxParts(t, dir, tr, tr)
}

// checkInboxParts is checkInbox where partials belong to another version
// of the tree (parts) than the visible files (tr).
func checkInboxParts(t testing.TB, dir string, tr, parts tree) inboxState {
	t.Helper()
	st, err := scanInbox(dir)
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	for rel := range st.complete {
		want, ok := tr[rel]
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		switch {
		case !ok:
			t.Errorf("%s: unexpected visible file %q", dir, rel)
		case err != nil:
			t.Errorf("%s: read %q: %v", dir, rel, err)
		case !bytes.Equal(got, want):
			t.Errorf("%s: visible file %q differs from the published one (%d bytes, want %d): a half or mixed file under a real name", dir, rel, len(got), len(want))
		}
	}
	for rel, size := range st.partials {
		want, ok := parts[rel]
		if !ok {
			t.Errorf("%s: partial of an unknown file %q", dir, rel)
			continue
		}
		dirPart, base := filepath.Split(filepath.FromSlash(rel))
		got, err := os.ReadFile(filepath.Join(dir, dirPart, "."+base+".fmqpart"))
		if err != nil {
			t.Errorf("%s: read partial of %q: %v", dir, rel, err)
			continue
		}
		if int64(len(got)) != size {
			size = int64(len(got))
		}
		if size > int64(len(want)) || !bytes.Equal(got, want[:size]) {
			t.Errorf("%s: partial of %q (%d bytes) is not a prefix of the published file", dir, rel, size)
		}
	}
	for _, h := range st.hidden {
		if h != ".fmq-cache" && h != ".fmq-cache.tmp" && h != ".fmq-inbox" {
			t.Errorf("%s: unexpected hidden file %q", dir, h)
		}
	}
	return st
}

// sameTree checks that dir holds exactly tr (visible files), and no partial.
func sameTree(t testing.TB, dir string, tr tree) {
	t.Helper()
	st := checkInbox(t, dir, tr)
	for rel := range tr {
		if _, ok := st.complete[rel]; !ok {
			t.Errorf("%s: %q missing", dir, rel)
		}
	}
	if len(st.partials) != 0 {
		t.Errorf("%s: partials left after a complete sync: %v", dir, st.partials)
	}
}

// copyDir copies a directory tree (regular files and directories only),
// hidden files included.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if _, err := os.Stat(src); os.IsNotExist(err) {
		// A client killed at startup may not have made its inbox yet: the
		// snapshot is an empty one.
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func digest(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
