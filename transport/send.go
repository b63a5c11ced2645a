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
	return c.sendSplit(body, nil, nil)
}

// lent is a tail handed over with its release (Router.SendSplitOwned).
type lent struct {
	release func()
}

// done releases the tail unless the write queue took it (then the writer
// releases it once written). Safe on nil.
func (l *lent) done() {
	if l != nil && l.release != nil {
		f := l.release
		l.release = nil
		f()
	}
}

// sendSplit is sendMessage of the body head followed by tail: a large tail
// (a chunk) is written as is, never joined to the head (Router.SendSplit).
// With l, a tail that must wait is queued by reference and l's release
// passes to the queue (Router.SendSplitOwned).
func (c *gconn) sendSplit(head, tail []byte, l *lent) (ok bool, err error) {
	var hb [9]byte
	hdr := appendMsgHeader(hb[:0], len(head)+len(tail))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.swallow.done {
		return false, nil
	}
	parts := [3][]byte{hdr, head, tail}
	switch n := len(hdr) + len(head) + len(tail); {
	case n <= smallWrite || (n <= joinWrite && !c.opt.KeepBodies):
		// The whole message in one write (a small file's CHEEZBURGER is a
		// little over 4 KiB: it would otherwise leave as two writes, often
		// two TCP segments). What the queue keeps of it is copied (small
		// writes are coalesced into buffers it owns, larger ones copied
		// unless KeepBodies), so the buffer is reused.
		bp := smallMsgPool.Get().(*[]byte)
		b := append(append(append((*bp)[:0], hdr...), head...), tail...)
		defer func() { *bp = b[:0]; smallMsgPool.Put(bp) }()
		parts = [3][]byte{b}
	case len(tail) <= smallWrite:
		// A small tail is not worth a write of its own.
		parts = [3][]byte{hdr, append(head[:len(head):len(head)], tail...)}
	case len(hdr)+len(head) <= smallWrite:
		// The frame header and a small head leave in one write.
		bp := smallMsgPool.Get().(*[]byte)
		b := append(append((*bp)[:0], hdr...), head...)
		defer func() { *bp = b[:0]; smallMsgPool.Put(bp) }()
		parts = [3][]byte{b, nil, tail}
	}
	for i, p := range parts {
		if len(p) > 0 {
			if i == 2 {
				c.lend = l // the queue keeps the tail, and takes l's release
			}
			_, err = c.writeLocked(p)
			c.lend = nil
			if err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// joinWrite is the largest message written in one write whatever its
// parts: copying this much costs less than a second system call.
const joinWrite = 16 << 10

// Hold makes peer's connection keep what is sent to it in its write queue,
// unwritten, until Flush (or until holdMax bytes wait, or a file section,
// a WaitQueued or a write that is not held wakes the writer): the messages
// of a burst (a dispatch of many small files) leave in one write of up to
// holdMax bytes instead of one write each (issue 14). Order is kept (the
// queue is the connection's only way out while it holds anything), so are
// the queue's limit, WaitQueued and CURVE's boxing per message (the writer
// boxes in queue order). Every Hold needs its Flush (interp.Batcher). A
// peer that is unknown or has no write queue is left as it is.
func (r *Router) Hold(peer string) {
	if c := r.conn(peer); c != nil && c.queue != nil {
		c.wmu.Lock()
		c.held = true
		c.wmu.Unlock()
	}
}

// Flush ends a Hold: what it kept back is written.
func (r *Router) Flush(peer string) {
	if c := r.conn(peer); c != nil && c.queue != nil {
		c.wmu.Lock()
		held := c.held
		c.held = false
		c.wmu.Unlock()
		if held {
			c.queue.kick()
		}
	}
}
