// Package secretbox is NaCl's crypto_secretbox (XSalsa20-Poly1305), the box
// of every CURVE MESSAGE (RFC 26), byte for byte the same as
// golang.org/x/crypto/nacl/secretbox (and libsodium), faster on amd64 with
// AVX-512: the Salsa20 keystream is computed 16 blocks at a time
// (salsa_amd64.s, about 4 GB/s here against x/crypto's 0.6-0.8), and
// Poly1305 runs 8 blocks at a time (poly_amd64.s, about 4 GB/s against
// x/crypto's scalar 2.5). Elsewhere, and for what is left over, x/crypto's
// Salsa20 and a port of its generic Poly1305 do the work.
//
// Seal and Open do not allocate when out has room, and Open writes no
// plaintext unless the tag holds (the tag is checked over the ciphertext
// first).
package secretbox

import (
	"encoding/binary"

	//lint:ignore SA1019 the Salsa20 core (HSalsa20, keystream from a block counter) is what crypto_secretbox is made of; nacl/secretbox uses this same package
	"golang.org/x/crypto/salsa20/salsa"
)

// Overhead is what a box adds to its message: the Poly1305 tag.
const Overhead = 16

// setup derives the XSalsa20 subkey and the Salsa20 nonce (counter 0).
func setup(subKey *[32]byte, counter *[16]byte, nonce *[24]byte, key *[32]byte) {
	var hNonce [16]byte
	copy(hNonce[:], nonce[:16])
	salsa.HSalsa20(subKey, &hNonce, key, &salsa.Sigma)
	copy(counter[:8], nonce[16:])
}

// firstBlock returns the keystream's block 0: the Poly1305 key, then 32
// bytes for the message's first 32.
func firstBlock(counter *[16]byte, subKey *[32]byte) (b [64]byte) {
	salsa.XORKeyStream(b[:], b[:], counter, subKey)
	return b
}

// grow returns in extended by n bytes (in place when it has room) and the
// n bytes added.
func grow(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// Seal appends the box of message (tag, then ciphertext) to out and
// returns the result. message must not overlap the appended part.
func Seal(out, message []byte, nonce *[24]byte, key *[32]byte) []byte {
	return Seal2(out, message, nil, nonce, key)
}

// Seal2 is Seal of the message a followed by b, read where they are (a
// small head and a large body need not be joined first). Neither may
// overlap the appended part.
func Seal2(out, a, b []byte, nonce *[24]byte, key *[32]byte) []byte {
	var subKey [32]byte
	var counter [16]byte
	setup(&subKey, &counter, nonce, key)
	fb := firstBlock(&counter, &subKey)
	var polyKey [32]byte
	copy(polyKey[:], fb[:32])

	ret, dst := grow(out, len(a)+len(b)+Overhead)
	tagOut := dst[:Overhead]
	ct := dst[Overhead:]
	// The head: a, then as much of b as ends it on a keystream block
	// boundary (32 bytes of block 0, then whole blocks), copied into place
	// and encrypted there; the rest of b is encrypted from where it is.
	head := 32
	if len(a) > 32 {
		head += (len(a) - 32 + 63) &^ 63
	}
	head = min(head, len(a)+len(b))
	nb := max(head-len(a), 0)
	copy(ct, a)
	copy(ct[len(a):head], b[:nb])
	n := min(head, 32)
	for i := range n {
		ct[i] ^= fb[32+i]
	}
	counter[8] = 1
	xorKeyStream(ct[n:head], ct[n:head], &counter, &subKey)
	if rest := b[nb:]; len(rest) > 0 {
		binary.LittleEndian.PutUint64(counter[8:], 1+uint64(head-32)/64)
		xorKeyStream(ct[head:], rest, &counter, &subKey)
	}

	var tag [Overhead]byte
	polySum(&tag, ct, &polyKey)
	copy(tagOut, tag[:])
	wipe(subKey[:])
	wipe(polyKey[:])
	return ret
}

// Open checks box (tag, then ciphertext) and appends its message to out;
// false (and out untouched beyond its length) if the box does not hold.
// box must not overlap the appended part.
func Open(out, box []byte, nonce *[24]byte, key *[32]byte) ([]byte, bool) {
	if len(box) < Overhead {
		return nil, false
	}
	var subKey [32]byte
	var counter [16]byte
	setup(&subKey, &counter, nonce, key)
	defer wipe(subKey[:])
	fb := firstBlock(&counter, &subKey)
	var polyKey [32]byte
	copy(polyKey[:], fb[:32])
	var tag [Overhead]byte
	copy(tag[:], box[:Overhead])
	ok := polyVerify(&tag, box[Overhead:], &polyKey)
	wipe(polyKey[:])
	if !ok {
		return nil, false
	}
	ct := box[Overhead:]
	ret, dst := grow(out, len(ct))
	n := min(len(ct), 32)
	for i, x := range ct[:n] {
		dst[i] = fb[32+i] ^ x
	}
	counter[8] = 1
	xorKeyStream(dst[n:], ct[n:], &counter, &subKey)
	return ret, true
}

// xorKeyStream is salsa.XORKeyStream: in xored with the Salsa20/20
// keystream of key from counter (8-byte nonce, then the 64-bit
// little-endian block number), into out.
func xorKeyStream(out, in []byte, counter *[16]byte, key *[32]byte) {
	if len(out) < len(in) {
		panic("secretbox: output smaller than input")
	}
	if n := len(in) &^ 1023; useAVX512 && n > 0 {
		block := binary.LittleEndian.Uint64(counter[8:])
		// The vector code counts in the low word only: use it when no
		// lane carries into the high word (never, for a box).
		if uint64(uint32(block))+uint64(n/64) <= 1<<32 {
			st := state(counter, key)
			salsa16x(&out[0], &in[0], n, &st)
			var c [16]byte
			copy(c[:8], counter[:8])
			binary.LittleEndian.PutUint64(c[8:], block+uint64(n/64))
			in, out, counter = in[n:], out[n:], &c
		}
	}
	if len(in) > 0 {
		salsa.XORKeyStream(out[:len(in)], in, counter, key)
	}
}

// state is the Salsa20 input: constants, key, nonce, block counter.
func state(counter *[16]byte, key *[32]byte) (s [16]uint32) {
	le := binary.LittleEndian
	s[0], s[5], s[10], s[15] = le.Uint32(salsa.Sigma[0:]), le.Uint32(salsa.Sigma[4:]), le.Uint32(salsa.Sigma[8:]), le.Uint32(salsa.Sigma[12:])
	for i := range 4 {
		s[1+i] = le.Uint32(key[4*i:])
		s[11+i] = le.Uint32(key[16+4*i:])
	}
	for i := range 4 {
		s[6+i] = le.Uint32(counter[4*i:])
	}
	return s
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// Stream is a box whose tag has been checked (OpenStream), decrypted piece
// by piece where the plaintext is wanted: no plaintext exists before the
// whole box is known to be genuine, and none is written twice.
type Stream struct {
	subKey [32]byte
	nonce  [8]byte
	first  [64]byte // keystream block 0 (bytes 32-63 cover the message's first 32)
}

// OpenStream checks box (tag, then ciphertext) and returns the stream that
// decrypts its ciphertext (XORAt); false if the box does not hold.
func OpenStream(box []byte, nonce *[24]byte, key *[32]byte) (s Stream, ok bool) {
	if len(box) < Overhead {
		return Stream{}, false
	}
	var counter [16]byte
	setup(&s.subKey, &counter, nonce, key)
	copy(s.nonce[:], counter[:8])
	s.first = firstBlock(&counter, &s.subKey)
	var polyKey [32]byte
	copy(polyKey[:], s.first[:32])
	var tag [Overhead]byte
	copy(tag[:], box[:Overhead])
	ok = polyVerify(&tag, box[Overhead:], &polyKey)
	wipe(polyKey[:])
	if !ok {
		s.Wipe()
		return Stream{}, false
	}
	return s, true
}

// XORAt decrypts src, the ciphertext of the message's bytes from off on,
// into dst (which may be src itself, or not overlap it).
func (s *Stream) XORAt(dst, src []byte, off uint64) {
	dst = dst[:len(src)]
	k := 32 + off // position in the keystream
	for len(src) > 0 && k < 64 {
		dst[0] = src[0] ^ s.first[k]
		dst, src, k = dst[1:], src[1:], k+1
	}
	if len(src) == 0 {
		return
	}
	if r := k % 64; r != 0 { // up to the next block boundary
		var blk [64]byte
		c := s.counter(k / 64)
		salsa.XORKeyStream(blk[:], blk[:], &c, &s.subKey)
		n := min(64-int(r), len(src))
		for i := range n {
			dst[i] = src[i] ^ blk[int(r)+i]
		}
		dst, src, k = dst[n:], src[n:], k+uint64(n)
	}
	if len(src) > 0 {
		c := s.counter(k / 64)
		xorKeyStream(dst, src, &c, &s.subKey)
	}
}

func (s *Stream) counter(block uint64) (c [16]byte) {
	copy(c[:8], s.nonce[:])
	binary.LittleEndian.PutUint64(c[8:], block)
	return c
}

// Wipe clears the stream's keys.
func (s *Stream) Wipe() {
	wipe(s.subKey[:])
	wipe(s.first[:])
}
