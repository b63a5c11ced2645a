package secretbox

// Poly1305 (RFC 8439 section 2.5) for the box: the generic code is x/crypto's
// (golang.org/x/crypto/internal/poly1305, sum_generic.go, BSD licence),
// which handles short messages and tails; messages of polyVecMin bytes and
// more run their whole 128-byte chunks through poly8x (AVX-512) first.

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// polyVecMin: below this, setting up the powers of r costs more than the
// vector code saves.
const polyVecMin = 512

// polyState is the accumulator h (130 bits and a little, in three 64-bit
// limbs), the clamped r and s.
type polyState struct {
	h [3]uint64
	r [2]uint64
	s [2]uint64
}

// polyKeys is poly8x's input (its layout is the assembly's): r^8 in radix
// 2^26 (limbs 0-4, then 5 x limbs 1-4) for every lane, and the last
// chunk's multipliers lane by lane, in the same form.
type polyKeys struct {
	r8  [9]uint64
	fin [9][8]uint64
}

// laneBlock is the block of a chunk each lane takes (poly8x's unpacking).
var laneBlock = [8]int{0, 4, 1, 5, 2, 6, 3, 7}

func polyInit(key *[32]byte) polyState {
	var p polyState
	p.r[0] = binary.LittleEndian.Uint64(key[0:8]) & 0x0FFFFFFC0FFFFFFF
	p.r[1] = binary.LittleEndian.Uint64(key[8:16]) & 0x0FFFFFFC0FFFFFFC
	p.s[0] = binary.LittleEndian.Uint64(key[16:24])
	p.s[1] = binary.LittleEndian.Uint64(key[24:32])
	return p
}

// polySum is poly1305.Sum.
func polySum(tag *[16]byte, msg []byte, key *[32]byte) {
	p := polyInit(key)
	if useAVX512 && len(msg) >= polyVecMin {
		n := len(msg) &^ 127
		var k polyKeys
		p.vectorKeys(&k)
		var lanes [5][8]uint64
		poly8x(&lanes, &msg[0], n, &k)
		p.h = fold(&lanes)
		msg = msg[n:]
	}
	polyUpdate(&p, msg)
	polyFinal(tag, &p)
}

// polyVerify is poly1305.Verify.
func polyVerify(tag *[16]byte, msg []byte, key *[32]byte) bool {
	var got [16]byte
	polySum(&got, msg, key)
	return subtle.ConstantTimeCompare(got[:], tag[:]) == 1
}

// vectorKeys fills k with r^8 and the last chunk's multipliers: lane q
// holds block laneBlock[q] of each chunk, so its sum is multiplied by
// r^(8-laneBlock[q]) at the end.
func (p *polyState) vectorKeys(k *polyKeys) {
	var pow [9][5]uint64 // r^1 .. r^8 in radix 2^26
	h := [3]uint64{p.r[0], p.r[1], 0}
	for i := 1; i <= 8; i++ {
		if i > 1 {
			h = polyMul(h, p.r)
		}
		pow[i] = limbs26(reduce(h))
	}
	withFives := func(l [5]uint64) (v [9]uint64) {
		copy(v[:5], l[:])
		for i := 1; i < 5; i++ {
			v[4+i] = 5 * l[i]
		}
		return v
	}
	k.r8 = withFives(pow[8])
	for q, b := range laneBlock {
		for i, v := range withFives(pow[8-b]) {
			k.fin[i][q] = v
		}
	}
}

// fold adds up poly8x's lanes into h, carried into three 64-bit limbs.
func fold(lanes *[5][8]uint64) [3]uint64 {
	const m = 1<<26 - 1
	var l [5]uint64
	for i := range 5 {
		for _, v := range lanes[i] {
			l[i] += v
		}
	}
	for range 2 {
		var c uint64
		for i := range 5 {
			l[i] += c
			c = l[i] >> 26
			l[i] &= m
		}
		l[0] += 5 * c
	}
	var c uint64
	for i := range 4 { // l0-l3 below 2^26, l4 a little above at most
		l[i] += c
		c = l[i] >> 26
		l[i] &= m
	}
	l[4] += c
	return [3]uint64{l[0] | l[1]<<26 | l[2]<<52, l[2]>>12 | l[3]<<14 | l[4]<<40, l[4] >> 24}
}

// limbs26 splits h (below 2^130) into five 26-bit limbs.
func limbs26(h [3]uint64) [5]uint64 {
	const m = 1<<26 - 1
	return [5]uint64{h[0] & m, h[0] >> 26 & m, (h[0]>>52 | h[1]<<12) & m, h[1] >> 14 & m, (h[1]>>40 | h[2]<<24) & m}
}

const (
	p0 = 0xFFFFFFFFFFFFFFFB
	p1 = 0xFFFFFFFFFFFFFFFF
	p2 = 0x0000000000000003
)

// select64 returns x if v == 1 and y if v == 0, in constant time.
func select64(v, x, y uint64) uint64 { return ^(v-1)&x | (v-1)&y }

// reduce returns h mod p for h below 3p, in constant time.
func reduce(h [3]uint64) [3]uint64 {
	for range 2 {
		h0, b := bits.Sub64(h[0], p0, 0)
		h1, b := bits.Sub64(h[1], p1, b)
		h2, b := bits.Sub64(h[2], p2, b)
		h = [3]uint64{select64(b, h[0], h0), select64(b, h[1], h1), select64(b, h[2], h2)}
	}
	return h
}

// polyMul returns h * r mod p, partly reduced (x/crypto's updateGeneric
// without the message).
func polyMul(h [3]uint64, r [2]uint64) [3]uint64 {
	h0, h1, h2 := h[0], h[1], h[2]
	r0, r1 := r[0], r[1]
	h0r0hi, h0r0lo := bits.Mul64(h0, r0)
	h1r0hi, h1r0lo := bits.Mul64(h1, r0)
	_, h2r0lo := bits.Mul64(h2, r0)
	h0r1hi, h0r1lo := bits.Mul64(h0, r1)
	h1r1hi, h1r1lo := bits.Mul64(h1, r1)
	_, h2r1lo := bits.Mul64(h2, r1)
	// h2 is a few bits and r's top bits are clamped: no sum overflows.
	m1lo, c := bits.Add64(h1r0lo, h0r1lo, 0)
	m1hi, _ := bits.Add64(h1r0hi, h0r1hi, c)
	m2lo, c := bits.Add64(h2r0lo, h1r1lo, 0)
	m2hi, _ := bits.Add64(0, h1r1hi, c)
	t0 := h0r0lo
	t1, c := bits.Add64(m1lo, h0r0hi, 0)
	t2, c := bits.Add64(m2lo, m1hi, c)
	t3, _ := bits.Add64(h2r1lo, m2hi, c)
	// t = h*r; fold what is above 2^130 back in times 5 (4x + x).
	h0, h1, h2 = t0, t1, t2&3
	cc0, cc1 := t2&^3, t3
	h0, c = bits.Add64(h0, cc0, 0)
	h1, c = bits.Add64(h1, cc1, c)
	h2 += c
	cc0, cc1 = cc0>>2|cc1<<62, cc1>>2
	h0, c = bits.Add64(h0, cc0, 0)
	h1, c = bits.Add64(h1, cc1, c)
	h2 += c
	return [3]uint64{h0, h1, h2}
}

// polyUpdate absorbs msg: whole 16-byte blocks with 2^128 added, a last
// partial one padded with a 1 byte.
func polyUpdate(p *polyState, msg []byte) {
	h := p.h
	for len(msg) > 0 {
		var c uint64
		if len(msg) >= 16 {
			h[0], c = bits.Add64(h[0], binary.LittleEndian.Uint64(msg[0:8]), 0)
			h[1], c = bits.Add64(h[1], binary.LittleEndian.Uint64(msg[8:16]), c)
			h[2] += c + 1
			msg = msg[16:]
		} else {
			var buf [16]byte
			copy(buf[:], msg)
			buf[len(msg)] = 1
			h[0], c = bits.Add64(h[0], binary.LittleEndian.Uint64(buf[0:8]), 0)
			h[1], c = bits.Add64(h[1], binary.LittleEndian.Uint64(buf[8:16]), c)
			h[2] += c
			msg = nil
		}
		h = polyMul(h, p.r)
	}
	p.h = h
}

// polyFinal writes (h mod p) + s mod 2^128.
func polyFinal(tag *[16]byte, p *polyState) {
	h0, h1, h2 := p.h[0], p.h[1], p.h[2]
	m0, b := bits.Sub64(h0, p0, 0)
	m1, b := bits.Sub64(h1, p1, b)
	_, b = bits.Sub64(h2, p2, b)
	h0 = select64(b, h0, m0)
	h1 = select64(b, h1, m1)
	h0, c := bits.Add64(h0, p.s[0], 0)
	h1, _ = bits.Add64(h1, p.s[1], c)
	binary.LittleEndian.PutUint64(tag[0:8], h0)
	binary.LittleEndian.PutUint64(tag[8:16], h1)
}
