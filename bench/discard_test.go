package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDiscardKeepsSmallFilesUntilTheEnd: a finished run's destination leaves
// its place at once, its large files are removed, its small files wait in
// the trash until emptyTrash.
func TestDiscardKeepsSmallFilesUntilTheEnd(t *testing.T) {
	h := &harness{work: t.TempDir()}
	dest := h.newDest("small")
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(dest, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	small := []string{"a/b/f1", "c/f2", "top"}
	for _, f := range small {
		if err := os.WriteFile(filepath.Join(dest, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(dest, "a", "big.bin")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, bigFile); err != nil { // sparse: the size counts
		t.Fatal(err)
	}
	if err := h.discard(dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Fatalf("destination still in place: %v", err)
	}
	kept := filepath.Join(h.work, "trash", filepath.Base(dest))
	for _, f := range small {
		if _, err := os.Stat(filepath.Join(kept, f)); err != nil {
			t.Errorf("small file %s not kept: %v", f, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(kept, "a", "big.bin")); !os.IsNotExist(err) {
		t.Errorf("big file kept: %v", err)
	}
	if err := h.discard(dest); err != nil { // nothing there any more
		t.Errorf("discard of a missing destination: %v", err)
	}
	if err := h.emptyTrash(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(h.work, "trash")); !os.IsNotExist(err) {
		t.Errorf("trash not emptied: %v", err)
	}
}

func TestSpaceCountsTheTrash(t *testing.T) {
	specs := datasetSpecs(FullSizes)
	needSmall, _, _ := spaceNeeded([]string{"small"}, FullSizes)
	if min := 3 * 4 * specs["small"].smallDiskBytes(); needSmall < min {
		t.Errorf("small: need %d, the trash alone takes %d", needSmall, min)
	}
	if specs["tree"].smallDiskBytes() >= FullSizes.TreeBig {
		t.Errorf("tree: the big file counted as small (%d bytes)", specs["tree"].smallDiskBytes())
	}
}
