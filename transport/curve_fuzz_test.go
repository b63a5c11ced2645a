package transport

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// fixedKeys are deterministic keys, so seeds can hold valid boxes.
func fixedKeys(b byte) CurveKeyPair {
	var s CurveKey
	for i := range s {
		s[i] = b + byte(i)
	}
	return CurveKeyPairFromSecret(s)
}

// validHello is a HELLO body a client with ephemeral key (cPub, cSec) sends.
func validHello(server CurveKey, cPub, cSec *[32]byte, nonce uint64) []byte {
	h := make([]byte, 74, helloBodyLen)
	h[0] = 1
	h = append(h, cPub[:]...)
	h = append(h, shortNonce(nonce)...)
	S := [32]byte(server)
	return box.Seal(h, make([]byte, 64), nonce24(nonceHello, shortNonce(nonce)), &S, cSec)
}

type fuzzOwner struct{ c counters }

func (o *fuzzOwner) messageDone(*gconn) bool                { return true }
func (o *fuzzOwner) connClosed(*gconn, string, bool, error) {}
func (o *fuzzOwner) counters() *counters                    { return &o.c }

// runHandshake runs one side of a CURVE handshake against a peer that
// sends a CURVE greeting then input, and reads whatever comes back. It must
// end (error or not) without a panic and within the handshake deadline.
func runHandshake(t *testing.T, server bool, opt Options, input []byte) error {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	opt = opt.withDefaults()
	opt.HandshakeTimeout = 2 * time.Second
	c := newGconn(a, &opt, &fuzzOwner{}, server)
	go io.Copy(io.Discard, b)
	go func() {
		b.Write(appendGreeting(nil, mechCURVE, !server))
		b.Write(input)
		b.Close()
	}()
	ours := "ROUTER"
	if !server {
		ours = "DEALER"
	}
	return c.handshake(ours, "fz", func() string { return "x" })
}

// FuzzCurveServerHandshake feeds arbitrary client commands (HELLO,
// INITIATE, anything) to the server side of the CURVE handshake.
//
//	go test -run '^$' -fuzz FuzzCurveServerHandshake -fuzztime 60s ./transport
func FuzzCurveServerHandshake(f *testing.F) {
	srv := fixedKeys(1)
	cPub, cSec, _ := box.GenerateKey(rand.Reader)
	hello := appendCommand(nil, "HELLO", validHello(srv.Public, cPub, cSec, 1))
	f.Add(hello)
	f.Add(append(bytes.Clone(hello), appendCommand(nil, "INITIATE", make([]byte, initiateMinBody+20))...))
	f.Add(append(bytes.Clone(hello), appendCommand(nil, "INITIATE", nil)...))
	f.Add(appendCommand(nil, "HELLO", make([]byte, helloBodyLen)))
	f.Add(appendCommand(nil, "HELLO", []byte{1, 0}))
	f.Add(appendCommand(nil, "ERROR", []byte{3, '4', '0', '0'}))
	f.Add(hello[:100])
	opt := Options{Logger: testLogger(), CurveServer: &CurveServer{Keys: srv, Clients: NewCurveKeySet(fixedKeys(2).Public)}}
	f.Fuzz(func(t *testing.T, input []byte) {
		if err := runHandshake(t, true, opt, input); err == nil {
			t.Fatalf("handshake succeeded on %x", input)
		}
	})
}

// FuzzCurveClientHandshake feeds arbitrary server commands (WELCOME, READY,
// ERROR, anything) to the client side.
func FuzzCurveClientHandshake(f *testing.F) {
	srv := fixedKeys(1)
	f.Add(appendCommand(nil, "WELCOME", make([]byte, welcomeBodyLen)))
	f.Add(append(appendCommand(nil, "WELCOME", make([]byte, welcomeBodyLen)), appendCommand(nil, "READY", make([]byte, 40))...))
	f.Add(appendCommand(nil, "ERROR", []byte{3, '4', '0', '0'}))
	f.Add(appendCommand(nil, "WELCOME", nil))
	opt := Options{Logger: testLogger(), CurveClient: &CurveClient{ServerKey: srv.Public, Keys: fixedKeys(2)}}
	f.Fuzz(func(t *testing.T, input []byte) {
		if err := runHandshake(t, false, opt, input); err == nil {
			t.Fatalf("handshake succeeded on %x", input)
		}
	})
}

// FuzzCurveMessage feeds arbitrary bytes to the MESSAGE reader after a
// handshake: it must return frames or an error, never panic, never deliver
// a frame that was not sealed with the session key.
func FuzzCurveMessage(f *testing.F) {
	var shared [32]byte
	copy(shared[:], "0123456789abcdef0123456789abcdef")
	sender := newCurveCodec(&shared, nonceMsgC, nonceMsgS, 2, 0, 1<<16)
	f.Add(sender.sealFrame(0, []byte("hello")))
	f.Add(append(sender.sealFrame(1, []byte("a")), sender.sealFrame(0, make([]byte, 300))...))
	f.Add(sender.sealFrame(2, appendCommand(nil, "PING", []byte{0, 1}))[2:])
	f.Add(append([]byte{0, 20}, msgCommand...))
	f.Fuzz(func(t *testing.T, input []byte) {
		r := newCurveCodec(&shared, nonceMsgS, nonceMsgC, 1, 1, 1<<16)
		r.src = bufio.NewReader(bytes.NewReader(input))
		var got []byte
		buf := make([]byte, 1000)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if len(got) > len(input) {
			t.Fatalf("%d plaintext bytes out of %d input bytes", len(got), len(input))
		}
	})
}

// The fuzz seeds that are genuine round trip.
func TestCurveCodecRoundTrip(t *testing.T) {
	var shared [32]byte
	copy(shared[:], "0123456789abcdef0123456789abcdef")
	w := newCurveCodec(&shared, nonceMsgC, nonceMsgS, 2, 0, 1<<20)
	var wire []byte
	emit := func(m plainMsg) error {
		wire = append(wire, w.seal2(m.plain, m.tail)...)
		if m.release != nil {
			m.release()
		}
		return nil
	}
	never := func([]byte) (func(), bool) { return nil, false }
	plain := append(appendFrameHeader(nil, flagMore, 3), "abc"...)
	plain = append(append(plain, appendFrameHeader(nil, 0, 1000)...), make([]byte, 1000)...)
	plain = appendCommand(plain, "PONG", nil)
	// written a byte at a time, as zmq4 may split its writes
	for i := range plain {
		if err := w.write(plain[i:i+1], never, emit); err != nil {
			t.Fatal(err)
		}
	}
	// A large body written whole may be kept by reference (and released
	// once boxed), or copied: the wire is the same.
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i * 13)
	}
	released := 0
	for _, kept := range []bool{true, false} {
		head := append(appendFrameHeader(nil, 0, len(big)+5), "head:"...)
		keep := func(p []byte) (func(), bool) {
			if !kept || !bytes.Equal(p, big) {
				return nil, false
			}
			return func() { released++ }, true
		}
		for _, part := range [][]byte{head[:3], head[3:], big} {
			if err := w.write(part, keep, emit); err != nil {
				t.Fatal(err)
			}
		}
		plain = append(append(plain, head...), big...)
	}
	if released != 1 {
		t.Fatalf("tail released %d times, want 1", released)
	}
	r := newCurveCodec(&shared, nonceMsgS, nonceMsgC, 1, 1, 1<<20)
	r.src = bufio.NewReader(bytes.NewReader(wire))
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %v\n got %x\nwant %x", err, got[:min(len(got), 64)], plain[:64])
	}
}
