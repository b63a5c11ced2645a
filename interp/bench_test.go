package interp_test

import (
	"math"
	"testing"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

type benchPeer struct{ N, M int64 }

func benchLib(string, string) *interp.Library {
	return &interp.Library{
		PeerType: (*benchPeer)(nil),
		NewPeer:  func(string) any { return &benchPeer{} },
		Actions: interp.Actions{
			"count": {Fn: func(ctx *interp.Ctx) error { ctx.Peer().(*benchPeer).N++; return nil }},
			"bump":  {Fn: func(ctx *interp.Ctx) error { ctx.Peer().(*benchPeer).M += 2; return nil }},
		},
	}
}

func frame(b testing.TB, m codec.Message) []byte {
	f, err := m.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkDispatch compares one event through the interpreter (decode,
// instance lookup, guard, three actions including an encode and send,
// timer reset) with the same machine written as a Go switch.
func BenchmarkDispatch(b *testing.B) {
	hugz := frame(b, &nom.Hugz{})
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	var sent int

	b.Run("interp", func(b *testing.B) {
		m, err := interp.Load("testdata/bench_server.toml", interp.LoadOptions{Library: benchLib})
		if err != nil {
			b.Fatal(err)
		}
		e, err := interp.NewServer(m, interp.Options{Now: clock,
			Sender: interp.SenderFunc(func(_ string, body []byte) error { sent += len(body); return nil })})
		if err != nil {
			b.Fatal(err)
		}
		e.Input("peer", frame(b, nom.NewOhai()))
		if s, _ := e.PeerState("peer"); s != "open" {
			b.Fatalf("state %q", s)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e.Input("peer", hugz)
		}
		b.StopTimer()
		if st := e.Stats(); st.Sent != uint64(b.N)+1 {
			b.Fatalf("sent %d frames for %d events", st.Sent, b.N)
		}
	})

	b.Run("handcoded", func(b *testing.B) {
		h := newHandServer(clock, func(_ string, body []byte) error { sent += len(body); return nil })
		h.input("peer", frame(b, nom.NewOhai()))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h.input("peer", hugz)
		}
		b.StopTimer()
		if h.sent != b.N+1 {
			b.Fatalf("sent %d frames for %d events", h.sent, b.N)
		}
	})
}

// BenchmarkDispatchRatio interleaves the interpreter and the hand-coded
// switch in blocks of 256 events, so that both see the same machine load,
// and reports ns/event of each and their ratio. 0 allocs/op is the target.
//
// Measured (2-core machine shared with other builds, best-ratio, median of
// 5 interleaved runs): 2.78x with guards reading fields through unsafe
// offsets, 3.26x reading them through reflect (cached per instance) with no
// unsafe: 73 -> 86 ns/event, the hand-written switch 26 ns/event.
func BenchmarkDispatchRatio(b *testing.B) {
	hugz := frame(b, &nom.Hugz{})
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	m, err := interp.Load("testdata/bench_server.toml", interp.LoadOptions{Library: benchLib})
	if err != nil {
		b.Fatal(err)
	}
	e, err := interp.NewServer(m, interp.Options{Now: clock, Sender: interp.SenderFunc(func(string, []byte) error { return nil })})
	if err != nil {
		b.Fatal(err)
	}
	h := newHandServer(clock, func(string, []byte) error { return nil })
	e.Input("peer", frame(b, nom.NewOhai()))
	h.input("peer", frame(b, nom.NewOhai()))
	const block = 256
	var ti, th time.Duration
	bi, bh := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += block {
		t0 := time.Now()
		for i := 0; i < block; i++ {
			e.Input("peer", hugz)
		}
		t1 := time.Now()
		for i := 0; i < block; i++ {
			h.input("peer", hugz)
		}
		t2 := time.Now()
		ti += t1.Sub(t0)
		th += t2.Sub(t1)
		bi = min(bi, t1.Sub(t0))
		bh = min(bh, t2.Sub(t1))
	}
	events := float64((b.N + block - 1) / block * block)
	b.ReportMetric(float64(ti.Nanoseconds())/events, "interp-ns/event")
	b.ReportMetric(float64(th.Nanoseconds())/events, "hand-ns/event")
	b.ReportMetric(float64(ti)/float64(th), "ratio")
	// The fastest block of each side: what a quiet machine would show, and
	// much less noisy than the totals when other processes share the CPUs.
	b.ReportMetric(float64(bi.Nanoseconds())/block, "interp-best-ns/event")
	b.ReportMetric(float64(bh.Nanoseconds())/block, "hand-best-ns/event")
	b.ReportMetric(float64(bi)/float64(bh), "best-ratio")
}

// handServer is bench_server.toml written by hand: the baseline.
type handServer struct {
	peers  map[string]*handPeer
	rx     []codec.Message
	out    []codec.Message
	buf    []byte
	now    func() time.Time
	send   func(string, []byte) error
	limit  int64
	expiry time.Duration
	sent   int
}

type handPeer struct {
	state    int
	n, m     int64
	expireAt time.Time
}

const (
	handStart = iota
	handOpen
)

func newHandServer(now func() time.Time, send func(string, []byte) error) *handServer {
	h := &handServer{peers: map[string]*handPeer{}, now: now, send: send, limit: 1000000000, expiry: 30 * time.Second}
	for _, mi := range nom.Protocol.Messages() {
		for len(h.rx) <= int(mi.ID) {
			h.rx = append(h.rx, nil)
			h.out = append(h.out, nil)
		}
		h.rx[mi.ID] = mi.New()
		h.out[mi.ID] = mi.New()
	}
	return h
}

func (h *handServer) emit(peer string, id uint8) error {
	m := h.out[id]
	buf, err := m.Append(h.buf[:0])
	if err != nil {
		return err
	}
	h.buf = buf
	m.Reset()
	h.sent++
	return h.send(peer, buf)
}

func (h *handServer) input(peer string, body []byte) {
	if len(body) < 3 || body[0] != 0xAA || body[1] != 0xA0 || int(body[2]) >= len(h.rx) || h.rx[body[2]] == nil {
		return
	}
	p := h.peers[peer]
	if p == nil {
		p = &handPeer{}
		h.peers[peer] = p
	}
	msg := h.rx[body[2]]
	if msg.Decode(body, nil) != nil {
		delete(h.peers, peer)
		return
	}
	p.expireAt = h.now().Add(h.expiry)
	switch p.state {
	case handStart:
		switch body[2] {
		case nom.IDOhai:
			p.n++
			p.n++
			if h.emit(peer, nom.IDOhaiOk) == nil {
				p.state = handOpen
			}
		default:
			delete(h.peers, peer)
		}
	case handOpen:
		switch body[2] {
		case nom.IDHugz:
			if p.n > h.limit {
				p.n += 2
				delete(h.peers, peer)
				return
			}
			if p.n >= 0 {
				p.n++
				p.m += 2
				_ = h.emit(peer, nom.IDHugzOk)
			}
		default:
			delete(h.peers, peer)
		}
	}
}
