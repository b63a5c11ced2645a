// Package transport is fmq's hardened ZeroMQ layer: ROUTER and DEALER
// sockets built on github.com/go-zeromq/zmq4 that can face untrusted networks.
//
// zmq4 is used unchanged. Every tcp:// endpoint is carried by this
// package's own zmq4 transport (registered as "tcpg"), which
//
//   - performs the whole ZMTP handshake itself (greeting, NULL, PLAIN or
//     CURVE, READY metadata), concurrently per connection and under a deadline,
//     checking every byte and every password; zmq4 then sees a synthetic,
//     already-validated NULL handshake and never blocks its serial accept;
//   - validates every frame header and command the peer sends afterwards and
//     cuts the connection before zmq4 parses anything malformed or too large,
//     so no byte sequence can panic the process or make it allocate more than
//     MaxFrame for one frame;
//   - on a Router, gives each connection a bounded outbound queue with its
//     own writer goroutine and write deadline, so Send never waits for a slow
//     peer (at most a 200µs in-place write when its queue is empty; what
//     must wait is copied, or with KeepBodies kept by reference); a peer whose queue
//     overflows or whose writes stall is cut;
//   - answers ZMTP 3.1 PINGs with PONGs and drops every command before the
//     socket's reader, so only messages reach Recv;
//   - with CURVE (curve.go), boxes every outbound frame as a MESSAGE and
//     opens every inbound one whole before zmq4 sees a byte of it, so zmq4
//     above still speaks NULL;
//   - writes each outbound message through its connection's own write lock
//     instead of zmq4's socket-wide send, so sends to different peers run in
//     parallel (zmq4 still accepts, handshakes and receives; see send.go).
//
// Routers receive through one channel and learn through Gone() which peer
// left, in order after that peer's last message. Dealers never reconnect by
// themselves: Lost() fires, and a Redialer makes a fresh Dealer with the
// same identity and credentials.
package transport

import (
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultMaxFrame         = 16<<20 + 64<<10
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMinWriteQueue    = 32 << 20
	DefaultMaxPending       = 256
)

// Options configure a Router or a Dealer. The zero value is usable.
type Options struct {
	// MaxFrame is the largest ZMTP frame, and the largest message, accepted
	// from a peer; a larger announcement cuts the connection before any
	// allocation. Default DefaultMaxFrame.
	MaxFrame int
	// HandshakeTimeout bounds the whole ZMTP handshake. Default 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout: a peer that accepts no outbound bytes for this long is
	// cut. Default 10s.
	WriteTimeout time.Duration
	// WriteQueue (Router only) is the number of outbound bytes buffered per
	// peer; a Send that would exceed it cuts that peer. 0 means
	// max(DefaultMinWriteQueue, 2*MaxFrame); negative disables the queue
	// (Send then writes directly, blocking up to WriteTimeout on a slow peer;
	// sends to other peers are not held up: each connection has its own
	// write lock, see send.go).
	WriteQueue int
	// KeepBodies (Router only) lets the write queue keep a large body (over
	// 4 KiB) that it must queue by reference instead of copying it: faster,
	// but the caller then gives up the slice it passed to Send and must not
	// modify it afterwards. Off (the default), Send copies what it queues,
	// so the caller may reuse its buffer as soon as Send returns; a body
	// written in place (an idle peer) is never copied either way.
	KeepBodies bool
	// MaxPending (Router only) bounds concurrent handshakes; further TCP
	// connections are closed at once. Default 256.
	MaxPending int
	// Identity is the Dealer's routing identity (1..255 bytes, not starting
	// with a zero byte). Empty: a random one (a Redialer draws it once).
	Identity string
	// PlainServer, when non-nil, makes a Router require ZMTP PLAIN with
	// these logins; failures get ERROR "400" (as libzmq's ZAP does).
	PlainServer *PasswordFile
	// PlainClient, when non-nil, makes a Dealer authenticate with PLAIN.
	PlainClient *PlainCredentials
	// CurveServer, when non-nil, makes a Router require CURVE (encryption
	// and server authentication; client keys checked when it has a list).
	CurveServer *CurveServer
	// CurveClient, when non-nil, makes a Dealer speak CURVE to a server
	// whose public key it knows.
	CurveClient *CurveClient
	// Logger receives drop and disconnect records. Default slog.Default().
	Logger *slog.Logger

	// ticketMin (tests) replaces the smallest frame a Dealer reads into a
	// pooled buffer (default ticketMin, tickets.go).
	ticketMin int
}

func (o Options) withDefaults() Options {
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.WriteQueue == 0 {
		o.WriteQueue = max(DefaultMinWriteQueue, 2*o.MaxFrame)
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) mechanism() string {
	switch {
	case o.CurveServer != nil || o.CurveClient != nil:
		return mechCURVE
	case o.PlainServer != nil || o.PlainClient != nil:
		return mechPLAIN
	}
	return mechNULL
}

// checkMechanism refuses options that ask for two mechanisms: a ZMTP
// connection has exactly one (CURVE with a login is CURVE plus FileMQ's own
// ORLY/YARLY, above the transport).
func (o Options) checkMechanism() error {
	if (o.CurveServer != nil || o.CurveClient != nil) && (o.PlainServer != nil || o.PlainClient != nil) {
		return ErrTwoMechanisms
	}
	return nil
}

// Errors returned by the sockets.
var (
	ErrClosed      = errors.New("transport: socket closed")
	ErrLost        = errors.New("transport: connection lost")
	ErrUnknownPeer = errors.New("transport: no connected peer with that identity")
	ErrEndpoint    = errors.New("transport: unsupported endpoint (want tcp://host:port)")
	// ErrTwoMechanisms: ZMTP PLAIN and CURVE were both asked for.
	ErrTwoMechanisms = errors.New("transport: ZMTP PLAIN and CURVE cannot both be used on one socket (a connection has one mechanism)")
)

// AuthError is returned by Dial when the server refused our PLAIN
// credentials or CURVE key (Reason is the server's ERROR reason, "400" from
// libzmq and from this package), or when a CURVE server failed to prove it
// holds the secret of the server key we were given (Reason says so).
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "transport: authentication refused: " + e.Reason }

// Stats are a socket's connection counters.
type Stats struct {
	Accepted     uint64            // TCP connections accepted (Router) or dialed (Dealer)
	Established  uint64            // handshakes completed
	Active       int               // established connections now open
	Pending      int               // handshakes in progress
	ClosedByPeer uint64            // established connections the peer closed
	Drops        map[string]uint64 // connections cut by us, by Reason* constant
	Pings        uint64            // ZMTP PING/PONG commands received (consumed by the guard; PINGs answered)
	MsgsDropped  uint64            // multipart or command messages not delivered
	GoneDropped  uint64            // Gone notifications lost because nobody read Gone()
	Pooled       uint64            // large frames a Dealer read into pooled buffers (Msg.Release)
	Recycled     uint64            // of those, given back by Msg.Release
	// Sections: file sections sent from their file (Router.SendSection,
	// sendFile); SectionsShort: those whose file had become shorter,
	// padded with zeros.
	Sections, SectionsShort uint64
}

// counters is the mutable form of Stats.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func (c *counters) add(f func(s *Stats)) {
	c.mu.Lock()
	f(&c.s)
	c.mu.Unlock()
}

func (c *counters) drop(reason string) {
	c.add(func(s *Stats) {
		if s.Drops == nil {
			s.Drops = map[string]uint64{}
		}
		s.Drops[reason]++
	})
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Drops = maps.Clone(c.s.Drops)
	if s.Drops == nil {
		s.Drops = map[string]uint64{}
	}
	return s
}
