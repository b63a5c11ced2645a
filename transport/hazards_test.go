package transport

// One regression test per hazard of /work/shared/zmq4-notes.md, each driven
// by raw TCP bytes, each checking that a well-behaved client is served in
// parallel and that the drop is counted under the right reason.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// statsWait bounds every wait for a counter: generous, since a passing
// test does not wait for it and a loaded machine may be slow.
const statsWait = 20 * time.Second

// waitStats waits until cond holds for the transport's Stats.
func waitStats(t testing.TB, stats func() Stats, what string, cond func(Stats) bool) {
	t.Helper()
	waitStatsWithin(t, stats, what, statsWait, cond)
}

func waitStatsWithin(t testing.TB, stats func() Stats, what string, within time.Duration, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := stats()
		if cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v; stats %+v", what, within, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitDrop waits until Stats.Drops[reason] reaches n. within is kept for
// the callers' sake: the wait is bounded by statsWait (at least).
func waitDrop(t testing.TB, stats func() Stats, reason string, n uint64, within time.Duration) {
	t.Helper()
	waitStatsWithin(t, stats, fmt.Sprintf("drops[%s] >= %d", reason, n), max(within, statsWait), func(s Stats) bool { return s.Drops[reason] >= n })
}

// baselineRoundTrip is the slowest of a few echo round trips of fresh
// dealers (dial, handshake, send, receive) to an echoing router with no
// load on it: what this machine, now, takes. Latency bounds are multiples
// of it.
func baselineRoundTrip(t testing.TB) time.Duration {
	t.Helper()
	r := listen(t, Options{})
	echo(r)
	var worst time.Duration
	for range 5 {
		t0 := time.Now()
		roundTrip(t, r.Endpoint(), Options{})
		worst = max(worst, time.Since(t0))
	}
	r.Close()
	return max(worst, time.Millisecond)
}

// Hazard 1: malformed bytes that panic zmq4's parser.
func TestHazard1MalformedInput(t *testing.T) {
	long := func(flags byte, size uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte{flags | flagLong}, size)
	}
	cases := []struct {
		name      string
		handshake bool // complete a valid handshake first
		bytes     []byte
		reason    string
	}{
		// READY whose metadata is 3 bytes: a 1-byte name and a truncated
		// value length; zmq4's Property.Write indexes past the end.
		{"ready-3-byte-metadata", false, appendCommand(nil, "READY", []byte{1, 'a', 0}), ReasonBadHandshake},
		// Metadata name length beyond the frame.
		{"ready-name-overrun", false, appendCommand(nil, "READY", []byte{200, 'S'}), ReasonBadHandshake},
		// A 3-byte READY frame: name length 5 but only 2 bytes of name.
		{"ready-3-byte-frame", false, []byte{flagCommand, 3, 5, 'R', 'E'}, ReasonBadHandshake},
		// Command announcing 2^62 bytes during the handshake.
		{"handshake-2^62", false, long(flagCommand, 1<<62), ReasonFrameTooLarge},
		// Message frame announcing 2^62 bytes after a valid handshake.
		{"message-2^62", true, long(0, 1<<62), ReasonFrameTooLarge},
		{"message-over-max", true, long(0, 1<<25), ReasonFrameTooLarge},
		{"reserved-flags", true, []byte{0x80, 0}, ReasonBadFrame},
		{"command-with-more", true, []byte{flagCommand | flagMore, 0}, ReasonBadFrame},
		{"ready-after-handshake", true, appendCommand(nil, "READY", nil), ReasonBadCommand},
		{"ping-without-ttl", true, appendCommand(nil, "PING", []byte{1}), ReasonBadCommand},
		{"empty-command", true, []byte{flagCommand, 0}, ReasonBadCommand},
		{"many-parts", true, bytes.Repeat([]byte{flagMore, 0}, maxParts+1), ReasonBadFrame},
	}
	r := listen(t, Options{MaxFrame: 1 << 20})
	echo(r)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rawDial(t, r.Endpoint())
			if tc.handshake {
				p.handshakeNULL(fmt.Sprintf("hostile-%d", i))
			} else {
				p.greet(mechNULL)
			}
			before := r.Stats().Drops[tc.reason]
			p.write(tc.bytes)
			p.expectCut(5 * time.Second)
			waitDrop(t, r.Stats, tc.reason, before+1, statsWait)
			roundTrip(t, r.Endpoint(), Options{})
		})
	}
	// Malformed greetings.
	greetings := map[string][]byte{
		"bad-signature": append([]byte{0xFE}, make([]byte, 63)...),
		"zmtp-2":        func() []byte { g := appendGreeting(nil, "NULL", false); g[10] = 2; return g }(),
		"as-server-7":   func() []byte { g := appendGreeting(nil, "NULL", false); g[32] = 7; return g }(),
		"mech-garbage":  func() []byte { g := appendGreeting(nil, "NULL", false); g[13] = 0xFF; return g }(),
	}
	for name, g := range greetings {
		t.Run(name, func(t *testing.T) {
			p := rawDial(t, r.Endpoint())
			before := r.Stats().Drops[ReasonBadGreeting]
			p.write(g)
			p.expectCut(5 * time.Second)
			waitDrop(t, r.Stats, ReasonBadGreeting, before+1, statsWait)
		})
	}
	roundTrip(t, r.Endpoint(), Options{})
}

// Hazard 2: a peer that stops reading must not stall Sends to others.
//
// Latency bounds are multiples of a baseline round trip measured first.
// With a write queue, a Send never waits for the slow peer. The write
// timeout is set far beyond the baseline (a Send that waited for the slow
// peer would take that long), and the good peer's round trips and the
// Sends to the slow peer must stay under half of it. Without a queue
// (direct), a Send to the slow peer lasts up to the write timeout, and a
// round trip of the good peer may wait behind it: up to twice that.
func TestHazard2SlowReader(t *testing.T) {
	base := baselineRoundTrip(t)
	t.Logf("baseline round trip %v", base)
	for _, mode := range []struct {
		name   string
		queue  int
		reason string
	}{
		{"queue", 4 << 20, ReasonWriteOverflow},
		{"direct", -1, ReasonWriteTimeout},
	} {
		t.Run(mode.name, func(t *testing.T) {
			writeTimeout := max(10*time.Second, 2000*base)
			limit := writeTimeout / 2
			if mode.queue < 0 {
				writeTimeout = 500 * time.Millisecond
				limit = 2*writeTimeout + 20*base + 100*time.Millisecond
			}
			r := listen(t, Options{WriteQueue: mode.queue, WriteTimeout: writeTimeout})
			good := dial(t, r.Endpoint(), Options{Identity: "good"})
			slow := rawDial(t, r.Endpoint())
			slow.handshakeNULL("slow")
			// Both say hello so the server knows them.
			good.Send([]byte("hi"))
			slow.sendMsg([]byte("hi"))
			for seen := map[string]bool{}; len(seen) < 2; {
				seen[recvMsg(t, r.Recv(), 5*time.Second).Peer] = true
			}
			// Flood the slow peer (it never reads) while the good one is served.
			chunk := make([]byte, 256<<10)
			var wg sync.WaitGroup
			var maxSend time.Duration
			var floodErr error
			flooding := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(flooding)
				for i := 0; i < 1024; i++ { // at most 256 MiB
					t0 := time.Now()
					err := r.Send("slow", chunk)
					maxSend = max(maxSend, time.Since(t0))
					if err != nil {
						floodErr = err
						return
					}
				}
			}()
			// Round trips to the good peer for as long as the flood lasts
			// (at least 20, at most 100000).
			var worst time.Duration
			trips := 0
			for done := false; trips < 100000 && (trips < 20 || !done); trips++ {
				select {
				case <-flooding:
					done = true
				default:
				}
				t0 := time.Now()
				if err := r.Send("good", []byte{byte(trips)}); err != nil {
					t.Fatal(err)
				}
				m := recvMsg(t, good.Recv(), 5*time.Second)
				if m.Body[0] != byte(trips) {
					t.Fatalf("good got %v", m.Body)
				}
				worst = max(worst, time.Since(t0))
			}
			wg.Wait()
			if floodErr == nil {
				t.Fatal("sending 256 MiB to a peer that never reads succeeded")
			}
			waitDrop(t, r.Stats, mode.reason, 1, statsWait)
			select {
			case id := <-r.Gone():
				if id != "slow" {
					t.Fatalf("gone %q", id)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no Gone for the slow peer")
			}
			t.Logf("%s: worst of %d good round trips %v (bound %v), longest Send to slow peer %v, flood ended with %v", mode.name, trips, worst, limit, maxSend, floodErr)
			if mode.queue > 0 && maxSend > limit {
				t.Errorf("queued Send to slow peer blocked %v (bound %v, write timeout %v)", maxSend, limit, writeTimeout)
			}
			if worst > limit {
				t.Errorf("good peer's round trip took %v while another peer stalled (bound %v)", worst, limit)
			}
			if err := r.Send("good", []byte("after")); err != nil {
				t.Fatal(err)
			}
			recvMsg(t, good.Recv(), 5*time.Second)
		})
	}
}

// Hazard 3: silent TCP clients must not block accepts. A good client's
// round trip is bounded by a multiple of a baseline measured first; the
// handshake timeout is set well beyond that bound, so that a good client
// queued behind the silent ones would be seen.
func TestHazard3SilentClients(t *testing.T) {
	base := baselineRoundTrip(t)
	limit := 50*base + 250*time.Millisecond
	timeout := max(1500*time.Millisecond, 4*limit)
	t.Logf("baseline round trip %v: bound %v, handshake timeout %v", base, limit, timeout)
	r := listen(t, Options{HandshakeTimeout: timeout})
	echo(r)
	var silent []*rawPeer
	for i := 0; i < 20; i++ {
		p := rawDial(t, r.Endpoint())
		if i%2 == 1 {
			p.write([]byte{0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F}) // a partial greeting
		}
		silent = append(silent, p)
	}
	greeted := rawDial(t, r.Endpoint()) // greets, then never sends READY
	greeted.greet(mechNULL)
	t0 := time.Now()
	roundTrip(t, r.Endpoint(), Options{})
	if d := time.Since(t0); d > limit {
		t.Fatalf("a good client waited %v behind silent ones (bound %v)", d, limit)
	}
	for _, p := range append(silent, greeted) {
		p.expectCut(timeout + statsWait)
	}
	waitDrop(t, r.Stats, ReasonHandshakeTimeout, 21, statsWait)
}

// Hazard 3b: too many handshakes at once are refused, not queued.
func TestHazard3MaxPending(t *testing.T) {
	r := listen(t, Options{MaxPending: 4, HandshakeTimeout: 3 * time.Second})
	echo(r)
	for i := 0; i < 4; i++ {
		rawDial(t, r.Endpoint())
	}
	waitStats(t, r.Stats, "4 handshakes pending", func(s Stats) bool { return s.Pending == 4 })
	extra := rawDial(t, r.Endpoint())
	extra.expectCut(statsWait)
	waitDrop(t, r.Stats, ReasonTooManyPending, 1, statsWait)
}

// Hazard 4: PLAIN must check credentials; the client keeps them.
func TestHazard4Plain(t *testing.T) {
	pw := NewPasswords(map[string]string{"ada": "lovelace", "bob": "$2a$04$" + "invalid"})
	r := listen(t, Options{PlainServer: pw})
	echo(r)
	roundTrip(t, r.Endpoint(), Options{PlainClient: &PlainCredentials{"ada", "lovelace"}})
	for _, cr := range []PlainCredentials{{"ada", "wrong"}, {"eve", "lovelace"}, {"", ""}} {
		_, err := Dial(r.Endpoint(), Options{PlainClient: &cr, Logger: testLogger()})
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Reason != "400" {
			t.Fatalf("%+v: err %v, want AuthError 400", cr, err)
		}
	}
	waitDrop(t, r.Stats, ReasonAuthFailed, 3, statsWait)
	// A NULL client cannot get in.
	if _, err := Dial(r.Endpoint(), Options{Logger: testLogger(), HandshakeTimeout: time.Second}); err == nil {
		t.Fatal("NULL client accepted by a PLAIN server")
	}
	waitDrop(t, r.Stats, ReasonBadMechanism, 1, statsWait)
	// A raw client skipping HELLO is refused.
	p := rawDial(t, r.Endpoint())
	p.greet(mechPLAIN)
	p.write(appendCommand(nil, "INITIATE", appendMetadata(nil, property{propSocketType, "DEALER"})))
	p.expectCut(5 * time.Second)
	// Credentials survive re-dials.
	rd := NewRedialer(r.Endpoint(), Options{PlainClient: &PlainCredentials{"ada", "lovelace"}, Logger: testLogger()})
	for i := 0; i < 3; i++ {
		d, err := rd.Dial(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if u, ok := r.waitPeerUser(rd.Identity()); !ok || u != "ada" {
			t.Fatalf("peer user %q %v", u, ok)
		}
		d.Close()
		// The router refuses a second connection of a live identity: the
		// next dial waits until it has seen this one close.
		waitStats(t, r.Stats, "the redialed connection closed", func(s Stats) bool { return s.Active == 0 })
	}
}

// waitPeerUser polls PeerUser until the peer is registered (bounded).
func (r *Router) waitPeerUser(peer string) (string, bool) {
	for deadline := time.Now().Add(statsWait); time.Now().Before(deadline); {
		if u, ok := r.PeerUser(peer); ok {
			return u, ok
		}
		time.Sleep(5 * time.Millisecond)
	}
	return "", false
}

// Hazard 5: the server learns who left, after that peer's last message;
// the client learns the server is gone and redials with the same identity.
func TestHazard5Disconnects(t *testing.T) {
	r := listen(t, Options{})
	d := dial(t, r.Endpoint(), Options{Identity: "leaver"})
	const n = 50
	for i := 0; i < n; i++ {
		if err := d.Send([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	for i := 0; i < n; i++ {
		if i == n-1 {
			// The connection's reader reaches the EOF once the messages
			// before the last are read: it is seen while the last waits.
			waitStats(t, r.Stats, "the leaver's EOF seen", func(s Stats) bool { return s.ClosedByPeer == 1 })
			select {
			case id := <-r.Gone():
				t.Fatalf("Gone(%q) with the last message unread", id)
			default:
			}
		}
		select {
		case id := <-r.Gone():
			t.Fatalf("Gone(%q) before message %d", id, i)
		case m := <-r.Recv():
			if m.Body[0] != byte(i) || m.Peer != "leaver" {
				t.Fatalf("message %d: %+v", i, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d missing", i)
		}
	}
	select {
	case id := <-r.Gone():
		if id != "leaver" {
			t.Fatalf("gone %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Gone")
	}
	if s := r.Stats(); s.ClosedByPeer != 1 || s.Active != 0 {
		t.Fatalf("stats %+v", s)
	}

	// Server-side disconnect: the dealer sees Lost, redials with the same
	// identity, and its first message after the redial arrives.
	rd := NewRedialer(r.Endpoint(), Options{Logger: testLogger()})
	d, err := rd.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d.Send([]byte("one"))
	m := recvMsg(t, r.Recv(), 5*time.Second)
	if !r.Disconnect(m.Peer) {
		t.Fatal("Disconnect: unknown peer")
	}
	select {
	case <-d.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("dealer did not notice the disconnect")
	}
	if err := d.Send([]byte("x")); !errors.Is(err, ErrLost) {
		t.Fatalf("Send after Lost: %v", err)
	}
	if id := <-r.Gone(); id != m.Peer {
		t.Fatalf("gone %q", id)
	}
	d.Close()
	d2, err := rd.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	d2.Send([]byte("two"))
	m2 := recvMsg(t, r.Recv(), 5*time.Second)
	if m2.Peer != m.Peer || string(m2.Body) != "two" {
		t.Fatalf("after redial got %+v, want peer %q", m2, m.Peer)
	}

	// Server closes: the dealer's Lost fires and Recv closes.
	r.Close()
	select {
	case <-d2.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("dealer did not notice the server closing")
	}
	if _, ok := <-d2.Recv(); ok {
		t.Fatal("Recv not closed after Lost")
	}
}

// Hazard 5b: the Redialer backs off while the server is down, and reaches
// it once it is up.
func TestRedialerBackoff(t *testing.T) {
	r := listen(t, Options{})
	ep := r.Endpoint()
	r.Close()
	rd := NewRedialer(ep, Options{Logger: testLogger()})
	rd.MinBackoff = 20 * time.Millisecond
	rd.MaxBackoff = 80 * time.Millisecond
	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := rd.Dial(ctx); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Fatalf("gave up after %v, before ctx", d)
	}
}

// Hazard 6: PINGs are dropped; Close with unread messages leaks nothing.
func TestHazard6PingAndCloseLeak(t *testing.T) {
	r, err := Listen("tcp://127.0.0.1:0", Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p := rawDial(t, r.Endpoint())
	p.handshakeNULL("pinger")
	p.write(appendCommand(nil, "PING", []byte{0, 10, 'c', 't', 'x'}))
	if name, ctx := p.readCmd(); name != "PONG" || string(ctx) != "ctx" {
		t.Fatalf("got %s %q, want PONG \"ctx\"", name, ctx)
	}
	p.write(appendCommand(nil, "PONG", nil))
	p.sendMsg([]byte("data"))
	m := recvMsg(t, r.Recv(), 5*time.Second)
	if string(m.Body) != "data" {
		t.Fatalf("got %q", m.Body)
	}
	if s := r.Stats(); s.Pings != 2 {
		t.Fatalf("pings dropped %d", s.Pings)
	}
	// Many unread messages from several peers, then Close.
	var ds []*Dealer
	for i := 0; i < 5; i++ {
		d, err := Dial(r.Endpoint(), Options{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		for j := 0; j < 30; j++ {
			d.Send(make([]byte, 1000))
		}
	}
	// Every dealer connected (its messages on their way, none read).
	waitStats(t, r.Stats, "6 connections", func(s Stats) bool { return s.Established == 6 })
	r.Close()
	for _, d := range ds {
		d.Close()
	}
	p.c.Close()
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

// Hazard 7: unknown identities are reported; a duplicate identity is
// refused while the first connection lives, and free again after its Gone.
func TestHazard7Identities(t *testing.T) {
	r := listen(t, Options{})
	if err := r.Send("nobody", []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("send to unknown: %v", err)
	}
	a := dial(t, r.Endpoint(), Options{Identity: "twin"})
	a.Send([]byte("a"))
	recvMsg(t, r.Recv(), 5*time.Second)
	b := dial(t, r.Endpoint(), Options{Identity: "twin"})
	select {
	case <-b.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("a second connection with a live identity was not refused")
	}
	waitDrop(t, r.Stats, ReasonDuplicateID, 1, time.Second)
	if err := r.Send("twin", []byte("to-a")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, a.Recv(), 5*time.Second); string(m.Body) != "to-a" {
		t.Fatalf("got %q", m.Body)
	}
	a.Send([]byte("a2"))
	if m := recvMsg(t, r.Recv(), 5*time.Second); string(m.Body) != "a2" {
		t.Fatalf("got %q", m.Body)
	}
	a.Close()
	select {
	case id := <-r.Gone():
		if id != "twin" {
			t.Fatalf("Gone(%q)", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Gone for the closed connection")
	}
	c := dial(t, r.Endpoint(), Options{Identity: "twin"}) // free again
	c.Send([]byte("c"))
	if m := recvMsg(t, r.Recv(), 5*time.Second); string(m.Body) != "c" || m.Peer != "twin" {
		t.Fatalf("got %q from %q", m.Body, m.Peer)
	}
	// Identities starting with a zero byte are reserved for generated ones.
	p := rawDial(t, r.Endpoint())
	p.greet(mechNULL)
	p.write(appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "DEALER"}, property{propIdentity, "\x00abcd"})))
	p.expectCut(5 * time.Second)
	waitDrop(t, r.Stats, ReasonBadIdentity, 1, statsWait)
	// An anonymous peer gets a generated identity usable for replies.
	q := rawDial(t, r.Endpoint())
	q.handshakeNULL("")
	q.sendMsg([]byte("anon"))
	m := recvMsg(t, r.Recv(), 5*time.Second)
	if len(m.Peer) != 5 || m.Peer[0] != 0 {
		t.Fatalf("generated identity %q", m.Peer)
	}
	// Incompatible socket types are refused.
	s := rawDial(t, r.Endpoint())
	s.greet(mechNULL)
	s.write(appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "PUB"})))
	s.expectCut(5 * time.Second)
	waitDrop(t, r.Stats, ReasonBadSocketType, 1, statsWait)
}

// With PLAIN, one login cannot evict another's identity.
func TestPlainIdentityTheft(t *testing.T) {
	pw := NewPasswords(map[string]string{"ada": "a", "eve": "e"})
	r := listen(t, Options{PlainServer: pw})
	ada := dial(t, r.Endpoint(), Options{Identity: "ada-box", PlainClient: &PlainCredentials{"ada", "a"}})
	ada.Send([]byte("hi"))
	recvMsg(t, r.Recv(), 5*time.Second)
	eve, err := Dial(r.Endpoint(), Options{Identity: "ada-box", PlainClient: &PlainCredentials{"eve", "e"}, Logger: testLogger()})
	if err == nil {
		// the handshake succeeds; the router then refuses the identity
		select {
		case <-eve.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("identity theft not refused")
		}
		eve.Close()
	}
	waitDrop(t, r.Stats, ReasonDuplicateID, 1, statsWait)
	if err := r.Send("ada-box", []byte("still ada")); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, ada.Recv(), 5*time.Second); string(m.Body) != "still ada" {
		t.Fatalf("got %q", m.Body)
	}
}

// Hazard 2, client side: a server that stops reading makes Dealer.Send fail
// within WriteTimeout (the connection is cut and Lost fires).
func TestDealerWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // a raw ROUTER: handshake, then never read again
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write(appendGreeting(nil, mechNULL, false))
		c.Write(appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "ROUTER"})))
		accepted <- c
	}()
	d := dial(t, "tcp://"+ln.Addr().String(), Options{WriteTimeout: 300 * time.Millisecond})
	srv := <-accepted
	defer srv.Close()
	chunk := make([]byte, 1<<20)
	t0 := time.Now()
	var sendErr error
	for i := 0; i < 512 && sendErr == nil; i++ {
		sendErr = d.Send(chunk)
	}
	if !errors.Is(sendErr, ErrLost) {
		t.Fatalf("Send to a server that never reads: %v", sendErr)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	select {
	case <-d.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed")
	}
	waitDrop(t, d.Stats, ReasonWriteTimeout, 1, statsWait)
}
