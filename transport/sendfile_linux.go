//go:build linux

package transport

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sendFile writes n bytes of f at off to w with sendfile(2) (no copy
// through user space), under w's write deadline, which progress renews
// (w.SetWriteDeadline) after each writeBatch bytes. io.ErrUnexpectedEOF: f
// ended first (what was written is counted).
func sendFile(w net.Conn, f *os.File, off, n int64, progress func()) (int64, error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return copySection(w, f, off, n, progress)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return copySection(w, f, off, n, progress)
	}
	src := int(f.Fd())
	var done, mark int64
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for done < n {
			o := off + done
			m, e := syscall.Sendfile(int(fd), src, &o, int(n-done))
			if m > 0 {
				done += int64(m)
				if done-mark >= writeBatch {
					mark = done
					progress()
				}
			}
			switch {
			case e == syscall.EAGAIN:
				return false // wait until the socket takes more
			case e == syscall.EINTR:
			case e != nil:
				serr = os.NewSyscallError("sendfile", e)
				return true
			case m == 0:
				serr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if serr != nil {
		return done, serr
	}
	return done, err
}
