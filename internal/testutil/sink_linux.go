package testutil

import (
	"io"
	"net"
	"syscall"
)

// discard drops n bytes of the stream: what is buffered, then the rest
// in the kernel (recv with MSG_TRUNC: TCP discards the bytes without
// copying them to user space).
func (z *ZMTPDealer) discard(n uint64) error {
	k := min(n, uint64(z.br.Buffered()))
	z.br.Discard(int(k))
	n -= k
	if n == 0 {
		return nil
	}
	rc, err := z.C.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	if cap(z.trunc) == 0 {
		z.trunc = make([]byte, 1<<20) // never written: MSG_TRUNC
	}
	lowat := 1
	defer func() {
		if lowat != 1 { // the next header must wake the reader
			rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, 1) })
		}
	}()
	for n > 0 {
		var got int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			want := min(n, uint64(len(z.trunc)))
			got, _, rerr = syscall.Recvfrom(int(fd), z.trunc[:want], syscall.MSG_TRUNC)
			if rerr != syscall.EAGAIN {
				return true
			}
			// Nothing there yet: be woken when the rest of the chunk
			// is (the kernel caps it at half the receive buffer), not
			// for every burst of segments.
			if lowat != int(want) {
				lowat = int(want)
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, lowat)
			}
			return false
		})
		if err == nil {
			err = rerr
		}
		if err == nil && got == 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		n -= uint64(got)
	}
	return nil
}
