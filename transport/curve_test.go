package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

func curvePair(t testing.TB) (server CurveKeyPair, client CurveKeyPair) {
	t.Helper()
	s, err := NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestCurveEcho(t *testing.T) {
	srv, cli := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srv, Clients: NewCurveKeySet(cli.Public)}})
	echo(r)
	d := dial(t, r.Endpoint(), Options{Identity: "alice", CurveClient: &CurveClient{ServerKey: srv.Public, Keys: cli}})
	for _, n := range []int{0, 1, 200, 255, 256, 4096, 70000, 1 << 20} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		if err := d.Send(body); err != nil {
			t.Fatal(err)
		}
		got := recvMsg(t, d.Recv(), 10*time.Second)
		if !bytes.Equal(got.Body, body) {
			t.Fatalf("%d bytes: echo of %d bytes differs", n, len(got.Body))
		}
	}
	if k, ok := r.PeerKey("alice"); !ok || k != cli.Public {
		t.Fatalf("PeerKey %v %v, want %v", k, ok, cli.Public)
	}
	if s := r.Stats(); s.Established != 1 || len(s.Drops) != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Any client with a valid handshake gets in when there is no key list, and
// a client without keys of its own gets a fresh pair (and a server given
// only its secret key derives the public one).
func TestCurveAnyClient(t *testing.T) {
	srv, _ := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: CurveKeyPair{Secret: srv.Secret}}})
	echo(r)
	roundTrip(t, r.Endpoint(), Options{CurveClient: &CurveClient{ServerKey: srv.Public}})
}

func TestCurveWrongServerKey(t *testing.T) {
	srv, cli := curvePair(t)
	other, _ := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srv}})
	_, err := Dial(r.Endpoint(), Options{Logger: testLogger(), CurveClient: &CurveClient{ServerKey: other.Public, Keys: cli}})
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), other.Public.String()) {
		t.Fatalf("dial with the wrong server key: %v, want an AuthError naming the key", err)
	}
	waitDrop(t, r.Stats, ReasonBadBox, 1, 5*time.Second)
	// The Redialer gives up at once: retrying cannot help.
	ctx, cancel := contextWithTimeout(t, 10*time.Second)
	defer cancel()
	if _, err := NewRedialer(r.Endpoint(), Options{Logger: testLogger(), CurveClient: &CurveClient{ServerKey: other.Public}}).Dial(ctx); !errors.As(err, &ae) {
		t.Fatalf("redial: %v", err)
	}
}

func TestCurveUnknownClientKey(t *testing.T) {
	srv, cli := curvePair(t)
	_, stranger := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srv, Clients: NewCurveKeySet(cli.Public)}})
	echo(r)
	_, err := Dial(r.Endpoint(), Options{Logger: testLogger(), CurveClient: &CurveClient{ServerKey: srv.Public, Keys: stranger}})
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Reason != "400" {
		t.Fatalf("dial with an unknown client key: %v, want AuthError 400", err)
	}
	waitDrop(t, r.Stats, ReasonAuthFailed, 1, 5*time.Second)
	roundTrip(t, r.Endpoint(), Options{CurveClient: &CurveClient{ServerKey: srv.Public, Keys: cli}})
}

func TestCurveMechanismMismatchAndTwoMechanisms(t *testing.T) {
	srv, _ := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srv}})
	if _, err := Dial(r.Endpoint(), Options{Logger: testLogger()}); err == nil {
		t.Fatal("NULL dealer let into a CURVE router")
	}
	waitDrop(t, r.Stats, ReasonBadMechanism, 1, 5*time.Second)
	_, err := Listen("tcp://127.0.0.1:0", Options{CurveServer: &CurveServer{Keys: srv}, PlainServer: NewPasswords(nil)})
	if !errors.Is(err, ErrTwoMechanisms) {
		t.Fatalf("PLAIN and CURVE: %v", err)
	}
	_, err = Dial(r.Endpoint(), Options{CurveClient: &CurveClient{ServerKey: srv.Public}, PlainClient: &PlainCredentials{"a", "b"}})
	if !errors.Is(err, ErrTwoMechanisms) {
		t.Fatalf("PLAIN and CURVE: %v", err)
	}
}

func TestCurveHandshakeStall(t *testing.T) {
	srv, _ := curvePair(t)
	// the timeout must also let the real CURVE handshake below complete
	// on a loaded machine under -race (it boxes and opens four commands)
	r := listen(t, Options{HandshakeTimeout: time.Second, CurveServer: &CurveServer{Keys: srv}})
	echo(r)
	p := rawDial(t, r.Endpoint())
	p.greet(mechCURVE)
	// a HELLO cut short, then silence
	p.write(appendCommand(nil, "HELLO", make([]byte, helloBodyLen))[:50])
	p.expectCut(5 * time.Second)
	waitDrop(t, r.Stats, ReasonHandshakeTimeout, 1, 5*time.Second)
	roundTrip(t, r.Endpoint(), Options{CurveClient: &CurveClient{ServerKey: srv.Public}})
}

// zmtpProxy relays a Dealer's connection to a Router and lets edit change
// the client's frames (after the 64-byte greeting) on the way.
type zmtpProxy struct {
	edit func(i int, frame []byte) [][]byte
}

func newZMTPProxy(t *testing.T, target string, edit func(i int, frame []byte) [][]byte) string {
	p := &zmtpProxy{edit: edit}
	return testutil.StartProxy(t, target, p.relay, nil).Endpoint
}

func (p *zmtpProxy) relay(to io.Writer, from io.Reader) {
	var g [greetingLen]byte
	if _, err := io.ReadFull(from, g[:]); err != nil {
		return
	}
	to.Write(g[:])
	for i := 0; ; i++ {
		var hdr [9]byte
		if _, err := io.ReadFull(from, hdr[:1]); err != nil {
			return
		}
		hl := headerLen(hdr[0])
		if _, err := io.ReadFull(from, hdr[1:hl]); err != nil {
			return
		}
		size := uint64(hdr[1])
		if hl == 9 {
			size = binary.BigEndian.Uint64(hdr[1:9])
		}
		frame := make([]byte, hl+int(size))
		copy(frame, hdr[:hl])
		if _, err := io.ReadFull(from, frame[hl:]); err != nil {
			return
		}
		for _, out := range p.edit(i, frame) {
			if _, err := to.Write(out); err != nil {
				return
			}
		}
	}
}

// After HELLO (0) and INITIATE (1), frame 2 on is data: each test breaks
// frame 3 (a large message) one way and checks that the Router cuts the
// connection and delivers nothing of it.
func TestCurveTamperedFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(frame []byte) [][]byte
		reason string
	}{
		{"flipped-byte", func(f []byte) [][]byte {
			g := bytes.Clone(f)
			g[len(g)/2] ^= 0x40
			return [][]byte{g}
		}, ReasonBadBox},
		// the genuine copy is delivered, the replay is not
		{"replayed", func(f []byte) [][]byte { return [][]byte{f, f} }, ReasonBadNonce},
		{"truncated-command", func(f []byte) [][]byte {
			return [][]byte{append([]byte{0, 20}, append(bytes.Clone(msgCommand), make([]byte, 12)...)...)}
		}, ReasonBadCommand},
		{"not-a-message", func(f []byte) [][]byte {
			return [][]byte{appendCommand(nil, "READY", make([]byte, 40))}
		}, ReasonBadCommand},
		{"with-more", func(f []byte) [][]byte {
			g := bytes.Clone(f)
			g[0] |= flagMore
			return [][]byte{g}
		}, ReasonBadFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := curvePair(t)
			r := listen(t, Options{CurveServer: &CurveServer{Keys: srv}})
			got := make(chan []byte, 10)
			go func() {
				for m := range r.Recv() {
					got <- m.Body
				}
			}()
			ep := newZMTPProxy(t, r.Endpoint(), func(i int, f []byte) [][]byte {
				if i == 3 {
					return tc.edit(f)
				}
				return [][]byte{f}
			})
			d := dial(t, ep, Options{CurveClient: &CurveClient{ServerKey: srv.Public, Keys: cli}})
			d.Send([]byte("first"))
			if b := <-got; string(b) != "first" {
				t.Fatalf("first message %q", b)
			}
			d.Send(bytes.Repeat([]byte("secret"), 20000))
			d.Send([]byte("after"))
			waitDrop(t, r.Stats, tc.reason, 1, 5*time.Second)
			select {
			case <-d.Lost():
			case <-time.After(5 * time.Second):
				t.Fatal("dealer not told the connection is lost")
			}
			if tc.name == "replayed" {
				if b := <-got; len(b) != 120000 {
					t.Fatalf("genuine message: %d bytes", len(b))
				}
			}
			select {
			case b := <-got:
				t.Fatalf("a message of %d bytes (%.10q) was delivered after the tampered frame; stats %+v", len(b), b, r.Stats())
			default:
			}
		})
	}
}

// nonceLog records the short nonces of the CURVE MESSAGEs one direction
// of a connection carries.
type nonceLog struct {
	mu     sync.Mutex
	nonces []uint64
}

func (l *nonceLog) edit(_ int, f []byte) [][]byte {
	if body := f[headerLen(f[0]):]; bytes.HasPrefix(body, msgCommand) && len(body) >= 16 {
		l.mu.Lock()
		l.nonces = append(l.nonces, binary.BigEndian.Uint64(body[8:16]))
		l.mu.Unlock()
	}
	return [][]byte{f}
}

// check: the MESSAGE nonces go up by one from first, never repeat or skip.
func (l *nonceLog) check(t *testing.T, dir string, first uint64, count int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.nonces) < count {
		t.Fatalf("%s: %d MESSAGEs seen, want at least %d", dir, len(l.nonces), count)
	}
	for i, n := range l.nonces {
		if n != first+uint64(i) {
			t.Fatalf("%s: MESSAGE %d has nonce %d, want %d (nonces %v...)", dir, i, n, first+uint64(i), l.nonces[:min(i+3, len(l.nonces))])
		}
	}
}

// Every MESSAGE of a connection has its own nonce, in send order, both
// ways, while several goroutines send at once (the Router's writer boxes
// what they queue) and frames of every size class go by.
func TestCurveNoncesInOrderNeverReused(t *testing.T) {
	srv, cli := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srv}})
	var up, down nonceLog
	upRelay := &zmtpProxy{edit: up.edit}
	downRelay := &zmtpProxy{edit: down.edit}
	ep := testutil.StartProxy(t, r.Endpoint(), upRelay.relay, downRelay.relay).Endpoint
	d := dial(t, ep, Options{CurveClient: &CurveClient{ServerKey: srv.Public, Keys: cli}})
	const senders, each = 4, 30
	sizes := []int{0, 10, 255, 256, 4000, 70000, 1 << 20}
	if err := d.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	peer := recvMsg(t, r.Recv(), 10*time.Second).Peer
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := bytes.Repeat([]byte{byte(s), byte(i)}, sizes[(s+i)%len(sizes)]/2+1)
				if err := r.SendSplit(peer, body[:1], body[1:]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range senders * each {
		m := recvMsg(t, d.Recv(), 20*time.Second)
		if len(m.Body) < 2 || !bytes.Equal(m.Body, bytes.Repeat(m.Body[:2], len(m.Body)/2)) {
			t.Fatalf("message %d: %d bytes, not one of ours", i, len(m.Body))
		}
	}
	wg.Wait()
	for i := range each { // and the other way, sizes mixed too
		if err := d.Send(make([]byte, sizes[i%len(sizes)])); err != nil {
			t.Fatal(err)
		}
		recvMsg(t, r.Recv(), 20*time.Second)
	}
	// The server's READY took nonce 1, the client's HELLO 1 and INITIATE 2.
	down.check(t, "server to client", 2, senders*each)
	up.check(t, "client to server", 3, 1+each)
}
