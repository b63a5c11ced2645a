//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// rawBufSize is the read/write buffer of the raw TCP copy.
const rawBufSize = 1 << 20

// copyPlain moves r to w through one buffer with plain Read and Write calls.
// It deliberately avoids io.Copy, which would take the sendfile/splice fast
// paths of *os.File and *net.TCPConn: the baseline is a user-space copy with
// 1 MiB buffers, the same kind of work a protocol implementation does.
func copyPlain(w io.Writer, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		nr, rerr := r.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// rawTCPCopy sends the file src over a loopback TCP connection and writes it
// to dst, like a file-transfer tool reduced to its transport: one in-process
// server that reads src and writes the socket, one client that reads the
// socket and writes dst (no fsync, as for every contender). It returns the
// time from the client's dial to dst closed.
func rawTCPCopy(ctx context.Context, src, dst string) (elapsed time.Duration, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- serveOneFile(ln, src)
	}()
	// Closing the listener unblocks Accept if the client fails before
	// dialing; the server goroutine is always joined before returning.
	defer func() {
		ln.Close()
		if e := <-srvErr; e != nil && err == nil {
			elapsed, err = 0, e
		}
	}()

	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stopCancel := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopCancel()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	_, err = copyPlain(f, conn, make([]byte, rawBufSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	elapsed = time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("raw TCP copy: %w", err)
	}
	return elapsed, nil
}

func serveOneFile(ln net.Listener, src string) error {
	conn, err := ln.Accept()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
	defer conn.Close()
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := copyPlain(conn, f, make([]byte, rawBufSize)); err != nil {
		return fmt.Errorf("raw TCP server: %w", err)
	}
	return nil
}
