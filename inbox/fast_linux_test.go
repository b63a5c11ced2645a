//go:build linux

package inbox

import (
	"strconv"
	"testing"
)

// The descriptor cache stays bounded however many directories a tree has.
func TestDirCacheBounded(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	c := []byte("x")
	for i := range 3 * maxDirs {
		if err := receive(t, ib, "/d"+strconv.Itoa(i)+"/f", c, 0, 10, hdr(c)); err != nil {
			t.Fatal(err)
		}
		if n := ib.fast.size(); n > maxDirs {
			t.Fatalf("after %d directories: %d descriptors cached", i+1, n)
		}
	}
}
