package publish

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// The hand-rolled formats of the per-file headers say what fmt and hex say.
func TestHeaderFormats(t *testing.T) {
	for p := os.FileMode(0); p <= 0o777; p++ {
		for _, m := range []os.FileMode{p, p | os.ModeSetuid | os.ModeSticky} {
			if got, want := modeString(m), fmt.Sprintf("%04o", m.Perm()); got != want {
				t.Fatalf("modeString(%v) = %q, want %q", m, got, want)
			}
		}
	}
	for i := range 300 {
		h := sha1.New()
		h.Write([]byte(strings.Repeat("x", i)))
		want := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
		if got := hexSum(h); got != want {
			t.Fatalf("hexSum of %d bytes = %s, want %s", i, got, want)
		}
	}
}
