package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/internal/exclude"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/machines"
	"github.com/fmq/fmq/transport"
)

// ClientConfig configures a FileMQ client (fmqrun sync).
type ClientConfig struct {
	Machine   string            // machine file; "" = the embedded fmq_client.toml
	Connect   string            // server endpoint
	Subscribe []string          // virtual path prefixes (default "/")
	Inbox     string            // directory the subscriptions are mirrored into
	Settings  map[string]string // machine setting overrides (window, slice, ...)
	Login     string            // PLAIN credentials, when the server asks
	Password  string
	// Fsync flushes every received file to disk before renaming it into
	// place (durability across power loss; see inbox.Options.Fsync).
	Fsync bool
	// Delete makes the inbox an exact mirror (fmqrun sync --delete): server
	// deletes and updates apply to files fmq did not write too (never
	// outside the subscriptions). Off, such files are kept.
	Delete bool
	// NumericIDs gives files the server's owner and group ids as they are,
	// not mapped by name (inbox.Options.NumericIDs, rsync --numeric-ids).
	NumericIDs bool
	// Exclude names inbox files the client neither writes nor deletes
	// (rsync-like patterns, from the inbox; see internal/exclude).
	Exclude []string
	// Once stops after the first complete sync (KTHXBAI, partial kept).
	Once bool
	// Quiet is how long --once waits, once its subscriptions are answered,
	// for a server that never sends the synced marker (the C reference)
	// to send something more before it counts the sync as done. Default 5s.
	Quiet time.Duration
	// Retries is how many extra sessions --once runs when files could not be
	// stored (a full disk, a failed verification) before giving up. Default 3.
	Retries   int
	Transport transport.Options
	Logger    *slog.Logger
	Trace     bool
	Wire      func(line string)
	WireTo    func(peer, line string, body []byte) // Wire with the peer and the frame (replaces Wire)
	// OnNote, if set, sees every notification of the client machine (on the
	// client's own goroutine; it must not block).
	OnNote func(interp.Notification)
}

// Client is a running FileMQ client.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	ib     *inbox.Inbox
	peer   *actions.FMQClientPeer
	engine *interp.Engine
	dealer atomic.Pointer[transport.Dealer]
	opened atomic.Pointer[transport.Dealer] // the connection OHAI was sent on
	latest atomic.Pointer[transport.Dealer] // the latest connection, kept once closed (TransportStats)
	topt   transport.Options                // dial options (identity, credentials, limits)
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	synced     chan struct{}
	syncedOnce sync.Once
	lost       chan string
	ended      chan struct{} // the engine goroutine returned
	done       chan struct{} // ... and its last notifications were handled
	stopping   atomic.Bool   // the host asked the machine to stop

	mu       sync.Mutex
	err      error
	sessions int
	failed   int64 // Problems counter at the start of the session
	keptAt   int64 // Kept counter at the start of the session
	failing  int   // consecutive syncs of a running client that left files unstored

	connected atomic.Bool  // a connection was made at least once
	dialFails atomic.Int64 // failed connection attempts
	noSynced  atomic.Bool  // --once ended without the server's synced marker
}

// StartClient opens the inbox and starts syncing.
func StartClient(cfg ClientConfig) (*Client, error) {
	if cfg.Machine == "" {
		cfg.Machine = machines.EmbeddedPrefix + "fmq_client.toml" // never ./fmq_client.toml by accident
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Subscribe) == 0 {
		cfg.Subscribe = []string{"/"}
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 5 * time.Second
	}
	for _, s := range cfg.Subscribe {
		if err := actions.CheckVirtualPath(s); err != nil {
			return nil, fmt.Errorf("subscription: %w", err)
		}
	}
	if cfg.Connect == "" {
		return nil, errors.New("fmq client: no server endpoint (--connect)")
	}
	excl, err := exclude.Compile(cfg.Exclude)
	if err != nil {
		return nil, err
	}
	m, err := LoadMachine(cfg.Machine)
	if err != nil {
		return nil, err
	}
	ib, err := inbox.OpenOptions(cfg.Inbox, inbox.Options{Logger: cfg.Logger, Fsync: cfg.Fsync, Exact: cfg.Delete, NumericIDs: cfg.NumericIDs})
	if err != nil {
		return nil, err
	}
	peer := actions.NewFMQClientPeer(ib, cfg.Subscribe)
	peer.Login, peer.Password = cfg.Login, cfg.Password
	peer.Exclude = excl
	c := &Client{cfg: cfg, log: cfg.Logger, ib: ib, peer: peer, start: time.Now(),
		synced: make(chan struct{}), lost: make(chan string, 4),
		ended: make(chan struct{}), done: make(chan struct{})}
	eng, err := interp.NewClient(m, interp.Options{
		Sender: interp.SenderFunc(func(_ string, body []byte) error {
			// A send on a lost (or not yet replaced) connection is dropped:
			// the loss itself reaches the machine as "lost" from
			// connections(), which then redials. Failing the send would
			// raise "error" in the machine and end the client for good.
			d := c.dealer.Load()
			if d == nil {
				c.log.Debug("send dropped: not connected")
				return nil
			}
			// A session starts with OHAI. Until the machine has sent it on
			// this connection, what it sends belongs to the previous session
			// (a chunk taken just before the loss was handled, granting
			// credit): on the new connection the server would see a NOM
			// before OHAI and answer RTFM.
			if c.opened.Load() != d {
				if !isOhai(body) {
					c.log.Debug("send dropped: left over from the previous session")
					return nil
				}
				c.opened.Store(d)
			}
			if err := d.Send(body); err != nil {
				if errors.Is(err, transport.ErrLost) || errors.Is(err, transport.ErrClosed) {
					c.log.Debug("send dropped: connection lost", "err", err)
					return nil
				}
				return err
			}
			return nil
		}),
		Settings: cfg.Settings,
		NewPeer:  func(string) any { return peer },
		Logger:   cfg.Logger,
		Trace:    cfg.Trace,
		Wire:     cfg.Wire,
		WireTo:   cfg.WireTo,
	})
	if err != nil {
		ib.Close()
		return nil, err
	}
	c.engine = eng
	c.topt = cfg.Transport
	c.topt.Logger = cfg.Logger

	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		defer close(c.ended)
		if err := eng.Run(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
			c.fail(err)
		}
	}()
	go func() { defer c.wg.Done(); c.connections(ctx) }()
	go func() { defer c.wg.Done(); c.notifications(ctx) }()
	return c, nil
}

// Outcomes a client can end with; test with errors.Is on Err/Wait/Close.
var (
	// ErrCannotConnect: the endpoint is wrong or never answered (with
	// ClientConfig.Once, after ConnectTimeout).
	ErrCannotConnect = errors.New("cannot connect")
	// ErrRefused: the server refused us: SRSLY (login), RTFM (protocol,
	// a subscription it will not serve), or ZeroMQ PLAIN at connection time.
	ErrRefused = errors.New("refused by the server")
	// ErrPartial: the sync ended with files not stored.
	ErrPartial = errors.New("partial transfer")
)

// DisplayEndpoint is an endpoint as a user wrote it (the transport's
// internal scheme, tcpg://, shown as tcp://).
func DisplayEndpoint(s string) string {
	return strings.ReplaceAll(s, transport.Scheme+"://", "tcp://")
}

// dialError words a failed dial for a user, and tells whether retrying
// can help.
func dialError(err error) (msg string, permanent bool) {
	var ae *transport.AuthError
	var pe *transport.ProtocolError
	var ade *net.AddrError
	var dns *net.DNSError
	var oe *net.OpError
	switch {
	case errors.As(err, &ae):
		return "ZeroMQ authentication refused: " + ae.Reason, true
	case errors.As(err, &pe) && pe.Reason == transport.ReasonBadMechanism:
		return "the server and we disagree on ZeroMQ security (" + pe.Detail + "); --zmtp-login gives PLAIN credentials", true
	case errors.Is(err, transport.ErrEndpoint), errors.As(err, &ade):
		return "bad endpoint (want tcp://HOST:PORT): " + DisplayEndpoint(err.Error()), true
	case errors.As(err, &dns):
		return "unknown host " + strconvQuote(dns.Name) + ": " + dns.Err, false
	case errors.As(err, &oe):
		return DisplayEndpoint(oe.Error()), false
	}
	return DisplayEndpoint(err.Error()), false
}

func strconvQuote(s string) string { return `"` + s + `"` }

// dial connects, retrying with a visible back-off (every failure is logged
// with the wait before the next attempt, which doubles up to 30 s). Errors
// that retrying cannot mend end it at once, wrapped in ErrCannotConnect or
// ErrRefused.
func (c *Client) dial(ctx context.Context) (*transport.Dealer, error) {
	wait := 500 * time.Millisecond
	ep := DisplayEndpoint(c.cfg.Connect)
	for attempt := 1; ; attempt++ {
		// A new random identity for every session (transport.Dial draws
		// one): a session is a new ZeroMQ peer for the server (spec 1).
		// Reusing it would let the new connection replace the old one
		// inside the server's transport before the old session is
		// forgotten, and the new OHAI would reach the wrong session.
		d, err := transport.Dial(c.cfg.Connect, c.topt)
		if err == nil {
			if attempt > 1 {
				c.log.Info("connected", "endpoint", ep, "attempts", attempt)
			}
			return d, nil
		}
		msg, permanent := dialError(err)
		if permanent {
			var ae *transport.AuthError
			var pe *transport.ProtocolError
			if errors.As(err, &ae) || errors.As(err, &pe) {
				return nil, fmt.Errorf("%w: %s: %s", ErrRefused, ep, msg)
			}
			return nil, fmt.Errorf("%w to %s: %s", ErrCannotConnect, ep, msg)
		}
		c.dialFails.Add(1)
		c.log.Warn("cannot connect; retrying", "endpoint", ep, "err", msg, "attempt", attempt, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// reasonTransportLost is the reason connections() gives the machine when
// the transport lost the server.
const reasonTransportLost = "connection lost"

func isOhai(body []byte) bool {
	return len(body) >= 3 && uint16(body[0])<<8|uint16(body[1]) == filemq.Signature && body[2] == filemq.IDOhai
}

// connections dials and, for each connection, runs the hosting pump
// (Pump) into the engine, then redials with back-off once the server is
// lost. The pump delivers the connection's frames and its departure (the
// machine's "lost") in transport order; the next connection's "connect"
// is called only once the pump of the previous one has returned, so a
// frame of an old connection never reaches the new session.
func (c *Client) connections(ctx context.Context) {
	var pause time.Duration
	for {
		d, err := c.dial(ctx)
		if err != nil {
			if ctx.Err() == nil {
				// Refused at connection time (ZMTP PLAIN) or a bad endpoint:
				// redialing cannot help. Leave with the error.
				c.fail(err)
				c.engine.Call("stop", nil)
			}
			return
		}
		c.connected.Store(true)
		c.latest.Store(d)
		began := time.Now()
		progress := c.progress()
		c.dealer.Store(d)
		c.mu.Lock()
		c.sessions++
		c.failed = c.peer.Stats.Problems.Load()
		c.keptAt = c.peer.Stats.Kept.Load()
		c.mu.Unlock()
		if err := c.engine.Call("connect", nil); err != nil {
			c.log.Warn("connect call failed", "err", err)
		}
		pumped := make(chan struct{})
		go func() { defer close(pumped); Pump(ctx, d, clientSink{c}) }()
		reason := ""
		select {
		case <-ctx.Done():
		case <-c.ended:
		case <-pumped: // the transport lost the server (the pump told the machine)
			reason = reasonTransportLost
		case reason = <-c.lost:
		}
		c.dealer.Store(nil)
		d.Close()
		<-pumped
		if ctx.Err() != nil {
			return
		}
		select {
		case <-c.ended:
			return
		default:
		}
		// drain a duplicate loss report of the same session
		for len(c.lost) > 0 {
			<-c.lost
		}
		// Sessions that end without bringing anything (a broken server, a
		// server that drops us at once) are retried with a growing pause;
		// one that made progress (cut by the network) is redialed at once.
		if time.Since(began) > time.Minute || c.progress() != progress {
			pause = 0
		} else {
			pause = min(max(2*pause, 250*time.Millisecond), 30*time.Second)
		}
		c.log.Info("reconnecting", "endpoint", DisplayEndpoint(c.cfg.Connect), "why", reason, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.ended:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// clientSink is the FileMQ client's side of a Pump: frames go to the
// engine, in order with its calls; a departure is the machine's "lost"
// (the machine goes idle and the host redials), not the end of its one
// instance.
type clientSink struct{ c *Client }

func (s clientSink) Deliver(_ string, body []byte) { s.c.engine.Deliver("", body) }

func (s clientSink) DeliverOwned(_ string, body []byte, release func()) {
	s.c.engine.DeliverOwned("", body, release)
}

func (s clientSink) Forget(string) {
	if err := s.c.engine.Call("lost", map[string]any{"reason": reasonTransportLost}); err != nil {
		s.c.log.Warn("lost call failed", "err", err)
	}
}

// progress sums the counters a useful session moves.
func (c *Client) progress() int64 {
	st := c.peer.Stats
	return st.Bytes.Load() + st.Files.Load() + st.Deleted.Load() + st.Kept.Load() + st.Excluded.Load() + st.Links.Load() + st.Dirs.Load()
}

// notifications handles the machine's notifications. When the engine
// goroutine ends it handles what is left, records an unexplained end as the
// client's error, and only then closes Done, so Wait sees the final Err
// (SRSLY, RTFM, a machine that died on an error).
func (c *Client) notifications(ctx context.Context) {
	defer close(c.done)
	var quiet <-chan time.Time
	if c.cfg.Once {
		tk := time.NewTicker(c.cfg.Quiet / 10)
		defer tk.Stop()
		quiet = tk.C
	}
	for {
		select {
		case <-quiet:
			c.checkQuiet()
		case <-c.ended:
		drain:
			for {
				select {
				case n := <-c.engine.Notifications():
					c.handle(n)
				default:
					break drain
				}
			}
			if ctx.Err() == nil && !c.stopping.Load() {
				c.fail(errors.New("fmq client: the client machine ended on an unhandled error (see the log)"))
			}
			return
		case n := <-c.engine.Notifications():
			c.handle(n)
		}
	}
}

// checkQuiet ends --once against a server without the synced marker
// extension: once every subscription is answered and nothing has come for
// Quiet, the server has nothing more to send.
func (c *Client) checkQuiet() {
	st := c.peer.Stats
	acked := st.AckedAt.Load()
	if st.Synced.Load() || st.FMQServer.Load() || acked == 0 || c.noSynced.Load() {
		return // an fmq server sends the marker: wait for it, however busy the server is
	}
	select {
	case <-c.synced:
		return
	default:
	}
	last, quiet := st.LastChunk.Load(), c.cfg.Quiet
	if last < acked {
		// Nothing at all yet: a C server with nothing to send, or a
		// server too busy to start; give the latter more time.
		last, quiet = acked, 3*quiet
	}
	if time.Since(time.Unix(0, last)) < quiet {
		return
	}
	c.noSynced.Store(true)
	c.log.Warn("the server does not send the synced marker (an older FILEMQ server, such as the C reference): counting the sync as done, nothing more came", "for", quiet)
	c.onSynced()
}

// NoSyncedMarker reports whether --once finished by waiting out a server
// that does not send the synced marker.
func (c *Client) NoSyncedMarker() bool { return c.noSynced.Load() }

// Connected reports whether a connection was ever made.
func (c *Client) Connected() bool { return c.connected.Load() }

// DialFailures counts the failed connection attempts.
func (c *Client) DialFailures() int64 { return c.dialFails.Load() }

func (c *Client) handle(n interp.Notification) {
	if c.cfg.OnNote != nil {
		c.cfg.OnNote(n)
	}
	switch n.Name {
	case actions.NoteFile, actions.NoteDeleted:
		// Live changes after the first sync, one line each (the first
		// sync itself is summed up, not listed).
		select {
		case <-c.synced:
			what := "received"
			if n.Name == actions.NoteDeleted {
				what = "deleted"
			}
			c.log.Info(what, "path", n.Value)
		default:
		}
	case actions.NoteSynced:
		c.onSynced()
	case actions.NoteLost:
		reason, _ := n.Value.(string)
		if reason == reasonTransportLost {
			// The machine echoes the loss connections() told it about; the
			// echo often arrives after the redial and would end the new
			// session at once.
			return
		}
		select {
		case c.lost <- reason:
		default:
		}
	case actions.NoteDenied:
		if err, ok := n.Value.(error); ok { // refused by us, not by the server
			c.fail(fmt.Errorf("%w: cannot log in: %w", ErrRefused, err))
		} else {
			c.fail(fmt.Errorf("%w: access denied (SRSLY): %v", ErrRefused, n.Value))
		}
	case actions.NoteRejected:
		c.fail(fmt.Errorf("%w: session rejected (RTFM): %v", ErrRefused, n.Value))
	}
}

// onSynced: every subscription is in sync (the marker, or a quiet server).
func (c *Client) onSynced() {
	c.mu.Lock()
	problems := c.peer.Stats.Problems.Load() - c.failed
	if kept := c.peer.Stats.Kept.Load() - c.keptAt; kept > 0 {
		c.keptAt += kept
		c.log.Info("kept files fmq did not write (or installed from another server), which the server does not have (sync --delete would remove them)", "files", kept)
	}
	retry := c.cfg.Once && problems > 0 && c.sessions <= c.cfg.Retries
	if problems > 0 {
		c.failing++
	} else {
		c.failing = 0
	}
	failing := c.failing
	c.mu.Unlock()
	if problems > 0 && (retry || !c.cfg.Once) {
		// Sync again for the files that could not be stored (a full
		// disk may get room again): --once a few times, a running
		// client for ever, backing off to once a minute.
		delay := 500 * time.Millisecond
		if !c.cfg.Once {
			delay = min(delay<<min(failing-1, 7), time.Minute)
		}
		c.log.Warn("files could not be stored; syncing again", "problems", problems, "in", delay)
		time.AfterFunc(delay, func() {
			c.engine.Call("lost", map[string]any{"reason": "retrying failed files"})
		})
		if retry {
			return
		}
	}
	if c.cfg.Once && problems > 0 {
		c.fail(fmt.Errorf("%w: %d file(s) could not be stored", ErrPartial, problems))
	}
	c.syncedOnce.Do(func() { close(c.synced) })
	if c.cfg.Once {
		c.Stop()
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// Stats are the client's live counters.
func (c *Client) Stats() *actions.ClientStats { return c.peer.Stats }

// TransportStats returns the counters of the latest connection (its
// frames received into pooled buffers and given back, its drops), zero
// before the first.
func (c *Client) TransportStats() transport.Stats {
	if d := c.latest.Load(); d != nil {
		return d.Stats()
	}
	return transport.Stats{}
}

// Inbox is the client's inbox.
func (c *Client) Inbox() *inbox.Inbox { return c.ib }

// Engine exposes the engine.
func (c *Client) Engine() *interp.Engine { return c.engine }

// Synced is closed once every subscription has completed its first sync.
func (c *Client) Synced() <-chan struct{} { return c.synced }

// Done is closed when the client machine has terminated.
func (c *Client) Done() <-chan struct{} { return c.done }

// Sessions counts the connections made so far.
func (c *Client) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions
}

// Stop leaves politely: KTHXBAI, partial file kept resumable. It does not wait.
func (c *Client) Stop() {
	c.stopping.Store(true)
	c.engine.Call("stop", nil)
}

// Wait blocks until the machine terminates (or ctx ends) and returns the
// client's error, if any.
func (c *Client) Wait(ctx context.Context) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Err()
}

// Err is the first failure (refused access, files that could not be stored).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close stops everything at once and saves the inbox's digest cache.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	if d := c.dealer.Swap(nil); d != nil {
		d.Close()
	}
	if err := c.ib.Close(); err != nil {
		return err
	}
	return c.Err()
}
