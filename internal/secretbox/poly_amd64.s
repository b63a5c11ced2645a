//go:build !purego

#include "textflag.h"

// Poly1305 over 8 blocks (128 bytes) at a time with AVX-512: each of the 8
// qword lanes of Z0-Z4 holds an accumulator in radix 2^26 (limbs h0-h4)
// and takes every 8th block, h = (h + m) * r^8, the last chunk multiplied
// by r^k per lane instead, so the lanes add up to the message's Horner sum
// (the caller folds them). Blocks are unpacked in the order 0,4,1,5,2,6,
// 3,7 of a chunk (the caller's final multipliers follow it).

DATA mask26<>+0x00(SB)/8, $0x3ffffff
GLOBL mask26<>(SB), RODATA|NOPTR, $8
DATA hibit<>+0x00(SB)/8, $0x1000000
GLOBL hibit<>(SB), RODATA|NOPTR, $8

// MSG adds the next 8 blocks (radix 2^26, with 2^128) to Z0-Z4.
#define MSG \
	VMOVDQU64   0(SI), Z19; \
	VMOVDQU64   64(SI), Z20; \
	VPUNPCKLQDQ Z20, Z19, Z21; \
	VPUNPCKHQDQ Z20, Z19, Z22; \
	VPANDQ      Z24, Z21, Z19; \
	VPSRLQ      $26, Z21, Z23; \
	VPANDQ      Z24, Z23, Z23; \
	VPSRLQ      $52, Z21, Z20; \
	VPSLLQ      $12, Z22, Z21; \
	VPORQ       Z21, Z20, Z20; \
	VPANDQ      Z24, Z20, Z20; \
	VPSRLQ      $14, Z22, Z21; \
	VPANDQ      Z24, Z21, Z21; \
	VPSRLQ      $40, Z22, Z22; \
	VPORQ       Z25, Z22, Z22; \
	VPADDQ      Z19, Z0, Z0; \
	VPADDQ      Z23, Z1, Z1; \
	VPADDQ      Z20, Z2, Z2; \
	VPADDQ      Z21, Z3, Z3; \
	VPADDQ      Z22, Z4, Z4

// MUL: Z5-Z9 = h * r, r in Z10-Z14 (limbs) and Z15-Z18 (5 x limbs 1-4).
#define MUL \
	VPMULUDQ Z10, Z0, Z5; \
	VPMULUDQ Z18, Z1, Z19; VPADDQ Z19, Z5, Z5; \
	VPMULUDQ Z17, Z2, Z19; VPADDQ Z19, Z5, Z5; \
	VPMULUDQ Z16, Z3, Z19; VPADDQ Z19, Z5, Z5; \
	VPMULUDQ Z15, Z4, Z19; VPADDQ Z19, Z5, Z5; \
	VPMULUDQ Z11, Z0, Z6; \
	VPMULUDQ Z10, Z1, Z19; VPADDQ Z19, Z6, Z6; \
	VPMULUDQ Z18, Z2, Z19; VPADDQ Z19, Z6, Z6; \
	VPMULUDQ Z17, Z3, Z19; VPADDQ Z19, Z6, Z6; \
	VPMULUDQ Z16, Z4, Z19; VPADDQ Z19, Z6, Z6; \
	VPMULUDQ Z12, Z0, Z7; \
	VPMULUDQ Z11, Z1, Z19; VPADDQ Z19, Z7, Z7; \
	VPMULUDQ Z10, Z2, Z19; VPADDQ Z19, Z7, Z7; \
	VPMULUDQ Z18, Z3, Z19; VPADDQ Z19, Z7, Z7; \
	VPMULUDQ Z17, Z4, Z19; VPADDQ Z19, Z7, Z7; \
	VPMULUDQ Z13, Z0, Z8; \
	VPMULUDQ Z12, Z1, Z19; VPADDQ Z19, Z8, Z8; \
	VPMULUDQ Z11, Z2, Z19; VPADDQ Z19, Z8, Z8; \
	VPMULUDQ Z10, Z3, Z19; VPADDQ Z19, Z8, Z8; \
	VPMULUDQ Z18, Z4, Z19; VPADDQ Z19, Z8, Z8; \
	VPMULUDQ Z14, Z0, Z9; \
	VPMULUDQ Z13, Z1, Z19; VPADDQ Z19, Z9, Z9; \
	VPMULUDQ Z12, Z2, Z19; VPADDQ Z19, Z9, Z9; \
	VPMULUDQ Z11, Z3, Z19; VPADDQ Z19, Z9, Z9; \
	VPMULUDQ Z10, Z4, Z19; VPADDQ Z19, Z9, Z9

// CARRY: Z0-Z4 = Z5-Z9 with the carries propagated (2^130 = 5 mod p).
#define CARRY \
	VPSRLQ $26, Z5, Z19; VPANDQ Z24, Z5, Z0; VPADDQ Z19, Z6, Z6; \
	VPSRLQ $26, Z6, Z19; VPANDQ Z24, Z6, Z1; VPADDQ Z19, Z7, Z7; \
	VPSRLQ $26, Z7, Z19; VPANDQ Z24, Z7, Z2; VPADDQ Z19, Z8, Z8; \
	VPSRLQ $26, Z8, Z19; VPANDQ Z24, Z8, Z3; VPADDQ Z19, Z9, Z9; \
	VPSRLQ $26, Z9, Z19; VPANDQ Z24, Z9, Z4; \
	VPSLLQ $2, Z19, Z20; VPADDQ Z20, Z19, Z19; VPADDQ Z19, Z0, Z0; \
	VPSRLQ $26, Z0, Z19; VPANDQ Z24, Z0, Z0; VPADDQ Z19, Z1, Z1

// func poly8x(lanes *[5][8]uint64, msg *byte, n int, keys *polyKeys)
TEXT ·poly8x(SB), NOSPLIT, $0-32
	MOVQ lanes+0(FP), DI
	MOVQ msg+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ keys+24(FP), AX
	VPBROADCASTQ mask26<>(SB), Z24
	VPBROADCASTQ hibit<>(SB), Z25
	VPBROADCASTQ 0(AX), Z10
	VPBROADCASTQ 8(AX), Z11
	VPBROADCASTQ 16(AX), Z12
	VPBROADCASTQ 24(AX), Z13
	VPBROADCASTQ 32(AX), Z14
	VPBROADCASTQ 40(AX), Z15
	VPBROADCASTQ 48(AX), Z16
	VPBROADCASTQ 56(AX), Z17
	VPBROADCASTQ 64(AX), Z18
	VPXORQ       Z0, Z0, Z0
	VPXORQ       Z1, Z1, Z1
	VPXORQ       Z2, Z2, Z2
	VPXORQ       Z3, Z3, Z3
	VPXORQ       Z4, Z4, Z4

loop:
	CMPQ CX, $128
	JBE  last
	MSG
	MUL
	CARRY
	ADDQ $128, SI
	SUBQ $128, CX
	JMP  loop

last:
	MSG
	// the final multipliers, lane by lane
	VMOVDQU64 72(AX), Z10
	VMOVDQU64 136(AX), Z11
	VMOVDQU64 200(AX), Z12
	VMOVDQU64 264(AX), Z13
	VMOVDQU64 328(AX), Z14
	VMOVDQU64 392(AX), Z15
	VMOVDQU64 456(AX), Z16
	VMOVDQU64 520(AX), Z17
	VMOVDQU64 584(AX), Z18
	MUL
	CARRY
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	VMOVDQU64 Z4, 256(DI)
	VZEROUPPER
	RET
