package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
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
