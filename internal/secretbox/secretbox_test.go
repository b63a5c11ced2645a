package secretbox

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	nacl "golang.org/x/crypto/nacl/secretbox"
	//lint:ignore SA1019 the reference keystream the AVX-512 one is checked against
	"golang.org/x/crypto/salsa20/salsa"
)

// paths runs f with the vector keystream (where the CPU has it) and with
// x/crypto's alone.
func paths(t *testing.T, f func(t *testing.T)) {
	saved := useAVX512
	defer func() { useAVX512 = saved }()
	for _, v := range []bool{true, false} {
		if v && !saved {
			t.Log("no AVX-512 here: the vector path is not exercised")
			continue
		}
		useAVX512 = v
		name := "generic"
		if v {
			name = "avx512"
		}
		t.Run(name, f)
	}
}

func fill(r *rand.ChaCha8, b []byte) []byte {
	r.Read(b)
	return b
}

// sizes around every boundary of the code: the 32 bytes of block 0, the
// 1024-byte vector step, a fmq chunk.
var sizes = []int{0, 1, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 1055, 1056, 1057, 2047, 2048, 2080, 4096 + 32 + 7, 65536 + 32, 1000019, 1 << 20}

func TestSealOpenMatchNaCl(t *testing.T) {
	paths(t, func(t *testing.T) {
		r := rand.NewChaCha8([32]byte{1})
		for _, n := range sizes {
			var key [32]byte
			var nonce [24]byte
			fill(r, key[:])
			fill(r, nonce[:])
			msg := fill(r, make([]byte, n))
			want := nacl.Seal([]byte("head"), msg, &nonce, &key)
			got := Seal([]byte("head"), msg, &nonce, &key)
			if !bytes.Equal(got, want) {
				t.Fatalf("Seal of %d bytes differs from nacl/secretbox", n)
			}
			// Open into a buffer with room (no allocation) and without.
			room := make([]byte, 3, 3+n)
			copy(room, "abc")
			for _, out := range [][]byte{nil, room} {
				plain, ok := Open(out, got[4:], &nonce, &key)
				if !ok || !bytes.Equal(plain[len(out):], msg) || !bytes.Equal(plain[:len(out)], out) {
					t.Fatalf("Open of %d bytes: ok %v, plaintext differs", n, ok)
				}
			}
		}
	})
}

func TestOpenRejectsTampering(t *testing.T) {
	paths(t, func(t *testing.T) {
		r := rand.NewChaCha8([32]byte{2})
		for _, n := range []int{0, 40, 3000, 1 << 20} {
			var key [32]byte
			var nonce [24]byte
			fill(r, key[:])
			fill(r, nonce[:])
			box := Seal(nil, fill(r, make([]byte, n)), &nonce, &key)
			for _, i := range []int{0, 15, 16, len(box) - 1, len(box) / 2} {
				if i >= len(box) {
					continue
				}
				bad := append([]byte{}, box...)
				bad[i] ^= 0x20
				out := make([]byte, 0, len(box))
				if _, ok := Open(out, bad, &nonce, &key); ok {
					t.Fatalf("%d bytes: a box with byte %d flipped opened", n, i)
				}
				if bytes.ContainsFunc(out[:cap(out)], func(r rune) bool { return r != 0 }) {
					t.Fatalf("%d bytes: a bad box wrote plaintext", n)
				}
			}
			nonce[23] ^= 1
			if _, ok := Open(nil, box, &nonce, &key); ok {
				t.Fatalf("%d bytes: opened under another nonce", n)
			}
			if _, ok := Open(nil, box[:Overhead-1], &nonce, &key); ok {
				t.Fatal("a box shorter than its tag opened")
			}
		}
	})
}

// The keystream on its own, from any block number (the vector code falls
// back where its low counter word would carry), in place and not.
func TestXORKeyStreamMatchesSalsa(t *testing.T) {
	paths(t, func(t *testing.T) {
		r := rand.NewChaCha8([32]byte{3})
		for _, block := range []uint64{0, 1, 17, 1<<32 - 16, 1<<32 - 17, 1<<32 - 5, 1 << 32, 1<<40 + 3} {
			for _, n := range []int{1024, 1024*3 + 5, 64 * 17} {
				var key [32]byte
				var counter [16]byte
				fill(r, key[:])
				fill(r, counter[:8])
				binary.LittleEndian.PutUint64(counter[8:], block)
				in := fill(r, make([]byte, n))
				c1, c2 := counter, counter
				want := make([]byte, n)
				salsa.XORKeyStream(want, in, &c1, &key)
				got := make([]byte, n)
				xorKeyStream(got, in, &c2, &key)
				if !bytes.Equal(got, want) {
					t.Fatalf("block %d, %d bytes: keystream differs", block, n)
				}
				xorKeyStream(in, in, &counter, &key)
				if !bytes.Equal(in, want) {
					t.Fatalf("block %d, %d bytes: in place differs", block, n)
				}
			}
		}
	})
}

func FuzzSealOpen(f *testing.F) {
	f.Add([]byte("hello"), uint16(1100), byte(0))
	f.Fuzz(func(t *testing.T, seed []byte, size uint16, flip byte) {
		var key [32]byte
		var nonce [24]byte
		copy(key[:], seed)
		copy(nonce[:], seed[min(len(seed), 3):])
		msg := bytes.Repeat(append(seed, 7), int(size)/(len(seed)+1)+1)[:size]
		want := nacl.Seal(nil, msg, &nonce, &key)
		got := Seal(nil, msg, &nonce, &key)
		if !bytes.Equal(got, want) {
			t.Fatalf("Seal of %d bytes differs", size)
		}
		got[int(flip)%len(got)] ^= 1
		if _, ok := Open(nil, got, &nonce, &key); ok {
			t.Fatal("a flipped box opened")
		}
	})
}

func benchBox(b *testing.B, open bool) {
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, 1<<20)
	box := Seal(nil, msg, &nonce, &key)
	out := make([]byte, 0, len(msg)+Overhead)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if open {
			if _, ok := Open(out[:0], box, &nonce, &key); !ok {
				b.Fatal("does not open")
			}
		} else {
			Seal(out[:0], msg, &nonce, &key)
		}
	}
}

func BenchmarkSeal(b *testing.B) { benchBox(b, false) }
func BenchmarkOpen(b *testing.B) { benchBox(b, true) }

func BenchmarkNaClSeal(b *testing.B) {
	var key [32]byte
	var nonce [24]byte
	msg := make([]byte, 1<<20)
	out := make([]byte, 0, len(msg)+Overhead)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		nacl.Seal(out[:0], msg, &nonce, &key)
	}
}

func BenchmarkKeystream(b *testing.B) {
	var key [32]byte
	var counter [16]byte
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		xorKeyStream(buf, buf, &counter, &key)
	}
}

// Seal2 of any split of a message is Seal of the whole.
func TestSeal2AnySplit(t *testing.T) {
	paths(t, func(t *testing.T) {
		r := rand.NewChaCha8([32]byte{5})
		var key [32]byte
		var nonce [24]byte
		fill(r, key[:])
		fill(r, nonce[:])
		for _, n := range []int{0, 1, 32, 33, 100, 2000, 70000} {
			msg := fill(r, make([]byte, n))
			want := nacl.Seal([]byte("x"), msg, &nonce, &key)
			for _, cut := range []int{0, 1, 31, 32, 33, 95, 96, 97, 159, 160, 161, 1000, 4097, n / 2, n} {
				if cut > n {
					continue
				}
				if got := Seal2([]byte("x"), msg[:cut], msg[cut:], &nonce, &key); !bytes.Equal(got, want) {
					t.Fatalf("%d bytes cut at %d: Seal2 differs from nacl/secretbox", n, cut)
				}
			}
		}
	})
}

// A Stream decrypts a box in pieces of any size, in place or not, to what
// Open gives, and refuses a box Open refuses.
func TestStreamPieces(t *testing.T) {
	paths(t, func(t *testing.T) {
		cs := rand.NewChaCha8([32]byte{6})
		r := rand.New(cs)
		var key [32]byte
		var nonce [24]byte
		fill(cs, key[:])
		fill(cs, nonce[:])
		for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1024, 5000, 70001} {
			msg := fill(cs, make([]byte, n))
			box := Seal(nil, msg, &nonce, &key)
			s, ok := OpenStream(box, &nonce, &key)
			if !ok {
				t.Fatalf("%d bytes: does not open", n)
			}
			got := make([]byte, n)
			ct := box[Overhead:]
			for off := 0; off < n; {
				k := min(n-off, 1+r.IntN(3000))
				if r.IntN(2) == 0 { // in place
					copy(got[off:off+k], ct[off:off+k])
					s.XORAt(got[off:off+k], got[off:off+k], uint64(off))
				} else {
					s.XORAt(got[off:off+k], ct[off:off+k], uint64(off))
				}
				off += k
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("%d bytes: decrypted in pieces differs", n)
			}
			bad := bytes.Clone(box)
			bad[len(bad)-1] ^= 1
			if _, ok := OpenStream(bad, &nonce, &key); ok {
				t.Fatalf("%d bytes: a flipped box opened", n)
			}
		}
	})
}
