//go:build !linux

package transport

import (
	"net"
	"os"
)

// sendFile writes n bytes of f at off to w (read and written here),
// calling progress after each write. io.ErrUnexpectedEOF: f ended first.
func sendFile(w net.Conn, f *os.File, off, n int64, progress func()) (int64, error) {
	return copySection(w, f, off, n, progress)
}
