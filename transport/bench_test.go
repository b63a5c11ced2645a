package transport

// Throughput of 1 MiB messages, server to client, at most 8 unacknowledged,
// through raw TCP, stock zmq4 and the guarded transport, in one run:
//
//	go test -run '^$' -bench Throughput -benchtime 2000x ./transport
//
// The guard's cost is the ratio guarded/zmq4 of the MB/s figures.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

const (
	benchMsg      = 1 << 20
	benchInFlight = 8
)

func BenchmarkThroughput(b *testing.B) {
	b.Run("raw-tcp", func(b *testing.B) { benchPair(b, newRawPair(b)) })
	b.Run("zmq4", func(b *testing.B) { benchPair(b, newZMQ4Pair(b)) })
	b.Run("guarded", func(b *testing.B) { benchPair(b, newGuardedPair(b, Options{})) })
	b.Run("guarded-keep", func(b *testing.B) { benchPair(b, newGuardedPair(b, Options{KeepBodies: true})) })
	b.Run("guarded-direct", func(b *testing.B) { benchPair(b, newGuardedPair(b, Options{WriteQueue: -1})) })
	b.Run("curve", func(b *testing.B) {
		kp, _ := NewCurveKeyPair()
		benchPair(b, newGuardedPair(b, Options{CurveServer: &CurveServer{Keys: kp}}))
	})
}

// benchPair streams b.N messages through p, benchInFlight outstanding.
func benchPair(b *testing.B, p *pair) {
	defer p.close()
	b.SetBytes(benchMsg)
	b.ReportAllocs()
	b.ResetTimer()
	p.run(b, b.N)
	b.StopTimer()
}

// BenchmarkGuardCost measures the guard's cost robustly on a busy machine:
// each iteration streams one round of 16 messages through raw TCP, stock
// zmq4 and the guarded transport, in rotating order, and the reported
// figures are medians over the rounds of the per-round throughput ratios
// (guarded/zmq4 = 1.0 means free; the target is >= 0.9).
//
//	go test -run '^$' -bench GuardCost -benchtime 300x ./transport
func BenchmarkGuardCost(b *testing.B) {
	for _, v := range []struct {
		name string
		opt  Options
		fast time.Duration
	}{
		{"queue", Options{}, fastWrite},                      // default: queued bodies copied
		{"queue-keep", Options{KeepBodies: true}, fastWrite}, // queued bodies kept by reference
		{"queue-no-fastpath", Options{}, 0},                  // every byte through the writer goroutine
		{"direct", Options{WriteQueue: -1}, fastWrite},       // blocking writes with deadline
	} {
		b.Run(v.name, func(b *testing.B) {
			saved := fastWrite
			fastWrite = v.fast
			defer func() { fastWrite = saved }()
			pairs := []*pair{newRawPair(b), newZMQ4Pair(b), newGuardedPair(b, v.opt)}
			defer func() {
				for _, p := range pairs {
					p.close()
				}
			}()
			const round = 16
			var gz, gr, zr []float64
			var tot [3]time.Duration
			b.SetBytes(benchMsg * round * 3)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var d [3]time.Duration
				for k := 0; k < 3; k++ {
					j := (i + k) % 3
					d[j] = pairs[j].run(b, round)
					tot[j] += d[j]
				}
				gz = append(gz, float64(d[1])/float64(d[2]))
				gr = append(gr, float64(d[0])/float64(d[2]))
				zr = append(zr, float64(d[0])/float64(d[1]))
			}
			b.StopTimer()
			b.ReportMetric(median(gz), "guarded/zmq4")
			b.ReportMetric(median(gr), "guarded/raw")
			b.ReportMetric(median(zr), "zmq4/raw")
			mb := func(d time.Duration) float64 { return float64(benchMsg*round*b.N) / d.Seconds() / 1e6 }
			b.ReportMetric(mb(tot[0]), "raw-MB/s")
			b.ReportMetric(mb(tot[1]), "zmq4-MB/s")
			b.ReportMetric(mb(tot[2]), "guarded-MB/s")
		})
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func newRawPair(b *testing.B) *pair {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // client: read each message into a fresh buffer, ack it
		defer close(done)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		var hdr [8]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			buf := make([]byte, binary.BigEndian.Uint64(hdr[:]))
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	msg := binary.BigEndian.AppendUint64(nil, benchMsg)
	msg = append(msg, make([]byte, benchMsg)...)
	var ack [1]byte
	return &pair{
		send:  func() error { _, err := s.Write(msg); return err },
		ack:   func() error { _, err := io.ReadFull(s, ack[:]); return err },
		close: func() { s.Close(); ln.Close(); <-done },
	}
}

// pair is a server->client stream with acks, reusable across rounds.
type pair struct {
	send  func() error
	ack   func() error
	close func()
}

func (p *pair) run(b *testing.B, n int) time.Duration {
	t0 := time.Now()
	inflight := 0
	for i := 0; i < n; i++ {
		if inflight == benchInFlight {
			if err := p.ack(); err != nil {
				b.Fatal(err)
			}
			inflight--
		}
		if err := p.send(); err != nil {
			b.Fatal(err)
		}
		inflight++
	}
	for ; inflight > 0; inflight-- {
		if err := p.ack(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0)
}

func newZMQ4Pair(b *testing.B) *pair {
	ctx := context.Background()
	srv := zmq4.NewRouter(ctx)
	if err := srv.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	cli := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("bench")))
	if err := cli.Dial("tcp://" + srv.Addr().String()); err != nil {
		b.Fatal(err)
	}
	cli.Send(zmq4.NewMsgString("hello"))
	hello, err := srv.Recv()
	if err != nil {
		b.Fatal(err)
	}
	id := hello.Frames[0]
	go func() {
		for {
			m, err := cli.Recv()
			if err != nil || len(m.Frames[0]) != benchMsg {
				return
			}
			if cli.Send(zmq4.NewMsgString("k")) != nil {
				return
			}
		}
	}()
	body := make([]byte, benchMsg)
	return &pair{
		send:  func() error { return srv.Send(zmq4.NewMsgFrom(id, body)) },
		ack:   func() error { _, err := srv.Recv(); return err },
		close: func() { cli.Close(); srv.Close() },
	}
}

func newGuardedPair(b *testing.B, opt Options) *pair {
	opt.Logger = testLogger()
	srv, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		b.Fatal(err)
	}
	copt := Options{Identity: "bench", Logger: opt.Logger}
	if opt.CurveServer != nil {
		copt.CurveClient = &CurveClient{ServerKey: opt.CurveServer.Keys.Public}
	}
	cli, err := Dial(srv.Endpoint(), copt)
	if err != nil {
		b.Fatal(err)
	}
	cli.Send([]byte("hello"))
	peer := (<-srv.Recv()).Peer
	go func() {
		for m := range cli.Recv() {
			if len(m.Body) != benchMsg || cli.Send([]byte("k")) != nil {
				return
			}
		}
	}()
	body := make([]byte, benchMsg)
	return &pair{
		send:  func() error { return srv.Send(peer, body) },
		ack:   func() error { <-srv.Recv(); return nil },
		close: func() { cli.Close(); srv.Close() },
	}
}

// BenchmarkFanOutSend streams messages from one Router to several Dealers
// at once, one sending goroutine per peer (as per-peer senders do), at most
// benchInFlight unacknowledged per peer. Sends to different peers overlap
// only if the send path has no socket-wide lock.
//
//	go test -run '^$' -bench FanOutSend -benchtime 2s ./transport
func BenchmarkFanOutSend(b *testing.B) {
	for _, peers := range []int{1, 4} {
		for _, size := range []int{200, 64 << 10} {
			b.Run(fmt.Sprintf("peers=%d/size=%d", peers, size), func(b *testing.B) {
				benchFanOut(b, peers, size)
			})
		}
	}
}

func benchFanOut(b *testing.B, peers, size int) {
	opt := Options{Logger: testLogger()}
	srv, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	acks := map[string]chan struct{}{}
	var ids []string
	for i := 0; i < peers; i++ {
		id := fmt.Sprintf("peer-%d", i)
		cli, err := Dial(srv.Endpoint(), Options{Identity: id, Logger: opt.Logger})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		cli.Send([]byte("hello"))
		if m := <-srv.Recv(); m.Peer != id {
			b.Fatalf("hello from %q, want %q", m.Peer, id)
		}
		go func() {
			for m := range cli.Recv() {
				if len(m.Body) != size || cli.Send([]byte("k")) != nil {
					return
				}
			}
		}()
		acks[id] = make(chan struct{}, benchInFlight)
		ids = append(ids, id)
	}
	go func() {
		for m := range srv.Recv() {
			acks[m.Peer] <- struct{}{}
		}
	}()
	per := b.N/peers + 1
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, peers)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, size)
			inflight := 0
			for i := 0; i < per; i++ {
				if inflight == benchInFlight {
					<-acks[id]
					inflight--
				}
				if err := srv.Send(id, body); err != nil {
					errs <- err
					return
				}
				inflight++
			}
			for ; inflight > 0; inflight-- {
				<-acks[id]
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
