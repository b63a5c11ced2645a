package chunksum

import (
	"errors"
	"testing"
)

func TestDigest(t *testing.T) {
	// Reference values of XXH3-128 (seed 0), big-endian high then low half.
	for _, c := range []struct{ in, want string }{
		{"", "99AA06D3014798D86001C324468D497F"},
		{"a", "A96FAF705AF16834E6C632B61E964E1F"},
	} {
		d := Of([]byte(c.in))
		if got := d.String(); got != c.want {
			t.Errorf("Of(%q) = %s, want %s", c.in, got, c.want)
		}
		p, err := Parse(" " + c.want + " ")
		if err != nil || p != d {
			t.Errorf("Parse(%s) = %v, %v", c.want, p, err)
		}
	}
	if Of([]byte("a")) == Of([]byte("b")) {
		t.Error("different chunks, same digest")
	}
	for _, bad := range []string{"", "00", "ZZAA06D3014798D86001C324468D497F", "99AA06D3014798D86001C324468D497F00"} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) err %v", bad, err)
		}
	}
}
