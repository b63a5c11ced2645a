package transport

import (
	"encoding/binary"
	"sync"
)

// Direct sends (issue 14). zmq4's Socket.Send makes a context with a timer
// per call, and a ROUTER's writer takes a socket-wide mutex, scans every
// connection and waits on a goroutine per write: sends to different peers
// never overlap and each one costs ~50 allocations. Every connection of
// this package is a gconn that zmq4 writes through (the transport hook), and
// after the handshake zmq4 writes nothing of its own (it sends no PINGs; the
// guard answers the peer's), so Router.Send and Dealer.Send write each
// message's ZMTP frame through the connection themselves, under the
// connection's own write lock: the bytes on the wire are what zmq4 would
// write (a header, then the body), sends to different peers run in
// parallel, and a small message leaves in one write instead of two.
// Receiving, accepting and the handshake stay zmq4's.

// smallMsgPool holds the buffers that join a small message's header and body.
var smallMsgPool = sync.Pool{New: func() any { b := make([]byte, 0, smallWrite); return &b }}

// appendMsgHeader appends the header of a final message frame of size n.
func appendMsgHeader(b []byte, n int) []byte {
	if n <= 255 {
		return append(b, 0, byte(n))
	}
	b = append(b, flagLong)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// sendMessage writes body as one single-frame ZMTP message. ok is false
// when zmq4 has not finished writing its side of the synthetic handshake
// yet (the caller then sends through zmq4, which orders itself after it).
func (c *gconn) sendMessage(body []byte) (ok bool, err error) {
	var hb [9]byte
	hdr := appendMsgHeader(hb[:0], len(body))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.swallow.done {
		return false, nil
	}
	if len(hdr)+len(body) <= smallWrite {
		// One write; what the queue keeps of it is copied (small writes
		// are coalesced into buffers it owns), so the buffer is reused.
		bp := smallMsgPool.Get().(*[]byte)
		b := append(append((*bp)[:0], hdr...), body...)
		_, err = c.writeLocked(b)
		*bp = b[:0]
		smallMsgPool.Put(bp)
		return true, err
	}
	if _, err = c.writeLocked(hdr); err != nil {
		return true, err
	}
	_, err = c.writeLocked(body)
	return true, err
}
