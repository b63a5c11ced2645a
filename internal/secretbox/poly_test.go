package secretbox

import (
	"math/rand/v2"
	"testing"

	//lint:ignore SA1019 the reference Poly1305 the AVX-512 one is checked against (it is crypto_secretbox's MAC)
	"golang.org/x/crypto/poly1305"
)

func TestPolySumMatchesXCrypto(t *testing.T) {
	paths(t, func(t *testing.T) {
		cs := rand.NewChaCha8([32]byte{4})
		r := rand.New(cs)
		lens := []int{0, 1, 15, 16, 17, 127, 128, 129, 511, 512, 513, 640, 1023, 1024, 1040, 1055, 4096 + 3, 1000019, 1 << 20}
		for i := 0; i < 300; i++ {
			lens = append(lens, 512+r.IntN(5000))
		}
		for _, n := range lens {
			var key [32]byte
			fill(cs, key[:])
			msg := fill(cs, make([]byte, n))
			var want, got [16]byte
			poly1305.Sum(&want, msg, &key)
			polySum(&got, msg, &key)
			if got != want {
				t.Fatalf("%d bytes: tag %x, want %x", n, got, want)
			}
			if !polyVerify(&want, msg, &key) {
				t.Fatalf("%d bytes: the right tag does not verify", n)
			}
			want[r.IntN(16)] ^= 1 << r.IntN(8)
			if polyVerify(&want, msg, &key) {
				t.Fatalf("%d bytes: a wrong tag verifies", n)
			}
		}
	})
}

// Extreme keys and messages: all-ones bytes push every limb to its bound.
func TestPolySumExtremes(t *testing.T) {
	paths(t, func(t *testing.T) {
		for _, kb := range []byte{0x00, 0xff, 0x01} {
			for _, mb := range []byte{0x00, 0xff} {
				for _, n := range []int{512, 1024 + 16, 1 << 16} {
					var key [32]byte
					for i := range key {
						key[i] = kb
					}
					msg := make([]byte, n)
					for i := range msg {
						msg[i] = mb
					}
					var want, got [16]byte
					poly1305.Sum(&want, msg, &key)
					polySum(&got, msg, &key)
					if got != want {
						t.Fatalf("key %#x msg %#x, %d bytes: tag %x, want %x", kb, mb, n, got, want)
					}
				}
			}
		}
	})
}

func benchPoly(b *testing.B, sum func(*[16]byte, []byte, *[32]byte)) {
	var key [32]byte
	key[3] = 9
	msg := make([]byte, 1<<20)
	var tag [16]byte
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		sum(&tag, msg, &key)
	}
}

func BenchmarkPoly(b *testing.B)        { benchPoly(b, polySum) }
func BenchmarkPolyXCrypto(b *testing.B) { benchPoly(b, poly1305.Sum) }
