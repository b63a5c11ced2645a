package transport

// Pooled receive buffers for a Dealer ("tickets").
//
// zmq4's reader allocates a fresh []byte for every frame it reads (its
// Conn.read: make([]byte, size)); at 1 MB chunks that garbage cost a
// receiving client about 0.3 CPU-s/GiB (zeroing, page faults on memory the
// scavenger had returned, collections). The guarded connection is what
// zmq4 reads from, so it takes large message frames out of the stream
// itself: it reads such a frame's body into a pooled buffer, queues the
// buffer, and hands zmq4 a small substitute frame (a ticket) in its place,
// in stream order. Every message frame zmq4 sees from a Dealer's
// connection starts with a one-byte tag, added by the guard: tagInline
// (the peer's frame follows as is) or tagTicket (an 8-byte sequence number
// follows). A peer cannot forge a ticket: whatever it sends is an inline
// frame, its first byte after our tag. The Dealer's reader strips the tag
// and swaps each ticket for the queued buffer; tickets are taken in order,
// and one that does not match the head of the queue cuts the connection.
//
// The buffer reaches the Dealer's user as Msg.Body with Msg.Release: called
// once nothing references the body any more, it gives the buffer back to
// the pool. Never calling it is safe (the collector frees the buffer).

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
)

// ticketMin is the smallest message frame read into a pooled buffer: below
// it zmq4's allocation costs less than the ticket's round trip.
const ticketMin = 64 << 10

// Tags of the message frames a Dealer's connection hands zmq4.
const (
	tagInline = 'i'
	tagTicket = 't'
	ticketLen = 1 + 8 // tag + sequence number
)

// tickets is the queue of pooled bodies read by a Dealer's connection and
// not yet taken by its reader, in stream order.
type tickets struct {
	mu    sync.Mutex
	q     []*lease
	next  uint64 // sequence number of the next pushed
	taken uint64 // sequence number the next take expects
	st    *counters
	min   uint64 // smallest frame taken out (ticketMin)
}

func newTickets(st *counters, opt *Options) *tickets {
	t := &tickets{st: st, min: ticketMin}
	if opt.ticketMin > 0 {
		t.min = uint64(opt.ticketMin)
	}
	return t
}

// lease is one pooled body on its way to the Dealer's user.
type lease struct {
	buf  []byte
	st   *counters
	done atomic.Bool
}

// release gives the buffer back to the pool; only the first call counts.
func (l *lease) release() {
	if !l.done.CompareAndSwap(false, true) {
		return
	}
	recvPool.put(l.buf)
	l.buf = nil
	l.st.add(func(s *Stats) { s.Recycled++ })
}

// push queues a body read from the stream and returns its ticket's number.
// Called by zmq4's (single) reader through gconn.Read.
func (t *tickets) push(buf []byte) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := t.next
	t.next++
	t.q = append(t.q, &lease{buf: buf, st: t.st})
	t.st.add(func(s *Stats) { s.Pooled++ })
	return seq
}

// take swaps a ticket (the tag byte and its number) for its body: it must
// be the head of the queue.
func (t *tickets) take(ticket []byte) (*lease, error) {
	if len(ticket) != ticketLen || ticket[0] != tagTicket {
		return nil, protoErr(ReasonBadFrame, "malformed ticket of %d bytes", len(ticket))
	}
	seq := binary.BigEndian.Uint64(ticket[1:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.q) == 0 || seq != t.taken {
		return nil, protoErr(ReasonBadFrame, "ticket %d out of order (expected %d, %d queued)", seq, t.taken, len(t.q))
	}
	l := t.q[0]
	t.q[0] = nil
	t.q = t.q[1:]
	if len(t.q) == 0 {
		t.q = t.q[:0:0] // let the backing array go once drained
	}
	t.taken++
	return l, nil
}

// untag strips the tag of a message frame zmq4 delivered: an inline frame's
// body, or the pooled body of a ticket (with its lease).
func (t *tickets) untag(frame []byte) ([]byte, *lease, error) {
	if len(frame) == 0 {
		return nil, nil, protoErr(ReasonBadFrame, "untagged frame")
	}
	switch frame[0] {
	case tagInline:
		return frame[1:], nil, nil
	case tagTicket:
		l, err := t.take(frame)
		if err != nil {
			return nil, nil, err
		}
		return l.buf, l, nil
	}
	return nil, nil, protoErr(ReasonBadFrame, "frame with unknown tag %#x", frame[0])
}

// tagFrame prepares the message frame whose header was just read (h) for
// zmq4: a large one is read whole into a pooled buffer and replaced by a
// ticket; a smaller one gets the inline tag, its header rewritten for the
// extra byte. c.in.out holds what zmq4 reads next.
func (c *gconn) tagFrame(h frameHeader) error {
	in := &c.in
	flags := h.Flags & flagMore
	t := in.tag[:0]
	if h.Size >= c.tk.min {
		buf := recvPool.get(int(h.Size))
		if _, err := io.ReadFull(c.br, buf); err != nil {
			recvPool.put(buf)
			return c.readFail(err)
		}
		seq := c.tk.push(buf)
		t = append(t, flags, ticketLen, tagTicket)
		in.out, in.body = binary.BigEndian.AppendUint64(t, seq), 0
		return nil
	}
	if n := h.Size + 1; n <= 255 {
		t = append(t, flags, byte(n))
	} else {
		t = binary.BigEndian.AppendUint64(append(t, flags|flagLong), n)
	}
	in.out, in.body = append(t, tagInline), h.Size
	return nil
}

// bufPool keeps the bodies given back by Msg.Release for the next large
// frames. It holds at most poolMaxBufs buffers and poolMaxBytes bytes: at
// steady state a receiver has about a credit window of chunks in flight, so
// a few buffers go round.
type bufPool struct {
	mu    sync.Mutex
	free  [][]byte
	bytes int
}

const (
	poolMaxBufs  = 16
	poolMaxBytes = 32 << 20
	poolRound    = 64 << 10 // capacities are multiples of it
)

var recvPool bufPool

// get returns a buffer of length n: a pooled one whose capacity is at
// least n and at most twice n, or a new one.
func (p *bufPool) get(n int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= n && cap(b) <= 2*n {
			last := len(p.free) - 1
			p.free[i] = p.free[last]
			p.free[last] = nil
			p.free = p.free[:last]
			p.bytes -= cap(b)
			p.mu.Unlock()
			return b[:n]
		}
	}
	p.mu.Unlock()
	return make([]byte, n, (n+poolRound-1)/poolRound*poolRound)
}

// put gives a buffer back; the oldest pooled ones make room (dropped, for
// the collector), so buffers of a size no longer received do not stay.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > poolMaxBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) > 0 && (len(p.free) >= poolMaxBufs || p.bytes+cap(b) > poolMaxBytes) {
		p.bytes -= cap(p.free[0])
		p.free[0] = nil
		p.free = p.free[1:]
	}
	p.free = append(p.free, b[:0])
	p.bytes += cap(b)
}
