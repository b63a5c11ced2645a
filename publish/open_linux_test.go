//go:build linux

package publish

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// openBeneath opens what is below the directory, never through a link,
// never outside.
func TestOpenBeneath(t *testing.T) {
	d, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(d, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(d, "a", "b", "f"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644)
	os.Symlink(outside, filepath.Join(d, "out"))
	os.Symlink("a", filepath.Join(d, "in"))
	os.Symlink("b/f", filepath.Join(d, "a", "lf"))
	root, err := os.OpenRoot(d)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	dir := openDir(root)
	if dir == nil {
		t.Fatal("no directory handle")
	}
	defer dir.Close()
	f, ok := openBeneath(dir, "a/b/f")
	if !ok {
		if noOpenat2.Load() {
			t.Skip("no openat2 here")
		}
		t.Fatal("a plain file not opened")
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "inside" {
		t.Fatalf("read %q", b)
	}
	for _, rel := range []string{"out/secret", "in/b/f", "a/lf", "../" + filepath.Base(outside) + "/secret", outside + "/secret", "a/../../x", "missing"} {
		if f, ok := openBeneath(dir, rel); ok {
			f.Close()
			t.Errorf("%s: opened", rel)
		}
	}
	dir.Close()
	if f, ok := openBeneath(dir, "a/b/f"); ok {
		f.Close()
		t.Error("opened through a closed directory handle")
	}
}
