package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Msg is one single-frame ZeroMQ message.
type Msg struct {
	Peer string // routing identity on a Router, "" on a Dealer
	Body []byte
	// Release, when not nil, gives Body's buffer back to the transport's
	// pool (a Dealer's large frames, see tickets.go): call it once, when
	// nothing references Body (or a slice of it) any more. Never calling it
	// is safe: the collector frees the buffer.
	Release func()
}

// Router is a bound ROUTER socket for servers.
type Router struct {
	st         *routerState
	sck        zmq4.Socket
	recv       chan Msg
	done       chan struct{}
	readerDone chan struct{}
	closeOnce  sync.Once
	endpoint   string
}

// peerEntry tracks one routing identity.
type peerEntry struct {
	conn        *gconn // live connection, nil once gone
	delivered   uint64 // complete messages handed to zmq4
	received    uint64 // messages the reader took from zmq4
	gonePending bool
}

// routerState is shared by the Router, its listener and its connections.
type routerState struct {
	opt   Options
	log   *slog.Logger
	stats counters

	listener *guardListener
	gone     chan string
	wg       sync.WaitGroup // writer goroutines

	mu      sync.Mutex
	closing bool
	pending map[*gconn]struct{}
	handed  map[*gconn]struct{} // given to zmq4, until its reader lets go
	peers   map[string]*peerEntry
	nextID  uint32
}

// goneBuffer is the capacity of the Gone channel.
const goneBuffer = 1024

// Listen binds a ROUTER to endpoint ("tcp://host:port"; port 0 picks one).
func Listen(endpoint string, opt Options) (*Router, error) {
	zep, err := zmqEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	if err := opt.checkMechanism(); err != nil {
		return nil, err
	}
	if cs := opt.CurveServer; cs != nil && cs.Keys.Public == (CurveKey{}) {
		// only the secret given: the public key follows from it
		opt.CurveServer = &CurveServer{Keys: CurveKeyPairFromSecret(cs.Keys.Secret), Clients: cs.Clients}
	}
	st := &routerState{
		opt:     opt,
		log:     opt.Logger,
		gone:    make(chan string, goneBuffer),
		pending: map[*gconn]struct{}{},
		handed:  map[*gconn]struct{}{},
		peers:   map[string]*peerEntry{},
		nextID:  rand.Uint32(),
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, st)
	sck := zmq4.NewRouter(ctx,
		zmq4.WithAutomaticReconnect(false),
		zmq4.WithLogger(log.New(slogWriter{opt.Logger}, "", 0)),
	)
	if err := sck.Listen(zep); err != nil {
		sck.Close()
		return nil, err
	}
	r := &Router{
		st:         st,
		sck:        sck,
		recv:       make(chan Msg),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		endpoint:   "tcp://" + st.listener.Addr().String(),
	}
	go r.reader()
	opt.Logger.Debug("transport: router listening", "endpoint", r.endpoint, "mechanism", opt.mechanism())
	return r, nil
}

// Endpoint returns the bound endpoint, e.g. "tcp://127.0.0.1:41234".
func (r *Router) Endpoint() string { return r.endpoint }

// Recv delivers inbound messages; it is closed when the Router is closed.
// It is unbuffered, so a Gone(peer) is only signalled after that peer's last
// message was taken from Recv.
func (r *Router) Recv() <-chan Msg { return r.recv }

// Gone delivers the identity of every peer whose connection ended (closed,
// cut or disconnected), after its last message. A peer replaced by a new
// connection with the same identity is not gone. If nobody reads it, up to
// 1024 notifications are kept and the rest counted in Stats.GoneDropped.
func (r *Router) Gone() <-chan string { return r.st.gone }

// Stats returns the connection counters.
func (r *Router) Stats() Stats {
	s := r.st.stats.snapshot()
	r.st.mu.Lock()
	s.Pending = len(r.st.pending)
	r.st.mu.Unlock()
	return s
}

// Peers returns the identities of the connected peers.
func (r *Router) Peers() []string {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	var ids []string
	for id, e := range r.st.peers {
		if e.conn != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// PeerUser returns the PLAIN login a connected peer authenticated with.
func (r *Router) PeerUser(peer string) (string, bool) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if e := r.st.peers[peer]; e != nil && e.conn != nil {
		return e.conn.user, true
	}
	return "", false
}

// PeerKey returns the CURVE public key a connected peer authenticated with.
func (r *Router) PeerKey(peer string) (CurveKey, bool) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if e := r.st.peers[peer]; e != nil && e.conn != nil && e.conn.curve != nil {
		return e.conn.curveKey, true
	}
	return CurveKey{}, false
}

// Send queues body for peer. It never blocks on the network for more than
// a moment (200µs): a peer whose queue would exceed Options.WriteQueue is cut
// instead (and Send returns an error). Unknown or departed peers give
// ErrUnknownPeer.
//
// Ownership: the caller may reuse body as soon as Send returns (what must
// wait in the queue is copied), unless Options.KeepBodies is set: then a
// body over 4 KiB may be written after Send returns, straight from the
// caller's slice, and must not be modified afterwards.
func (r *Router) Send(peer string, body []byte) error { return r.SendSplit(peer, body, nil) }

// SendSplit is Send of the message head followed by tail, without joining
// them: a large tail (a chunk read into a buffer of the caller's) is
// written as is, or copied into the queue as Send's body would be.
func (r *Router) SendSplit(peer string, head, tail []byte) error {
	return r.sendSplit(peer, head, tail, nil)
}

// SendSplitOwned is SendSplit handing tail over instead of lending it: a
// large tail that must wait is queued as is, not copied, and written by
// the connection's writer while the caller goes on (with the next chunk),
// so reading and writing overlap. tail is the transport's until release
// is called: once, when it is written, copied or no longer needed (an
// error, or a connection cut with the tail still queued).
func (r *Router) SendSplitOwned(peer string, head, tail []byte, release func()) error {
	if release == nil {
		return r.sendSplit(peer, head, tail, nil)
	}
	return r.sendSplit(peer, head, tail, &lent{release: release})
}

func (r *Router) sendSplit(peer string, head, tail []byte, l *lent) error {
	defer l.done() // unless the queue took it
	c, err := r.sendConn(peer)
	if err != nil {
		return err
	}
	// Straight through the peer's connection, not zmq4's socket-wide
	// send (see send.go).
	if ok, err := c.sendSplit(head, tail, l); ok {
		if err != nil {
			return fmt.Errorf("transport: send to %q: %w", peer, err)
		}
		return nil
	}
	if len(tail) > 0 {
		head = append(head[:len(head):len(head)], tail...)
	}
	return r.sck.Send(zmq4.NewMsgFrom([]byte(peer), head))
}

// sendConn is peer's live connection to send on: ErrClosed once the
// Router is closed, ErrUnknownPeer without one.
func (r *Router) sendConn(peer string) (*gconn, error) {
	select {
	case <-r.done:
		return nil, ErrClosed
	default:
	}
	c := r.conn(peer)
	if c == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPeer, peer)
	}
	return c, nil
}

// conn is peer's live connection, nil if none.
func (r *Router) conn(peer string) *gconn {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if e := r.st.peers[peer]; e != nil {
		return e.conn
	}
	return nil
}

// Queued is the number of bytes waiting in peer's write queue (0 for an
// unknown peer, or without a queue). A sender that would rather wait than
// have the peer cut for an overflow (WriteQueue) holds back while it is high.
func (r *Router) Queued(peer string) int {
	c := r.conn(peer)
	if c == nil || c.queue == nil {
		return 0
	}
	q := c.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// WaitQueued returns once fewer than below bytes wait in peer's write
// queue (at once if that is so already, or without a queue), or the peer
// is gone, the Router closed or ctx done (then with their error). The
// queue's writer signals it as it drains: a sender that holds back while
// the queue is high (Queued) resumes without polling.
func (r *Router) WaitQueued(ctx context.Context, peer string, below int) error {
	c := r.conn(peer)
	if c == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, peer)
	}
	q := c.queue
	if q == nil {
		return nil
	}
	ch := q.waitBelow(below)
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		q.cancelWait(ch)
		return c.closedErr()
	case <-r.done:
		q.cancelWait(ch)
		return ErrClosed
	case <-ctx.Done():
		q.cancelWait(ch)
		return ctx.Err()
	}
}

// Disconnect cuts a peer's connection (Gone will report it).
func (r *Router) Disconnect(peer string) bool {
	c := r.conn(peer)
	if c == nil {
		return false
	}
	c.cut(ReasonDisconnected, nil)
	return true
}

// Close stops the Router: no goroutine of it (or of zmq4 for it) survives.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		st := r.st
		st.mu.Lock()
		st.closing = true
		st.mu.Unlock()
		close(r.done)
		if st.listener != nil {
			st.listener.Close()
		}
		st.mu.Lock()
		var live, handed []*gconn
		for _, e := range st.peers {
			if e.conn != nil {
				live = append(live, e.conn)
			}
		}
		for c := range st.handed {
			handed = append(handed, c)
		}
		st.mu.Unlock()
		for _, c := range live {
			c.cut("", nil)
		}
		// zmq4's per-connection readers may be blocked handing a message to
		// its queue; our reader keeps draining until each one has seen its
		// connection fail, so none is left behind.
		timeout := time.After(5 * time.Second)
	wait:
		for _, c := range handed {
			c.cut("", nil)
			select {
			case <-c.zmqGone:
			case <-timeout:
				st.log.Warn("transport: router close: zmq4 reader still busy")
				break wait
			}
		}
		r.sck.Close()
		<-r.readerDone
		st.wg.Wait()
	})
	return nil
}

// reader is the single consumer of the zmq4 socket.
func (r *Router) reader() {
	defer close(r.readerDone)
	defer close(r.recv)
	for {
		m, err := r.sck.Recv()
		if err != nil {
			select {
			case <-r.done:
			default:
				r.st.log.Error("transport: router receive failed", "err", err)
			}
			return
		}
		if len(m.Frames) == 0 {
			continue
		}
		peer := string(m.Frames[0])
		if m.Type == zmq4.CmdMsg || len(m.Frames) != 2 {
			r.st.stats.add(func(s *Stats) { s.MsgsDropped++ })
		} else {
			select {
			case r.recv <- Msg{Peer: peer, Body: m.Frames[1]}:
			case <-r.done:
			}
		}
		r.st.received(peer)
	}
}

// ---- routerState: connOwner ----

func (st *routerState) counters() *counters { return &st.stats }

func (st *routerState) newID() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.nextID++
	var b [5]byte
	binary.BigEndian.PutUint32(b[1:], st.nextID)
	return string(b[:])
}

func (st *routerState) addPending(c *gconn) bool {
	st.stats.add(func(s *Stats) { s.Accepted++ })
	st.mu.Lock()
	if st.closing || len(st.pending) >= st.opt.MaxPending {
		closing := st.closing
		st.mu.Unlock()
		if closing {
			c.cut("", nil)
		} else {
			c.cut(ReasonTooManyPending, fmt.Errorf("%d handshakes in progress", st.opt.MaxPending))
		}
		return false
	}
	st.pending[c] = struct{}{}
	st.mu.Unlock()
	return true
}

func (st *routerState) donePending(c *gconn) {
	st.mu.Lock()
	delete(st.pending, c)
	st.mu.Unlock()
}

func (st *routerState) abortPending() {
	st.mu.Lock()
	var cs []*gconn
	for c := range st.pending {
		cs = append(cs, c)
	}
	st.mu.Unlock()
	for _, c := range cs {
		c.cut("", nil)
	}
}

// register makes a handshaken connection the live one for its identity,
// just before zmq4 gets it. A connection presenting an identity that is
// still in use is refused (as libzmq's ROUTER without ROUTER_HANDOVER):
// a session belongs to its connection, never to whoever presents its
// identity next.
func (st *routerState) register(c *gconn) bool {
	st.mu.Lock()
	if st.closing {
		st.mu.Unlock()
		c.cut("", nil)
		return false
	}
	e := st.peers[c.peerID]
	if e != nil && (e.conn != nil || e.gonePending) {
		// The identity belongs to a live connection (or to one whose Gone
		// is not signalled yet): the newcomer is refused, so it can never
		// inherit that connection's session, its login, its transfers.
		// The identity is free again once Gone(peer) has been emitted.
		err := fmt.Errorf("identity %q is in use by another connection", c.peerID)
		if e.conn != nil && st.opt.PlainServer != nil && e.conn.user != c.user {
			err = fmt.Errorf("identity %q is held by login %q", c.peerID, e.conn.user)
		}
		st.mu.Unlock()
		c.cut(ReasonDuplicateID, err)
		return false
	}
	if e == nil {
		e = &peerEntry{}
		st.peers[c.peerID] = e
	}
	e.conn = c
	e.gonePending = false
	c.mu.Lock()
	c.established = true
	c.mu.Unlock()
	st.handed[c] = struct{}{}
	c.onZMQGone = func() {
		st.mu.Lock()
		delete(st.handed, c)
		st.mu.Unlock()
	}
	if st.opt.WriteQueue > 0 {
		c.queue = &writeQueue{limit: st.opt.WriteQueue, wake: make(chan struct{}, 1)}
		st.wg.Add(1)
		go c.queue.writer(c, &st.wg)
	}
	st.mu.Unlock()
	st.stats.add(func(s *Stats) { s.Established++; s.Active++ })
	st.log.Debug("transport: peer connected", "peer", c.peerID, "remote", c.remote, "user", c.user)
	return true
}

func (st *routerState) messageDone(c *gconn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if c.isClosed() {
		return false
	}
	if e := st.peers[c.peerID]; e != nil && e.conn == c {
		e.delivered++
	}
	return true
}

// received accounts for one message taken from zmq4 and emits a pending Gone.
func (st *routerState) received(peer string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.peers[peer]
	if e == nil {
		return
	}
	e.received++
	if e.gonePending && e.received >= e.delivered {
		st.emitGone(peer)
	}
}

// emitGone signals a departed peer; st.mu held.
func (st *routerState) emitGone(peer string) {
	delete(st.peers, peer)
	if st.closing {
		return
	}
	select {
	case st.gone <- peer:
	default:
		st.stats.add(func(s *Stats) { s.GoneDropped++ })
		st.log.Warn("transport: Gone notification dropped (nobody reads Router.Gone)", "peer", peer)
	}
}

func (st *routerState) connClosed(c *gconn, reason string, peerEOF bool, err error) {
	c.mu.Lock()
	established := c.established
	c.mu.Unlock()
	switch {
	case reason != "":
		st.stats.drop(reason)
		st.log.Warn("transport: connection dropped", "reason", reason, "remote", c.remote,
			"peer", c.peerID, "err", err)
	case peerEOF && established:
		st.stats.add(func(s *Stats) { s.ClosedByPeer++ })
		st.log.Debug("transport: peer closed", "remote", c.remote, "peer", c.peerID)
	}
	if !established {
		return
	}
	st.stats.add(func(s *Stats) { s.Active-- })
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.peers[c.peerID]
	if e == nil || e.conn != c {
		return // replaced, or never registered
	}
	e.conn = nil
	if e.received >= e.delivered {
		st.emitGone(c.peerID)
	} else {
		e.gonePending = true
	}
}

// slogWriter adapts zmq4's *log.Logger output to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("zmq4: " + string(p))
	return len(p), nil
}
