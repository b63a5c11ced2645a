//go:build !amd64 || purego

package secretbox

var useAVX512 = false

func salsa16x(out, in *byte, n int, state *[16]uint32) {
	panic("secretbox: no vector Salsa20 on this platform")
}
