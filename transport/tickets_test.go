package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// rawRouter is a hand-written ROUTER a Dealer dials: NULL handshake, then
// whatever frames the test writes; what the Dealer sends is discarded.
func rawRouter(t testing.TB, opt Options) (*Dealer, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return rawRouterOn(t, ln, opt)
}

// rawRouterOn is rawRouter on a listener of the caller's (a fuzz target
// keeps one: a listener per input would exhaust the ephemeral ports).
func rawRouterOn(t testing.TB, ln net.Listener, opt Options) (*Dealer, net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		c.Write(appendGreeting(nil, mechNULL, false))
		c.Write(appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "ROUTER"})))
		go io.Copy(io.Discard, c) // ends when the test closes c
		accepted <- c
	}()
	d := dial(t, "tcp://"+ln.Addr().String(), opt)
	c, ok := <-accepted
	if !ok {
		t.Fatal("no connection")
	}
	t.Cleanup(func() { c.Close() })
	return d, c
}

func frameBytes(body []byte, more bool) []byte {
	var fl byte
	if more {
		fl = flagMore
	}
	return append(appendFrameHeader(nil, fl, len(body)), body...)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// The bodies a Dealer delivers are the frames its peer sent, byte for byte
// and in order, whether pooled (ticket) or inline; pooled ones come with a
// Release, which gives the buffer back once (counted in Stats).
func TestDealerTicketsInOrder(t *testing.T) {
	sizes := []int{0, 1, 254, 255, 256, ticketMin - 1, ticketMin, 3, 1 << 20, 300 << 10, 17, ticketMin + 1, 1<<20 + 300, 0}
	r, err := Listen("tcp://127.0.0.1:0", Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := dial(t, r.Endpoint(), Options{})
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	peer := recvMsg(t, r.Recv(), 5*time.Second).Peer
	var want [][]byte
	for i, n := range sizes {
		b := pattern(n, byte(i))
		want = append(want, b)
		if err := r.Send(peer, b); err != nil {
			t.Fatal(err)
		}
	}
	// A body shaped like a ticket is the peer's bytes, not a ticket.
	forged := binary.BigEndian.AppendUint64([]byte{tagTicket}, 0)
	want = append(want, forged)
	if err := r.Send(peer, forged); err != nil {
		t.Fatal(err)
	}
	pooled := 0
	for i, w := range want {
		m := recvMsg(t, d.Recv(), 10*time.Second)
		if !bytes.Equal(m.Body, w) {
			t.Fatalf("message %d: got %d bytes, want %d (%d bytes)", i, len(m.Body), i, len(w))
		}
		if big := len(w) >= ticketMin; big != (m.Release != nil) {
			t.Fatalf("message %d (%d bytes): Release set %v", i, len(w), m.Release != nil)
		}
		if m.Release != nil {
			pooled++
			m.Release()
			m.Release() // a second call is ignored
		}
	}
	st := d.Stats()
	if st.Pooled != uint64(pooled) || st.Recycled != uint64(pooled) {
		t.Fatalf("pooled %d recycled %d, want %d both", st.Pooled, st.Recycled, pooled)
	}
	if pooled != 5 {
		t.Fatalf("%d pooled messages, want 5", pooled)
	}
}

// Multipart messages (dropped by a Dealer) give their pooled frames back
// and keep the ticket sequence: the messages after them still arrive.
func TestDealerTicketsMultipart(t *testing.T) {
	d, c := rawRouter(t, Options{ticketMin: 16})
	var w []byte
	w = append(w, frameBytes(pattern(40, 1), true)...)
	w = append(w, frameBytes(pattern(5, 2), true)...)
	w = append(w, frameBytes(pattern(100, 3), false)...)
	w = append(w, frameBytes(pattern(64, 4), false)...)
	w = append(w, frameBytes(pattern(15, 5), false)...)
	w = append(w, frameBytes(pattern(16, 6), false)...)
	c.Write(w)
	for i, want := range [][]byte{pattern(64, 4), pattern(15, 5), pattern(16, 6)} {
		m := recvMsg(t, d.Recv(), 5*time.Second)
		if !bytes.Equal(m.Body, want) {
			t.Fatalf("message %d: %x, want %x", i, m.Body, want)
		}
		if m.Release != nil {
			m.Release()
		}
	}
	waitStats(t, d.Stats, "multipart dropped, every pooled frame back", func(s Stats) bool {
		return s.MsgsDropped == 1 && s.Pooled == 4 && s.Recycled == 4
	})
}

// A ticket that does not match the head of the queue (which no peer can
// cause: it is our own bookkeeping) cuts the connection rather than hand
// over a wrong body.
func TestDealerTicketMismatchCuts(t *testing.T) {
	d, c := rawRouter(t, Options{ticketMin: 16})
	c.Write(frameBytes(pattern(20, 1), false))
	m := recvMsg(t, d.Recv(), 5*time.Second)
	if !bytes.Equal(m.Body, pattern(20, 1)) || m.Release == nil {
		t.Fatalf("first message: %x (release %v)", m.Body, m.Release != nil)
	}
	m.Release()
	d.st.conn.tk.push(make([]byte, 20)) // a body the stream never had
	c.Write(frameBytes(pattern(20, 2), false))
	select {
	case <-d.Lost():
	case m, ok := <-d.Recv():
		if ok { // closed (!ok): the reader ended with the connection
			t.Fatalf("delivered %x after a broken ticket sequence", m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not cut")
	}
	waitDrop(t, d.Stats, ReasonBadFrame, 1, statsWait)
}

func TestTicketsUntag(t *testing.T) {
	tk := &tickets{st: &counters{}, min: 16}
	if _, _, err := tk.untag(nil); err == nil {
		t.Error("empty frame accepted")
	}
	if _, _, err := tk.untag([]byte{'x', 1}); err == nil {
		t.Error("unknown tag accepted")
	}
	if b, l, err := tk.untag([]byte{tagInline, 'a'}); err != nil || l != nil || string(b) != "a" {
		t.Errorf("inline: %q %v %v", b, l, err)
	}
	ticket := func(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{tagTicket}, seq) }
	if _, _, err := tk.untag(ticket(0)); err == nil {
		t.Error("ticket with nothing queued accepted")
	}
	tk.push([]byte("zero"))
	tk.push([]byte("one"))
	if _, _, err := tk.untag(ticket(1)); err == nil {
		t.Error("ticket out of order accepted")
	}
	if _, _, err := tk.untag(ticket(0)[:5]); err == nil {
		t.Error("short ticket accepted")
	}
	for i, want := range []string{"zero", "one"} {
		b, l, err := tk.untag(ticket(uint64(i)))
		if err != nil || string(b) != want || l == nil {
			t.Fatalf("ticket %d: %q %v", i, b, err)
		}
	}
	var pe *ProtocolError
	if _, _, err := tk.untag(ticket(2)); !errors.As(err, &pe) || pe.Reason != ReasonBadFrame {
		t.Errorf("ticket past the queue: %v", err)
	}
}

// Hostile sizes: a frame over MaxFrame is refused before any allocation;
// a pooled frame cut short by the peer ends the connection without a
// delivery (nothing is left queued).
func TestDealerTicketsHostileSizes(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		d, c := rawRouter(t, Options{ticketMin: 16, MaxFrame: 1 << 16})
		c.Write(binary.BigEndian.AppendUint64([]byte{flagLong}, 1<<16+1))
		select {
		case <-d.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("not cut")
		}
		waitDrop(t, d.Stats, ReasonFrameTooLarge, 1, statsWait)
		if s := d.Stats(); s.Pooled != 0 {
			t.Fatalf("pooled %d", s.Pooled)
		}
	})
	t.Run("largest", func(t *testing.T) {
		d, c := rawRouter(t, Options{ticketMin: 16, MaxFrame: 1 << 16})
		c.Write(frameBytes(pattern(1<<16, 9), false))
		m := recvMsg(t, d.Recv(), 5*time.Second)
		if !bytes.Equal(m.Body, pattern(1<<16, 9)) || m.Release == nil {
			t.Fatalf("got %d bytes", len(m.Body))
		}
		m.Release()
	})
	t.Run("cut short", func(t *testing.T) {
		d, c := rawRouter(t, Options{ticketMin: 16})
		c.Write(append(binary.BigEndian.AppendUint64([]byte{flagLong}, 1<<20), pattern(1000, 1)...))
		c.Close()
		select {
		case <-d.Lost():
		case m, ok := <-d.Recv():
			if ok { // closed (!ok): the reader ended with the connection
				t.Fatalf("delivered %d bytes of a truncated frame", len(m.Body))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not lost")
		}
		if s := d.Stats(); s.Pooled != 0 {
			t.Fatalf("pooled %d", s.Pooled)
		}
	})
}

// FuzzDealerRead feeds arbitrary frames, as a server, to a Dealer whose
// pooled-frame threshold is tiny: every single-frame message must arrive
// whole and in order, pooled or not, until the stream's first invalid
// frame (which cuts it); nothing may panic.
//
//	go test -run '^$' -fuzz FuzzDealerRead -fuzztime 60s ./transport
func FuzzDealerRead(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0}, uint8(2))
	f.Add([]byte{1, 2, 'x', 'y', 0, 20}, uint8(8))
	f.Add(append([]byte{0, 200}, pattern(200, 1)...), uint8(100))
	f.Add(append(binary.BigEndian.AppendUint64([]byte{flagLong}, 300), pattern(300, 2)...), uint8(1))
	f.Add([]byte{flagCommand, 5, 4, 'P', 'I', 'N', 'G'}, uint8(3))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	f.Fuzz(func(t *testing.T, stream []byte, min uint8) {
		d, c := rawRouterOn(t, ln, Options{ticketMin: int(min) + 1, MaxFrame: 1 << 12})
		// The messages a correct reader delivers: whole single-frame
		// messages before the first frame it must refuse.
		var want [][]byte
		rest, inMsg, parts, size := stream, false, 0, uint64(0)
		for len(rest) > 0 {
			hl := headerLen(rest[0])
			if len(rest) < hl {
				break
			}
			h, err := parseFrameHeader(rest[:hl], 1<<12, maxTrafficCmd)
			if err != nil || uint64(len(rest)-hl) < h.Size {
				break
			}
			body := rest[hl : hl+int(h.Size)]
			rest = rest[hl+int(h.Size):]
			if h.command() {
				if inMsg || checkTrafficCommand(body) != nil {
					break
				}
				continue // PING, PONG: consumed by the guard
			}
			if parts, size = parts+1, size+h.Size; parts > maxParts || size > 1<<12 {
				break
			}
			if !h.more() {
				if !inMsg {
					want = append(want, body)
				}
				parts, size = 0, 0
			}
			inMsg = h.more()
		}
		c.Write(stream)
		c.(*net.TCPConn).CloseWrite() // PONGs may still go out
		for i := 0; ; i++ {
			select {
			case m, ok := <-d.Recv():
				if !ok {
					if i != len(want) {
						t.Fatalf("%d messages delivered, want %d", i, len(want))
					}
					return
				}
				if i >= len(want) || !bytes.Equal(m.Body, want[i]) {
					t.Fatalf("message %d: %x", i, m.Body)
				}
				if m.Release != nil {
					m.Release()
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("stuck after %d messages", i)
			}
		}
	})
}

// The pool hands out buffers of the asked length, reuses those given back
// (never one more than twice too large), and stays bounded.
func TestBufPool(t *testing.T) {
	var p bufPool
	a := p.get(100 << 10)
	if len(a) != 100<<10 || cap(a)%poolRound != 0 {
		t.Fatalf("len %d cap %d", len(a), cap(a))
	}
	p.put(a)
	if b := p.get(90 << 10); &b[0] != &a[0] {
		t.Error("a fitting buffer was not reused")
	} else {
		p.put(b)
	}
	if b := p.get(40 << 10); &b[0] == &a[0] {
		t.Error("a buffer more than twice too large was reused")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		p.put(make([]byte, 0, (1+rng.IntN(4<<10))<<10))
		if len(p.free) > poolMaxBufs || p.bytes > poolMaxBytes {
			t.Fatalf("%d buffers, %d bytes", len(p.free), p.bytes)
		}
	}
}
