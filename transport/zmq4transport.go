package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	ztransport "github.com/go-zeromq/zmq4/transport"
)

// Scheme is the zmq4 transport name of the guarded TCP transport. Listen and
// Dial rewrite tcp:// endpoints to it; it only works for sockets made by this
// package (it takes its settings from the socket's context).
const Scheme = "tcpg"

func init() {
	if err := zmq4.RegisterTransport(Scheme, guardTransport{}); err != nil {
		panic(err)
	}
}

// zmqEndpoint rewrites tcp://host:port to the guarded scheme.
func zmqEndpoint(ep string) (string, error) {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		rest, ok = strings.CutPrefix(ep, Scheme+"://")
	}
	if !ok || rest == "" {
		return "", fmt.Errorf("%w: %q", ErrEndpoint, ep)
	}
	return Scheme + "://" + rest, nil
}

type ctxKey struct{}

// guardTransport implements zmq4's transport.Transport.
type guardTransport struct{}

func (guardTransport) Addr(ep string) (string, error) {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", err
	}
	switch port {
	case "*", "":
		port = "0"
	}
	if host == "*" {
		host = ""
	}
	return net.JoinHostPort(host, port), nil
}

func (guardTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	rs, ok := ctx.Value(ctxKey{}).(*routerState)
	if !ok {
		return nil, errors.New("transport: the " + Scheme + " transport only serves sockets made by transport.Listen")
	}
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &guardListener{
		tl:     tl,
		ctx:    ctx,
		rs:     rs,
		ready:  make(chan *gconn),
		closed: make(chan struct{}),
	}
	rs.listener = l
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (guardTransport) Dial(ctx context.Context, dialer ztransport.Dialer, addr string) (net.Conn, error) {
	ds, ok := ctx.Value(ctxKey{}).(*dealerState)
	if !ok {
		return nil, errors.New("transport: the " + Scheme + " transport only serves sockets made by transport.Dial")
	}
	dctx, cancel := context.WithTimeout(ctx, ds.opt.HandshakeTimeout)
	defer cancel()
	raw, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	ds.stats.add(func(s *Stats) { s.Accepted++ })
	c := newGconn(raw, &ds.opt, ds, false)
	if err := c.handshake("DEALER", ds.opt.Identity, nil); err != nil {
		var pe *ProtocolError
		reason := ReasonBadHandshake
		if errors.As(err, &pe) {
			reason = pe.Reason
		} else if errors.As(err, new(*AuthError)) {
			reason = ReasonAuthFailed
		}
		c.cut(reason, err)
		return nil, err
	}
	c.tk = newTickets(&ds.stats, &ds.opt)
	c.mu.Lock()
	c.established = true
	c.mu.Unlock()
	ds.stats.add(func(s *Stats) { s.Established++; s.Active++ })
	ds.conn = c
	return c, nil
}

// guardListener accepts TCP connections, runs each handshake in its own
// goroutine under a deadline, and hands only completed ones to zmq4's
// (serial) accept loop.
type guardListener struct {
	tl     net.Listener
	ctx    context.Context // the zmq4 socket's life-line
	rs     *routerState
	ready  chan *gconn
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func (l *guardListener) Addr() net.Addr { return l.tl.Addr() }

// Accept returns the next connection whose handshake succeeded. After Close
// it blocks until the zmq4 socket is cancelled, so zmq4's accept loop (which
// retries on every error) does not spin.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		select {
		case c := <-l.ready:
			if l.rs.register(c) {
				return c, nil
			}
		case <-l.closed:
			<-l.ctx.Done()
			return nil, net.ErrClosed
		case <-l.ctx.Done():
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting, aborts pending handshakes and waits for them.
func (l *guardListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.tl.Close()
		l.rs.abortPending()
	})
	l.wg.Wait()
	return nil
}

func (l *guardListener) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		raw, err := l.tl.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && !ne.Timeout() && errors.Is(err, net.ErrClosed) {
				return
			}
			l.rs.log.Warn("transport: accept failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-l.closed:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		c := newGconn(raw, &l.rs.opt, l.rs, true)
		if !l.rs.addPending(c) {
			continue
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

func (l *guardListener) serve(c *gconn) {
	defer l.wg.Done()
	err := c.handshake("ROUTER", "", l.rs.newID)
	l.rs.donePending(c)
	if err != nil {
		reason := ReasonBadHandshake
		var pe *ProtocolError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		c.cut(reason, err)
		return
	}
	select {
	case l.ready <- c:
	case <-l.closed:
		c.cut("", nil)
	}
}
