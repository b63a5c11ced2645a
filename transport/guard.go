package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// connOwner is the socket a guarded connection belongs to.
type connOwner interface {
	// messageDone is called when the last byte of a complete inbound message
	// is about to be handed to zmq4. false: the connection is already cut and
	// the message must not be delivered.
	messageDone(c *gconn) bool
	// connClosed is called once, when the connection is cut (reason "" means
	// a normal close: by the peer, when peerEOF, or by us).
	connClosed(c *gconn, reason string, peerEOF bool, err error)
	counters() *counters
}

// cutError is what zmq4 sees once a connection is cut. It is a net.Error
// whose Timeout() is false, so zmq4 marks its Conn closed and reaps it.
type cutError struct {
	reason string
	eof    bool
}

func (e *cutError) Error() string {
	if e.eof {
		return "transport: connection closed by peer"
	}
	if e.reason == "" {
		return "transport: connection closed"
	}
	return "transport: connection cut: " + e.reason
}
func (e *cutError) Timeout() bool   { return false }
func (e *cutError) Temporary() bool { return false }
func (e *cutError) Unwrap() error {
	if e.eof {
		return io.EOF
	}
	return net.ErrClosed
}

// gconn is a guarded ZMTP connection: it performs the real handshake, then
// replays a synthetic NULL handshake to zmq4 and validates everything after.
type gconn struct {
	raw    net.Conn
	br     *bufio.Reader
	opt    *Options
	owner  connOwner
	log    *slog.Logger
	server bool
	remote string

	// set by the handshake
	peerType string
	peerID   string      // routing identity used by zmq4 (Router side)
	user     string      // PLAIN login (Router side)
	curveKey CurveKey    // CURVE client's permanent public key (Router side)
	curve    *curveCodec // non-nil: CURVE boxes every frame after the handshake
	// libzmqPeer: the greeting's padding carries libzmq's ZMTP 1.0 length.
	libzmqPeer bool

	// zmq4-facing synthetic handshake
	replay  []byte
	swallow swallower

	in inState // touched only by zmq4's (single) reader
	// tk, on a Dealer's connection, takes large message frames out of
	// zmq4's stream into pooled buffers and tags every message frame
	// (tickets.go); nil: frames pass as they are.
	tk *tickets

	mu          sync.Mutex
	closed      bool
	reason      string
	established bool // registered with the owner
	done        chan struct{}
	zmqGone     chan struct{} // closed when Read first fails after hand-over
	zmqGoneOnce sync.Once
	onZMQGone   func()

	wmu         sync.Mutex
	queue       *writeQueue // nil: direct writes
	lend        *lent       // the tail being written was handed over (sendSplit); c.wmu held
	held        bool        // Router.Hold: writes wait in the queue for Flush; c.wmu held
	outbound    outTrack
	pendingPong []byte
}

func newGconn(raw net.Conn, opt *Options, owner connOwner, server bool) *gconn {
	return &gconn{
		raw:     raw,
		br:      bufio.NewReaderSize(raw, 64<<10),
		opt:     opt,
		owner:   owner,
		log:     opt.Logger,
		server:  server,
		remote:  raw.RemoteAddr().String(),
		done:    make(chan struct{}),
		zmqGone: make(chan struct{}),
		swallow: swallower{greet: greetingLen},
	}
}

func (c *gconn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *gconn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == reasonPeerEOF {
		return &cutError{eof: true}
	}
	return &cutError{reason: c.reason}
}

const reasonPeerEOF = "\x00peer-eof" // internal marker, never a Drops key

// cut closes the connection once, recording why. reason "" is a local close,
// reasonPeerEOF the peer's; anything else is a drop.
func (c *gconn) cut(reason string, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.reason = reason
	c.mu.Unlock()
	close(c.done)
	c.raw.Close()
	if reason == reasonPeerEOF {
		c.owner.connClosed(c, "", true, err)
	} else {
		c.owner.connClosed(c, reason, false, err)
	}
}

func (c *gconn) markZMQGone() {
	c.zmqGoneOnce.Do(func() {
		close(c.zmqGone)
		if c.onZMQGone != nil {
			c.onZMQGone()
		}
	})
}

// ---- net.Conn for zmq4 ----

func (c *gconn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *gconn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *gconn) SetDeadline(t time.Time) error      { return nil }
func (c *gconn) SetReadDeadline(t time.Time) error  { return nil }
func (c *gconn) SetWriteDeadline(t time.Time) error { return nil }

// Close is called by zmq4 (after a read error, or when its socket closes).
func (c *gconn) Close() error {
	c.cut("", nil)
	return nil
}

// inState tracks the inbound ZMTP stream after the handshake.
type inState struct {
	hdr      [9]byte
	out      []byte // validated header bytes of a message frame not yet returned
	body     uint64 // body bytes of the current message frame not yet returned
	final    bool   // current frame ends its message
	inMsg    bool   // a MORE frame was seen
	parts    int
	msgBytes uint64
	cmd      [maxTrafficCmd]byte
	tag      [9 + ticketLen]byte // a tagged frame's header and tag, or a ticket
}

// Read serves zmq4: first the synthetic handshake, then the peer's stream,
// validated frame by frame. Commands (PING/PONG) are consumed here.
func (c *gconn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	in := &c.in
	for {
		if c.isClosed() {
			return 0, c.readFail(nil)
		}
		if len(in.out) > 0 {
			n := copy(p, in.out)
			in.out = in.out[n:]
			if len(in.out) == 0 && in.body == 0 && in.final && !c.owner.messageDone(c) {
				return 0, c.readFail(nil)
			}
			return n, nil
		}
		if in.body > 0 {
			m := uint64(len(p))
			if m > in.body {
				m = in.body
			}
			n, err := c.br.Read(p[:m])
			in.body -= uint64(n)
			if err != nil {
				return 0, c.readFail(err)
			}
			if in.body == 0 && in.final && !c.owner.messageDone(c) {
				return 0, c.readFail(nil)
			}
			return n, nil
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
}

// readFail cuts the connection after a failed read (err nil: already cut)
// and returns the error zmq4 gets.
func (c *gconn) readFail(err error) error {
	if err != nil {
		var pe *ProtocolError
		switch {
		case errors.As(err, &pe):
			c.cut(pe.Reason, err)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			c.cut(reasonPeerEOF, err)
		default:
			c.cut(ReasonReadError, err)
		}
	}
	c.markZMQGone()
	return c.closedErr()
}

// nextFrame reads and checks one frame header; a command frame is read,
// checked and consumed whole.
func (c *gconn) nextFrame() error {
	in := &c.in
	flags, err := c.br.ReadByte()
	if err != nil {
		return c.readFail(err)
	}
	hl := headerLen(flags)
	in.hdr[0] = flags
	if _, err := io.ReadFull(c.br, in.hdr[1:hl]); err != nil {
		return c.readFail(err)
	}
	h, err := parseFrameHeader(in.hdr[:hl], uint64(c.opt.MaxFrame), maxTrafficCmd)
	if err != nil {
		return c.readFail(err)
	}
	if h.command() {
		if in.inMsg {
			return c.readFail(protoErr(ReasonBadFrame, "command frame inside a multipart message"))
		}
		body := in.cmd[:h.Size]
		if _, err := io.ReadFull(c.br, body); err != nil {
			return c.readFail(err)
		}
		if err := checkTrafficCommand(body); err != nil {
			return c.readFail(err)
		}
		if name, data, _ := parseCommand(body); name == "PING" {
			c.pong(data[2:])
		}
		c.owner.counters().add(func(s *Stats) { s.Pings++ })
		return nil
	}
	in.parts++
	in.msgBytes += h.Size
	if in.parts > maxParts {
		return c.readFail(protoErr(ReasonBadFrame, "message of more than %d frames", maxParts))
	}
	if in.msgBytes > uint64(c.opt.MaxFrame) {
		return c.readFail(protoErr(ReasonFrameTooLarge, "message of more than %d bytes", c.opt.MaxFrame))
	}
	in.final = !h.more()
	in.inMsg = h.more()
	if in.final {
		in.parts, in.msgBytes = 0, 0
	}
	if c.tk != nil {
		return c.tagFrame(h)
	}
	in.out = in.hdr[:hl]
	in.body = h.Size
	return nil
}

// checkTrafficCommand accepts the only commands valid after a ROUTER/DEALER
// handshake: PING (TTL + context) and PONG (context).
func checkTrafficCommand(body []byte) error {
	name, data, err := parseCommand(body)
	if err != nil {
		return err
	}
	switch name {
	case "PING":
		if len(data) < 2 || len(data)-2 > maxPingContext {
			return protoErr(ReasonBadCommand, "PING with %d bytes", len(data))
		}
	case "PONG":
		if len(data) > maxPingContext {
			return protoErr(ReasonBadCommand, "PONG with %d bytes", len(data))
		}
	default:
		return protoErr(ReasonBadCommand, "unexpected %s command after handshake", name)
	}
	return nil
}

// swallower consumes the synthetic handshake zmq4 writes (greeting and one
// command frame): the real one was already exchanged by the guard.
type swallower struct {
	greet int
	hdr   []byte
	body  uint64
	done  bool
}

// consume eats handshake bytes and returns what is left of p.
func (s *swallower) consume(p []byte) []byte {
	for len(p) > 0 && !s.done {
		switch {
		case s.greet > 0:
			n := min(s.greet, len(p))
			s.greet -= n
			p = p[n:]
		case len(s.hdr) == 0 || len(s.hdr) < headerLen(s.hdr[0]):
			s.hdr = append(s.hdr, p[0])
			p = p[1:]
			if len(s.hdr) == headerLen(s.hdr[0]) {
				h, _ := parseFrameHeader(s.hdr, 1<<20, 1<<20)
				s.body = h.Size
				s.done = s.body == 0
			}
		default:
			n := uint64(len(p))
			if n > s.body {
				n = s.body
			}
			s.body -= n
			p = p[n:]
			s.done = s.body == 0
		}
	}
	return p
}

// Write serves zmq4: swallow its synthetic handshake, then queue (Router)
// or write under a deadline (Dealer).
func (c *gconn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(p)
}

// writeLocked is Write with c.wmu held (see sendMessage).
func (c *gconn) writeLocked(p []byte) (int, error) {
	n := 0
	if !c.swallow.done {
		rest := c.swallow.consume(p)
		n = len(p) - len(rest)
		if len(rest) == 0 {
			return n, nil
		}
		p = rest
	}
	if c.curve != nil {
		return n + len(p), c.curveWrite(p)
	}
	m, err := c.emit(p)
	if err != nil {
		return n + m, err
	}
	c.outbound.advance(p)
	if c.pendingPong != nil && c.outbound.boundary() {
		pong := c.pendingPong
		c.pendingPong = nil
		if _, err := c.emit(pong); err != nil {
			return n + m, err
		}
	}
	return n + m, nil
}

// emit sends bytes of the outbound stream; c.wmu held.
func (c *gconn) emit(p []byte) (int, error) {
	if c.queue != nil {
		return c.queue.write(c, p, false)
	}
	return c.writeDirect(p)
}

// curveWrite boxes the plaintext stream frame by frame and answers a
// pending PING between messages; c.wmu held. A large tail handed over
// (Router.SendSplitOwned), or any large body with KeepBodies, is boxed
// from where it is, never copied.
func (c *gconn) curveWrite(p []byte) error {
	keep := func(p []byte) (func(), bool) {
		if c.lend != nil && c.lend.release != nil {
			r := c.lend.release
			c.lend.release = nil // ours now: given back once boxed
			return r, true
		}
		return nil, c.opt.KeepBodies
	}
	return c.curve.write(p, keep, func(m plainMsg) error {
		if err := c.emitPlain(m); err != nil {
			return err
		}
		if c.pendingPong != nil && !c.curve.wmore {
			pong := c.pendingPong
			c.pendingPong = nil
			return c.emitPlain(plainMsg{plain: append([]byte{0x02}, pong[2:]...)})
		}
		return nil
	})
}

// emitPlain sends one CURVE plaintext (ours, its tail until released): a
// queue's writer goroutine boxes it (the nonce order is the queue's), a
// direct writer boxes it here; c.wmu held.
func (c *gconn) emitPlain(m plainMsg) error {
	if c.queue != nil {
		err := c.queue.writePlain(c, m)
		if err != nil && m.release != nil {
			m.release() // not queued
		}
		return err
	}
	frame := c.curve.seal2(m.plain, m.tail)
	c.curve.putPlain(m.plain)
	if m.release != nil {
		m.release()
	}
	_, err := c.writeDirect(frame)
	c.curve.sealBufs.put(frame)
	return err
}

// pong answers a peer's PING (ZMTP 3.1 heartbeat) at the next frame
// boundary of our outbound stream, which zmq4 writes in several calls.
func (c *gconn) pong(context []byte) {
	frame := appendCommand(nil, "PONG", context)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.curve != nil {
		if !c.swallow.done || c.curve.wn != 0 || c.curve.wmore {
			c.pendingPong = frame
			return
		}
		c.emitPlain(plainMsg{plain: append([]byte{0x02}, frame[2:]...)})
		return
	}
	if !c.swallow.done || !c.outbound.boundary() {
		c.pendingPong = frame // a newer PING supersedes an unanswered one
		return
	}
	c.emit(frame)
}

// outTrack follows frame boundaries in the outbound stream.
type outTrack struct {
	hdr   [9]byte
	n     int
	body  uint64
	inMsg bool // last frame had MORE
}

func (o *outTrack) advance(p []byte) {
	for len(p) > 0 {
		if o.body > 0 {
			k := uint64(len(p))
			if k > o.body {
				k = o.body
			}
			o.body -= k
			p = p[k:]
			continue
		}
		o.hdr[o.n] = p[0]
		o.n++
		p = p[1:]
		if o.n == headerLen(o.hdr[0]) {
			if o.hdr[0]&flagLong != 0 {
				o.body = binary.BigEndian.Uint64(o.hdr[1:9])
			} else {
				o.body = uint64(o.hdr[1])
			}
			o.inMsg = o.hdr[0]&flagMore != 0
			o.n = 0
		}
	}
}

func (o *outTrack) boundary() bool { return o.n == 0 && o.body == 0 && !o.inMsg }

// writeDirect writes under WriteTimeout; c.wmu held.
func (c *gconn) writeDirect(p []byte) (int, error) {
	if c.isClosed() {
		return 0, c.closedErr()
	}
	c.raw.SetWriteDeadline(time.Now().Add(c.opt.WriteTimeout))
	n, err := c.raw.Write(p)
	if err != nil {
		c.cut(writeReason(err), err)
		return n, c.closedErr()
	}
	return n, nil
}

func writeReason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonWriteTimeout
	}
	return ReasonWriteError
}

// writeQueue is a Router connection's bounded outbound buffer, drained by
// its own writer goroutine.
type writeQueue struct {
	mu    sync.Mutex
	bufs  []qbuf
	size  int // queued + being written
	limit int
	wake  chan struct{}
	// waiters are closed once size drops below their mark (WaitQueued)
	waiters []queueWaiter
	closed  bool // the writer stopped: nothing is queued any more
}

type queueWaiter struct {
	below int
	ch    chan struct{}
}

// waitBelow returns a channel closed once the queue holds fewer than below
// bytes, or nil if it does already.
func (q *writeQueue) waitBelow(below int) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.size < below {
		return nil
	}
	ch := make(chan struct{})
	q.waiters = append(q.waiters, queueWaiter{below, ch})
	q.kick() // what a Hold keeps back drains for the waiter too
	return ch
}

// kick wakes the writer (it may be asleep while bytes wait: Router.Hold).
func (q *writeQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// cancelWait forgets a waiter that stopped waiting.
func (q *writeQueue) cancelWait(ch chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiters = slices.DeleteFunc(q.waiters, func(w queueWaiter) bool { return w.ch == ch })
}

// drained takes n written bytes off the queue and releases the waiters
// whose mark it is now under.
func (q *writeQueue) drained(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.size -= n
	if len(q.waiters) > 0 {
		q.waiters = slices.DeleteFunc(q.waiters, func(w queueWaiter) bool {
			if q.size < w.below {
				close(w.ch)
				return true
			}
			return false
		})
	}
}

const (
	smallWrite = 4 << 10   // writes up to this size are coalesced
	smallBuf   = 64 << 10  // capacity of a coalescing buffer
	holdMax    = smallBuf  // bytes a Hold keeps back at most before the writer starts
	writeBatch = 256 << 10 // bytes per deadline-bounded write: a peer slower than writeBatch/WriteTimeout is cut
)

// write queues p; c.wmu held (one Write at a time per connection). owned:
// p is ours to keep, never copied.
func (q *writeQueue) write(c *gconn, p []byte, owned bool) (int, error) {
	q.mu.Lock()
	if c.isClosed() {
		q.mu.Unlock()
		return 0, c.closedErr()
	}
	idle := q.size == 0
	q.mu.Unlock()
	n := 0
	if idle && fastWrite > 0 && !c.held {
		// Fast path: nothing queued, so the writer goroutine is idle and we
		// may write in place, without copying, for at most fastWrite. What
		// the socket does not take by then is queued.
		c.raw.SetWriteDeadline(time.Now().Add(fastWrite))
		var err error
		n, err = c.raw.Write(p)
		if err == nil {
			return n, nil
		}
		if writeReason(err) != ReasonWriteTimeout {
			c.cut(ReasonWriteError, err)
			return n, c.closedErr()
		}
	}
	rest := p[n:]
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return n, c.closedErr()
	}
	if size := q.size + len(rest); size > q.limit {
		q.mu.Unlock()
		c.cut(ReasonWriteOverflow, fmt.Errorf("%d bytes queued, limit %d", size, q.limit))
		return n, c.closedErr()
	}
	lent := c.lend != nil && c.lend.release != nil
	// Coalesced: small writes, and while held (a burst of small files'
	// messages) whole messages up to joinWrite that are not handed over.
	join := len(rest) <= smallWrite || (c.held && !lent && len(rest) <= joinWrite)
	switch k := len(q.bufs); {
	case !join && lent:
		// A tail handed over (Router.SendSplitOwned): kept, not copied,
		// and released by the writer once written.
		q.bufs = append(q.bufs, qbuf{b: rest, release: c.lend.release})
		c.lend.release = nil
	case !join && (c.opt.KeepBodies || owned):
		// Large writes are zmq4 passing the body given to Router.Send (its
		// NULL Encrypt writes the caller's slice as is): kept, not copied.
		q.bufs = append(q.bufs, qbuf{b: rest})
	case !join:
		// The caller may reuse its buffer once Send returns: keep a copy.
		q.bufs = append(q.bufs, qbuf{b: append(make([]byte, 0, len(rest)), rest...)})
	case k > 0 && q.bufs[k-1].owned && len(q.bufs[k-1].b)+len(rest) <= smallBuf:
		q.bufs[k-1].b = append(q.bufs[k-1].b, rest...)
	case c.held:
		bp := holdPool.Get().(*[]byte)
		q.bufs = append(q.bufs, qbuf{b: append((*bp)[:0], rest...), owned: true, pooled: bp})
	default:
		q.bufs = append(q.bufs, qbuf{b: append(make([]byte, 0, 512), rest...), owned: true})
	}
	q.size += len(rest)
	wake := !c.held || q.size >= holdMax
	q.mu.Unlock()
	if wake {
		q.kick()
	}
	return len(p), nil
}

// writePlain queues a CURVE plaintext for the writer goroutine to box
// (so it is never written in place); c.wmu held. On error nothing is
// queued (m's release is the caller's).
func (q *writeQueue) writePlain(c *gconn, m plainMsg) error {
	n := len(m.plain) + len(m.tail)
	q.mu.Lock()
	if c.isClosed() || q.closed {
		q.mu.Unlock()
		return c.closedErr()
	}
	if size := q.size + n; size > q.limit {
		q.mu.Unlock()
		c.cut(ReasonWriteOverflow, fmt.Errorf("%d bytes queued, limit %d", size, q.limit))
		return c.closedErr()
	}
	q.bufs = append(q.bufs, qbuf{b: m.plain, tail: m.tail, release: m.release, seal: true})
	q.size += n
	wake := !c.held || q.size >= holdMax
	q.mu.Unlock()
	if wake {
		q.kick()
	}
	return nil
}

// qbuf is a queued write: a copy we own (small writes, coalesced), a
// caller's body kept by reference, or a CURVE plaintext to box (b, then
// tail by reference).
type qbuf struct {
	b     []byte
	owned bool
	seal  bool
	tail  []byte
	frame []byte // a boxed frame's whole buffer, given back once written
	// release gives a handed-over tail back once written (SendSplitOwned),
	// or, for a plaintext, once boxed; or a section's file (SendSection)
	release func()
	sec     *Section // a file section, written from the file (sendFile); b is nil
	pooled  *[]byte  // b's buffer, from holdPool: given back once written
}

// holdPool holds the coalescing buffers of held writes (Router.Hold): a
// burst of small files would otherwise leave one 64 KiB buffer of garbage
// per write.
var holdPool = sync.Pool{New: func() any { b := make([]byte, 0, smallBuf); return &b }}

// writer drains the queue until the connection is cut.
func (q *writeQueue) writer(c *gconn, wg *sync.WaitGroup) {
	defer wg.Done()
	var bufs []qbuf
	var releases []func() // handed-over tails of the batch being written
	defer func() { q.shutdown(bufs, releases) }()
	for {
		select {
		case <-q.wake:
		case <-c.done:
			return
		}
		for {
			q.mu.Lock()
			bufs = q.bufs
			q.bufs = nil
			q.mu.Unlock()
			if len(bufs) == 0 {
				break
			}
			for len(bufs) > 0 {
				if s := bufs[0].sec; s != nil {
					// A file section: written on its own, from the file,
					// after what was queued before it.
					if err := c.sectionOut(s, q); err != nil {
						return
					}
					if f := bufs[0].release; f != nil {
						bufs[0].release = nil
						f()
					}
					bufs = bufs[1:]
					continue
				}
				var batch net.Buffers
				var written [][]byte // boxed frames wholly in this batch
				var pooled []*[]byte // holdPool buffers wholly in this batch
				releases = releases[:0]
				total := 0
				for len(bufs) > 0 && total < writeBatch && bufs[0].sec == nil {
					if bufs[0].seal {
						// boxed here, in queue order: nonces go out in order
						pb := bufs[0]
						frame := c.curve.seal2(pb.b, pb.tail)
						c.curve.putPlain(pb.b)
						if pb.release != nil {
							pb.release() // boxed: the tail is not needed any more
						}
						bufs[0] = qbuf{b: frame, frame: frame}
						q.mu.Lock()
						q.size += len(frame) - len(pb.b) - len(pb.tail)
						q.mu.Unlock()
					}
					b := bufs[0].b
					if room := writeBatch - total; len(b) > room {
						b, bufs[0].b = b[:room], b[room:]
					} else {
						if bufs[0].frame != nil {
							written = append(written, bufs[0].frame)
						}
						if bufs[0].pooled != nil {
							pooled = append(pooled, bufs[0].pooled)
						}
						if bufs[0].release != nil {
							releases = append(releases, bufs[0].release)
						}
						bufs = bufs[1:]
					}
					batch = append(batch, b)
					total += len(b)
				}
				c.raw.SetWriteDeadline(time.Now().Add(c.opt.WriteTimeout))
				_, err := batch.WriteTo(c.raw)
				if err != nil {
					c.cut(writeReason(err), err)
					return
				}
				for _, f := range written {
					c.curve.sealBufs.put(f)
				}
				for _, bp := range pooled {
					*bp = (*bp)[:0]
					holdPool.Put(bp)
				}
				for _, f := range releases {
					f()
				}
				releases = releases[:0]
				q.drained(total)
			}
		}
	}
}

// shutdown ends the queue once its writer stops (the connection is cut):
// nothing more is queued, and the handed-over tails it still holds (those
// of an unfinished batch, those not taken yet) are released, never written.
func (q *writeQueue) shutdown(bufs []qbuf, releases []func()) {
	q.mu.Lock()
	q.closed = true
	bufs = append(bufs, q.bufs...)
	q.bufs = nil
	q.mu.Unlock()
	for _, f := range releases {
		f()
	}
	for _, b := range bufs {
		if b.release != nil {
			b.release()
		}
	}
}

// fastWrite is the longest in-place write when a Router connection's queue
// is empty (0 disables the fast path: every byte is copied to the queue).
var fastWrite = 200 * time.Microsecond
