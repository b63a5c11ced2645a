//go:build !purego

#include "textflag.h"

// Salsa20/20 keystream, 16 blocks (1024 bytes) at a time with AVX-512:
// Z0-Z15 hold state word i of 16 consecutive blocks (lane j = block
// counter + j), so the rounds are plain vector adds, rotates (VPROLD) and
// xors; a 16x16 transpose (dword and qword unpacks, then 128-bit lane
// shuffles) turns the words back into blocks, which are xored with the
// input.

DATA lanes<>+0x00(SB)/4, $0
DATA lanes<>+0x04(SB)/4, $1
DATA lanes<>+0x08(SB)/4, $2
DATA lanes<>+0x0c(SB)/4, $3
DATA lanes<>+0x10(SB)/4, $4
DATA lanes<>+0x14(SB)/4, $5
DATA lanes<>+0x18(SB)/4, $6
DATA lanes<>+0x1c(SB)/4, $7
DATA lanes<>+0x20(SB)/4, $8
DATA lanes<>+0x24(SB)/4, $9
DATA lanes<>+0x28(SB)/4, $10
DATA lanes<>+0x2c(SB)/4, $11
DATA lanes<>+0x30(SB)/4, $12
DATA lanes<>+0x34(SB)/4, $13
DATA lanes<>+0x38(SB)/4, $14
DATA lanes<>+0x3c(SB)/4, $15
GLOBL lanes<>(SB), RODATA|NOPTR, $64

DATA sixteen<>+0x00(SB)/4, $16
GLOBL sixteen<>(SB), RODATA|NOPTR, $4

// QR is Salsa20's quarter round on (a, b, c, d) with temporary t:
// b ^= (a+d)<<<7; c ^= (b+a)<<<9; d ^= (c+b)<<<13; a ^= (d+c)<<<18.
#define QR(a, b, c, d, t) \
	VPADDD a, d, t; VPROLD $7, t, t; VPXORD t, b, b; \
	VPADDD b, a, t; VPROLD $9, t, t; VPXORD t, c, c; \
	VPADDD c, b, t; VPROLD $13, t, t; VPXORD t, d, d; \
	VPADDD d, c, t; VPROLD $18, t, t; VPXORD t, a, a

// TRANS4 turns rows a, b, c, d into, in each 128-bit lane L, the 4x4
// transpose: a = [a0 b0 c0 d0], b = [a1 b1 c1 d1], ... of that lane.
#define TRANS4(a, b, c, d) \
	VPUNPCKLDQ b, a, Z16; \
	VPUNPCKHDQ b, a, Z17; \
	VPUNPCKLDQ d, c, Z18; \
	VPUNPCKHDQ d, c, Z19; \
	VPUNPCKLQDQ Z18, Z16, a; \
	VPUNPCKHQDQ Z18, Z16, b; \
	VPUNPCKLQDQ Z19, Z17, c; \
	VPUNPCKHQDQ Z19, Z17, d

// BLOCKS gathers lane L of a, b, c, d (words 0-3, 4-7, 8-11, 12-15 of
// block 4L+k) into whole blocks, xors them with the input and stores them.
#define BLOCKS(a, b, c, d, off) \
	VSHUFI32X4 $0x44, b, a, Z16; \
	VSHUFI32X4 $0xEE, b, a, Z17; \
	VSHUFI32X4 $0x44, d, c, Z18; \
	VSHUFI32X4 $0xEE, d, c, Z19; \
	VSHUFI32X4 $0x88, Z18, Z16, a; \
	VSHUFI32X4 $0xDD, Z18, Z16, b; \
	VSHUFI32X4 $0x88, Z19, Z17, c; \
	VSHUFI32X4 $0xDD, Z19, Z17, d; \
	VPXORD (off)(SI), a, a; \
	VPXORD (256+off)(SI), b, b; \
	VPXORD (512+off)(SI), c, c; \
	VPXORD (768+off)(SI), d, d; \
	VMOVDQU32 a, (off)(DI); \
	VMOVDQU32 b, (256+off)(DI); \
	VMOVDQU32 c, (512+off)(DI); \
	VMOVDQU32 d, (768+off)(DI)

// func salsa16x(out, in *byte, n int, state *[16]uint32)
TEXT ·salsa16x(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ state+24(FP), AX
	VPBROADCASTD 32(AX), Z28
	VPADDD lanes<>(SB), Z28, Z28
	VPBROADCASTD sixteen<>(SB), Z29

loop:
	CMPQ CX, $1024
	JB   done
	VPBROADCASTD 0(AX), Z0
	VPBROADCASTD 4(AX), Z1
	VPBROADCASTD 8(AX), Z2
	VPBROADCASTD 12(AX), Z3
	VPBROADCASTD 16(AX), Z4
	VPBROADCASTD 20(AX), Z5
	VPBROADCASTD 24(AX), Z6
	VPBROADCASTD 28(AX), Z7
	VMOVDQA64    Z28, Z8
	VPBROADCASTD 36(AX), Z9
	VPBROADCASTD 40(AX), Z10
	VPBROADCASTD 44(AX), Z11
	VPBROADCASTD 48(AX), Z12
	VPBROADCASTD 52(AX), Z13
	VPBROADCASTD 56(AX), Z14
	VPBROADCASTD 60(AX), Z15
	MOVQ         $10, DX

rounds:
	// column round
	QR(Z0, Z4, Z8, Z12, Z16)
	QR(Z5, Z9, Z13, Z1, Z17)
	QR(Z10, Z14, Z2, Z6, Z18)
	QR(Z15, Z3, Z7, Z11, Z19)
	// row round
	QR(Z0, Z1, Z2, Z3, Z16)
	QR(Z5, Z6, Z7, Z4, Z17)
	QR(Z10, Z11, Z8, Z9, Z18)
	QR(Z15, Z12, Z13, Z14, Z19)
	DECQ DX
	JNZ  rounds

	// add the input state
	VPBROADCASTD 0(AX), Z16
	VPADDD       Z16, Z0, Z0
	VPBROADCASTD 4(AX), Z16
	VPADDD       Z16, Z1, Z1
	VPBROADCASTD 8(AX), Z16
	VPADDD       Z16, Z2, Z2
	VPBROADCASTD 12(AX), Z16
	VPADDD       Z16, Z3, Z3
	VPBROADCASTD 16(AX), Z16
	VPADDD       Z16, Z4, Z4
	VPBROADCASTD 20(AX), Z16
	VPADDD       Z16, Z5, Z5
	VPBROADCASTD 24(AX), Z16
	VPADDD       Z16, Z6, Z6
	VPBROADCASTD 28(AX), Z16
	VPADDD       Z16, Z7, Z7
	VPADDD       Z28, Z8, Z8
	VPBROADCASTD 36(AX), Z16
	VPADDD       Z16, Z9, Z9
	VPBROADCASTD 40(AX), Z16
	VPADDD       Z16, Z10, Z10
	VPBROADCASTD 44(AX), Z16
	VPADDD       Z16, Z11, Z11
	VPBROADCASTD 48(AX), Z16
	VPADDD       Z16, Z12, Z12
	VPBROADCASTD 52(AX), Z16
	VPADDD       Z16, Z13, Z13
	VPBROADCASTD 56(AX), Z16
	VPADDD       Z16, Z14, Z14
	VPBROADCASTD 60(AX), Z16
	VPADDD       Z16, Z15, Z15

	TRANS4(Z0, Z1, Z2, Z3)
	TRANS4(Z4, Z5, Z6, Z7)
	TRANS4(Z8, Z9, Z10, Z11)
	TRANS4(Z12, Z13, Z14, Z15)

	BLOCKS(Z0, Z4, Z8, Z12, 0)
	BLOCKS(Z1, Z5, Z9, Z13, 64)
	BLOCKS(Z2, Z6, Z10, Z14, 128)
	BLOCKS(Z3, Z7, Z11, Z15, 192)

	VPADDD Z29, Z28, Z28
	ADDQ   $1024, SI
	ADDQ   $1024, DI
	SUBQ   $1024, CX
	JMP    loop

done:
	VZEROUPPER
	RET
