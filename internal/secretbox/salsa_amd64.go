//go:build !purego

package secretbox

import "golang.org/x/sys/cpu"

// useAVX512: the CPU and the OS give us AVX-512 F (VPROLD and 32 vector
// registers are all salsa16x needs).
var useAVX512 = cpu.X86.HasAVX512F

// salsa16x xors n bytes (a multiple of 1024) of in with the Salsa20/20
// keystream of state (the 16 input words; word 8 is the low half of the
// block counter, which must not carry into word 9 within the call) into
// out; out and in are the same or do not overlap.
//
//go:noescape
func salsa16x(out, in *byte, n int, state *[16]uint32)

// poly8x runs Poly1305 over n bytes (a multiple of 128, at least 128) of
// msg in 8 lanes and leaves each lane's limbs (radix 2^26, each below
// 2^26 + 2^12) in lanes, to be folded by the caller; see polyKeys.
//
//go:noescape
func poly8x(lanes *[5][8]uint64, msg *byte, n int, keys *polyKeys)
