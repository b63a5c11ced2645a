package transport

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Dealer is a connected DEALER socket for clients. It holds exactly one
// connection and never reconnects: when Lost() fires, make a new Dealer
// (see Redialer).
type Dealer struct {
	st         *dealerState
	sck        zmq4.Socket
	recv       chan Msg
	lost       chan struct{}
	lostOnce   sync.Once
	gone       chan string
	done       chan struct{}
	readerDone chan struct{}
	closeOnce  sync.Once
}

type dealerState struct {
	opt   Options
	log   *slog.Logger
	stats counters
	conn  *gconn
}

// Dial connects a DEALER to endpoint ("tcp://host:port") and completes the
// handshake (bounded by HandshakeTimeout) before returning. A refused PLAIN
// login gives an error wrapping *AuthError.
func Dial(endpoint string, opt Options) (*Dealer, error) {
	zep, err := zmqEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	if opt.Identity == "" {
		opt.Identity = randomIdentity()
	}
	if err := checkIdentity(opt.Identity); err != nil {
		return nil, err
	}
	if err := opt.checkMechanism(); err != nil {
		return nil, err
	}
	if err := opt.curveClientKeys(); err != nil {
		return nil, err
	}
	st := &dealerState{opt: opt, log: opt.Logger}
	ctx := context.WithValue(context.Background(), ctxKey{}, st)
	sck := zmq4.NewDealer(ctx,
		zmq4.WithID(zmq4.SocketIdentity(opt.Identity)),
		zmq4.WithAutomaticReconnect(false),
		zmq4.WithDialerMaxRetries(0),
		zmq4.WithDialerTimeout(opt.HandshakeTimeout),
		zmq4.WithLogger(log.New(slogWriter{opt.Logger}, "", 0)),
	)
	if err := sck.Dial(zep); err != nil {
		sck.Close()
		return nil, unwrapDialError(err)
	}
	d := &Dealer{
		st:         st,
		sck:        sck,
		recv:       make(chan Msg),
		lost:       make(chan struct{}),
		gone:       make(chan string, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go d.reader()
	return d, nil
}

// unwrapDialError strips zmq4's wrapping so callers see our typed errors.
func unwrapDialError(err error) error {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe
	}
	return err
}

// curveClientKeys draws the client's permanent CURVE key pair when none was
// given (the copy of CurveClient is the caller's no longer).
func (o *Options) curveClientKeys() error {
	if o.CurveClient == nil || o.CurveClient.Keys != (CurveKeyPair{}) {
		return nil
	}
	kp, err := NewCurveKeyPair()
	if err != nil {
		return err
	}
	cc := *o.CurveClient
	cc.Keys = kp
	o.CurveClient = &cc
	return nil
}

func randomIdentity() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return "fmq-" + hex.EncodeToString(b[:])
}

// Identity returns the routing identity announced to the server.
func (d *Dealer) Identity() string { return d.st.opt.Identity }

// Recv delivers inbound messages; it is closed after Lost() or Close.
func (d *Dealer) Recv() <-chan Msg { return d.recv }

// Lost is closed when the connection is known lost (EOF, cut, write failure).
func (d *Dealer) Lost() <-chan struct{} { return d.lost }

// Gone delivers the Dealer's identity once when the connection is lost
// (not when it is closed by Close), after the last message was taken from
// Recv and before Recv is closed: the Dealer is a source of frames and
// departures in transport order, as a Router is (host.Pump serves both).
func (d *Dealer) Gone() <-chan string { return d.gone }

// Stats returns the connection counters.
func (d *Dealer) Stats() Stats { return d.st.stats.snapshot() }

// Send writes body to the server, blocking at most WriteTimeout when the
// server does not read (the connection is then cut and Lost fires).
func (d *Dealer) Send(body []byte) error {
	select {
	case <-d.done:
		return ErrClosed
	case <-d.lost:
		return ErrLost
	default:
	}
	if d.st.conn.isClosed() {
		return ErrLost
	}
	if ok, err := d.st.conn.sendMessage(body); ok {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrLost, err)
		}
		return nil
	}
	if err := d.sck.Send(zmq4.NewMsg(body)); err != nil {
		return fmt.Errorf("%w: %v", ErrLost, err)
	}
	return nil
}

// Close closes the Dealer; no goroutine of it (or of zmq4 for it) survives.
func (d *Dealer) Close() error {
	d.closeOnce.Do(func() {
		close(d.done)
		d.st.conn.cut("", nil)
		select {
		case <-d.readerDone:
		case <-time.After(5 * time.Second):
			d.st.log.Warn("transport: dealer close: reader still busy")
		}
		d.sck.Close()
	})
	return nil
}

func (d *Dealer) reader() {
	defer close(d.readerDone)
	defer close(d.recv)
	defer d.lostOnce.Do(func() {
		close(d.lost)
		select {
		case <-d.done: // closed by us: not a departure
		default:
			d.gone <- d.st.opt.Identity
		}
	})
	for {
		m, err := d.sck.Recv()
		if err != nil {
			select {
			case <-d.done:
			default:
				d.st.log.Debug("transport: dealer connection lost", "err", err)
			}
			return
		}
		msg, err := d.untag(m)
		if err != nil {
			d.st.conn.cut(ReasonBadFrame, err) // counted and logged by connClosed
			return
		}
		if msg.Body == nil {
			d.st.stats.add(func(s *Stats) { s.MsgsDropped++ })
			continue
		}
		select {
		case d.recv <- msg:
		case <-d.done:
			if msg.Release != nil {
				msg.Release()
			}
		}
	}
}

// untag swaps the tagged frames zmq4 delivered for their bodies (see
// tickets.go): a one-frame message gives its body (never nil), with a
// Release when it is pooled; another (multipart) gives a nil Body, its
// tickets taken and given back. An error is a broken ticket sequence.
func (d *Dealer) untag(m zmq4.Msg) (Msg, error) {
	tk := d.st.conn.tk
	if m.Type == zmq4.CmdMsg {
		return Msg{}, nil
	}
	if len(m.Frames) != 1 {
		for _, f := range m.Frames {
			_, l, err := tk.untag(f)
			if err != nil {
				return Msg{}, err
			}
			if l != nil {
				l.release()
			}
		}
		return Msg{}, nil
	}
	body, l, err := tk.untag(m.Frames[0])
	if err != nil {
		return Msg{}, err
	}
	if body == nil {
		body = []byte{}
	}
	if l == nil {
		return Msg{Body: body}, nil
	}
	return Msg{Body: body, Release: l.release}, nil
}

// ---- dealerState: connOwner ----

func (st *dealerState) counters() *counters { return &st.stats }

func (st *dealerState) messageDone(c *gconn) bool { return !c.isClosed() }

func (st *dealerState) connClosed(c *gconn, reason string, peerEOF bool, err error) {
	c.mu.Lock()
	established := c.established
	c.mu.Unlock()
	switch {
	case reason != "":
		st.stats.drop(reason)
		st.log.Warn("transport: connection dropped", "reason", reason, "remote", c.remote, "err", err)
	case peerEOF && established:
		st.stats.add(func(s *Stats) { s.ClosedByPeer++ })
		st.log.Debug("transport: server closed the connection", "remote", c.remote)
	}
	if established {
		st.stats.add(func(s *Stats) { s.Active-- })
	}
}

// Redialer makes Dealers for one endpoint with a fixed identity and
// credentials, retrying with exponential backoff and jitter.
type Redialer struct {
	endpoint string
	opt      Options
	// MinBackoff and MaxBackoff bound the wait between attempts
	// (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
}

// NewRedialer fixes the identity (drawing a random one if opt.Identity is
// empty) so the server sees the same peer across re-dials.
func NewRedialer(endpoint string, opt Options) *Redialer {
	if opt.Identity == "" {
		opt.Identity = randomIdentity()
	}
	if err := opt.curveClientKeys(); err != nil {
		// crypto/rand failing is fatal elsewhere too; Dial will report it.
		opt.withDefaults().Logger.Warn("transport: no CURVE client key pair", "err", err)
	}
	return &Redialer{endpoint: endpoint, opt: opt, MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// Identity returns the identity every Dealer of this Redialer uses.
func (r *Redialer) Identity() string { return r.opt.Identity }

// Dial returns a connected Dealer, retrying until ctx is done. A refused
// login (*AuthError) or a bad endpoint is returned at once: retrying would
// not help.
func (r *Redialer) Dial(ctx context.Context) (*Dealer, error) {
	wait := r.MinBackoff
	for attempt := 1; ; attempt++ {
		d, err := Dial(r.endpoint, r.opt)
		if err == nil {
			return d, nil
		}
		var ae *AuthError
		if errors.As(err, &ae) || errors.Is(err, ErrEndpoint) || errors.Is(err, ErrTwoMechanisms) {
			return nil, err
		}
		// full jitter in [wait/2, wait)
		sleep := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		r.opt.withDefaults().Logger.Debug("transport: dial failed, retrying", "endpoint", r.endpoint, "attempt", attempt, "in", sleep, "err", err)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("transport: dial %s: %w (last error: %v)", r.endpoint, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, r.MaxBackoff)
	}
}
