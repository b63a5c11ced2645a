//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fmq/fmq/internal/vpath"
)

// fileSpec is one file of a data set: its slash-separated path relative to
// the data set's root and its size in bytes.
type fileSpec struct {
	Rel  string
	Size int64
}

// datasetSpec describes a data set to generate. Content is derived from
// Name and each file's Rel only, so the same spec always yields the same bytes.
type datasetSpec struct {
	Name  string
	Files []fileSpec
}

// TotalBytes is the sum of the file sizes.
func (s datasetSpec) TotalBytes() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Size
	}
	return n
}

// DiskBytes estimates the space the data set takes on disk: each file rounded
// up to 4 KiB blocks plus one block per directory.
func (s datasetSpec) DiskBytes() int64 {
	const block = 4096
	var n int64
	dirs := map[string]bool{}
	for _, f := range s.Files {
		n += (f.Size + block - 1) / block * block
		for d := filepath.Dir(filepath.FromSlash(f.Rel)); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	return n + int64(len(dirs)+1)*block
}

// smallDiskBytes is DiskBytes of the files smaller than bigFile (what a
// discarded destination keeps in the trash) and of the directories.
func (s datasetSpec) smallDiskBytes() int64 {
	small := datasetSpec{Name: s.Name}
	for _, f := range s.Files {
		if f.Size < bigFile {
			small.Files = append(small.Files, f)
		}
	}
	return small.DiskBytes()
}

// manifest records what a generated data set holds, for verifying copies.
type manifest struct {
	Files map[string]manifestEntry // by slash-separated relative path
	Bytes int64
}

type manifestEntry struct {
	Size int64
	Sum  [sha256.Size]byte
}

// fixedMTime is stamped on every generated file and directory: it makes the
// trees identical from run to run and old enough that no publisher treats
// them as still being written (a stability window).
var fixedMTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// smallFiles lays out n files of size bytes under prefix in nested folders,
// 100 files per leaf folder and 10 leaf folders per parent:
// prefix/dNN/eNN/fNNNNN.dat.
func smallFiles(prefix string, n int, size int64) []fileSpec {
	out := make([]fileSpec, 0, n)
	for i := 0; i < n; i++ {
		leaf := i / 100
		rel := fmt.Sprintf("d%02d/e%02d/f%05d.dat", leaf/10, leaf%10, i)
		if prefix != "" {
			rel = prefix + "/" + rel
		}
		out = append(out, fileSpec{Rel: rel, Size: size})
	}
	return out
}

// contentSeed derives the pseudo-random generator seed of one file.
func contentSeed(dataset, rel string) [32]byte {
	return sha256.Sum256([]byte("fmq-bench/v1/" + dataset + "/" + rel))
}

// writeContent writes size seeded pseudo-random bytes to w, through buf.
// The stream is incompressible and has no zero runs, so neither compression
// nor sparse files can shortcut a copy.
func writeContent(w io.Writer, seed [32]byte, size int64, buf []byte) error {
	rng := rand.NewChaCha8(seed)
	for size > 0 {
		n := min(int64(len(buf)), size)
		if _, err := rng.Read(buf[:n]); err != nil {
			return err
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// generate creates the data set under dir (which must not exist yet) and
// returns its manifest.
func generate(dir string, spec datasetSpec) (*manifest, error) {
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("generate %s: already exists", dir)
	}
	man := &manifest{Files: make(map[string]manifestEntry, len(spec.Files))}
	var dirs []string
	seenDir := map[string]bool{}
	buf := make([]byte, 1<<20)
	for _, f := range spec.Files {
		if err := checkRel(f.Rel); err != nil {
			return nil, fmt.Errorf("generate %s: %w", spec.Name, err)
		}
		if _, dup := man.Files[f.Rel]; dup {
			return nil, fmt.Errorf("generate %s: duplicate file %q", spec.Name, f.Rel)
		}
		path := filepath.Join(dir, filepath.FromSlash(f.Rel))
		parent := filepath.Dir(path)
		if !seenDir[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return nil, err
			}
			for d := parent; len(d) >= len(dir) && !seenDir[d]; d = filepath.Dir(d) {
				seenDir[d] = true
				dirs = append(dirs, d)
			}
		}
		e, err := writeFile(path, contentSeed(spec.Name, f.Rel), f.Size, buf)
		if err != nil {
			return nil, err
		}
		man.Files[f.Rel] = e
		man.Bytes += f.Size
	}
	// Directories last, deepest first, so creating children does not bump them again.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := os.Chtimes(d, fixedMTime, fixedMTime); err != nil {
			return nil, err
		}
	}
	return man, nil
}

func writeFile(path string, seed [32]byte, size int64, buf []byte) (manifestEntry, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return manifestEntry{}, err
	}
	h := sha256.New()
	err = writeContent(io.MultiWriter(f, h), seed, size, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(path, fixedMTime, fixedMTime)
	}
	if err != nil {
		return manifestEntry{}, fmt.Errorf("write %s: %w", path, err)
	}
	e := manifestEntry{Size: size}
	copy(e.Sum[:], h.Sum(nil))
	return e, nil
}

func checkRel(rel string) error {
	if rel == "" {
		return fmt.Errorf("bad relative path %q", rel)
	}
	if why := vpath.Problem("/" + rel); why != "" {
		return fmt.Errorf("bad relative path %q: %s", rel, why)
	}
	return nil
}

// verifyError lists what differs between a copy and its manifest.
type verifyError struct {
	Dir                         string
	Missing, Unexpected, Differ []string
}

func (e *verifyError) Error() string {
	var parts []string
	add := func(what string, list []string) {
		if len(list) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (first: %s)", len(list), what, list[0]))
		}
	}
	add("missing", e.Missing)
	add("unexpected", e.Unexpected)
	add("differing", e.Differ)
	return fmt.Sprintf("verify %s: %s", e.Dir, strings.Join(parts, "; "))
}

// verifyTree checks that dir holds exactly the manifest's files with the
// right sizes and, when full is set, the right SHA-256 digests. Hidden
// entries (a name starting with ".") are ignored: the protocol never
// publishes them and receivers keep their partial and state files there.
func verifyTree(dir string, man *manifest, full bool) error {
	ve := &verifyError{Dir: dir}
	seen := make(map[string]bool, len(man.Files))
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		want, ok := man.Files[rel]
		if !ok || !d.Type().IsRegular() {
			ve.Unexpected = append(ve.Unexpected, rel)
			return nil
		}
		seen[rel] = true
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() != want.Size {
			ve.Differ = append(ve.Differ, fmt.Sprintf("%s (size %d, want %d)", rel, info.Size(), want.Size))
			return nil
		}
		if full {
			sum, err := fileSum(path)
			if err != nil {
				return err
			}
			if !bytes.Equal(sum[:], want.Sum[:]) {
				ve.Differ = append(ve.Differ, rel+" (content)")
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify %s: %w", dir, err)
	}
	for rel := range man.Files {
		if !seen[rel] {
			ve.Missing = append(ve.Missing, rel)
		}
	}
	sort.Strings(ve.Missing)
	sort.Strings(ve.Unexpected)
	sort.Strings(ve.Differ)
	if len(ve.Missing)+len(ve.Unexpected)+len(ve.Differ) > 0 {
		return ve
	}
	return nil
}

func fileSum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
