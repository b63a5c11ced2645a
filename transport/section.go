package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// File sections (issue 14). A server sends a large file chunk by chunk;
// reading each chunk into a buffer and writing the buffer costs a copy
// and a pass over the bytes. A chunk whose digest the sender knows
// without reading it can instead go as a section of the file: the message
// head is written as bytes, the chunk straight from the file's pages
// (sendFile: mapped and written, on Linux), by the connection's writer
// goroutine, in order with the connection's other writes. CURVE
// connections box every byte and keep reading the section into a buffer.

// Section is the last n bytes of a message body, taken from File at Off
// when the message is written. Release, if set, is called exactly once,
// when the bytes were written or will never be (an error, a connection
// cut with the section still queued): File must stay open until then.
type Section struct {
	File    *os.File
	Off, N  int64
	Release func()
}

func (s *Section) release() {
	if s.Release != nil {
		f := s.Release
		s.Release = nil
		f()
	}
}

// SendSection is SendSplit whose tail is sec: one message of head followed
// by sec.N bytes of sec.File from sec.Off, written from the file's pages
// where the connection allows it (NULL or PLAIN security; CURVE reads the section
// and boxes it). A file shorter than the section when it is written gives
// zeros in place of what is missing (the frame must stay whole; a receiver
// that checks the chunk's digest refuses it). sec is released whatever
// the outcome.
func (r *Router) SendSection(peer string, head []byte, sec Section) error {
	defer sec.release() // unless the queue took it
	if sec.N < 0 || sec.Off < 0 {
		return fmt.Errorf("transport: section of %d bytes at %d", sec.N, sec.Off)
	}
	c, err := r.sendConn(peer)
	if err != nil {
		return err
	}
	ok, err := c.sendSection(head, &sec)
	if err != nil {
		return fmt.Errorf("transport: send to %q: %w", peer, err)
	}
	if ok {
		return nil
	}
	tail, err := readSection(&sec)
	if err != nil {
		return fmt.Errorf("transport: send to %q: %w", peer, err)
	}
	sec.release()
	return r.sendSplit(peer, head, tail, nil)
}

// readSection reads a section into a new buffer (zeros past the file's end).
func readSection(s *Section) ([]byte, error) {
	b := make([]byte, s.N)
	n, err := s.File.ReadAt(b, s.Off)
	if err != nil && !(errors.Is(err, io.EOF) && n < len(b)) {
		return nil, fmt.Errorf("read section: %w", err)
	}
	return b, nil
}

// sendSection writes the frame header and head, then queues the section
// (or writes it, without a queue). ok is false when the section must be
// read and sent as bytes instead: CURVE, or zmq4 not done with its side
// of the synthetic handshake yet.
func (c *gconn) sendSection(head []byte, s *Section) (ok bool, err error) {
	var hb [9]byte
	hdr := appendMsgHeader(hb[:0], len(head)+int(s.N))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.swallow.done || c.curve != nil {
		return false, nil
	}
	if len(hdr)+len(head) <= smallWrite {
		bp := smallMsgPool.Get().(*[]byte)
		b := append(append((*bp)[:0], hdr...), head...)
		_, err = c.writeLocked(b)
		*bp = b[:0]
		smallMsgPool.Put(bp)
	} else if _, err = c.writeLocked(hdr); err == nil {
		_, err = c.writeLocked(head)
	}
	if err != nil {
		return true, err
	}
	if c.queue != nil {
		err = c.queue.writeSection(c, s)
	} else {
		err = c.sectionOut(s, nil)
		s.release()
	}
	if err != nil {
		return true, err
	}
	c.owner.counters().add(func(st *Stats) { st.Sections++ })
	c.outbound.skipBody(uint64(s.N))
	if c.pendingPong != nil && c.outbound.boundary() {
		pong := c.pendingPong
		c.pendingPong = nil
		if _, err := c.emit(pong); err != nil {
			return true, err
		}
	}
	return true, nil
}

// skipBody accounts for n body bytes of the current frame written
// elsewhere (a section).
func (o *outTrack) skipBody(n uint64) { o.body -= min(n, o.body) }

// writeSection queues a section; c.wmu held. The queue takes its release.
func (q *writeQueue) writeSection(c *gconn, s *Section) error {
	q.mu.Lock()
	if q.closed || c.isClosed() {
		q.mu.Unlock()
		return c.closedErr()
	}
	if size := q.size + int(s.N); size > q.limit {
		q.mu.Unlock()
		c.cut(ReasonWriteOverflow, fmt.Errorf("%d bytes queued, limit %d", size, q.limit))
		return c.closedErr()
	}
	sec := &Section{File: s.File, Off: s.Off, N: s.N}
	q.bufs = append(q.bufs, qbuf{sec: sec, release: s.Release})
	s.Release = nil
	q.size += int(s.N)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// sectionOut writes a section to the connection (the queue's writer, or a
// direct send with c.wmu held), each writeBatch bytes under WriteTimeout as
// the queue's batches are, telling q (if any) what drained. A file that
// ends early is padded with zeros. An error cuts the connection.
func (c *gconn) sectionOut(s *Section, q *writeQueue) error {
	if c.isClosed() {
		return c.closedErr()
	}
	off, left := s.Off, s.N
	short := false
	deadline := func() { c.raw.SetWriteDeadline(time.Now().Add(c.opt.WriteTimeout)) }
	for left > 0 {
		deadline()
		var m int64
		var err error
		if short {
			var n int
			n, err = c.raw.Write(zeroPad[:min(left, int64(len(zeroPad)))])
			m = int64(n)
		} else {
			m, err = sendFile(c.raw, s.File, off, left, deadline)
		}
		off += m
		left -= m
		if q != nil && m > 0 {
			q.drained(int(m))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && !short {
			short = true
			c.owner.counters().add(func(st *Stats) { st.SectionsShort++ })
			c.log.Warn("file shorter than the section being sent; zeros sent in place of the rest",
				"peer", c.remote, "file", s.File.Name(), "missing", left)
			continue
		}
		if err != nil {
			c.cut(writeReason(err), err)
			return c.closedErr()
		}
	}
	return nil
}

// zeroPad stands in for the bytes of a section past its file's end.
var zeroPad [64 << 10]byte

// copySection is sendFile by reading into a buffer and writing it.
func copySection(w net.Conn, f *os.File, off, n int64, progress func()) (int64, error) {
	bp := sectionBufs.Get().(*[]byte)
	defer sectionBufs.Put(bp)
	buf := *bp
	var done int64
	for done < n {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n-done)], off+done)
		if k > 0 {
			m, werr := w.Write(buf[:k])
			done += int64(m)
			if werr != nil {
				return done, werr
			}
			progress()
		}
		if err == io.EOF || (err == nil && k == 0) {
			return done, io.ErrUnexpectedEOF
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// sectionBufs are copySection's buffers.
var sectionBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
