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
	for n > 0 {
		var got int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			got, _, rerr = syscall.Recvfrom(int(fd), z.trunc[:min(n, uint64(len(z.trunc)))], syscall.MSG_TRUNC)
			return rerr != syscall.EAGAIN
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
