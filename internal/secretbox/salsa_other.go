//go:build !amd64 || purego

package secretbox

var useAVX512 = false

func salsa16x(out, in *byte, n int, state *[16]uint32) {
	panic("secretbox: no vector Salsa20 on this platform")
}

func poly8x(lanes *[5][8]uint64, msg *byte, n int, keys *polyKeys) {
	panic("secretbox: no vector Poly1305 on this platform")
}
