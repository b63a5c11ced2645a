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
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

const (
	benchMsg      = 1 << 20
	benchInFlight = 8
)

func BenchmarkThroughput(b *testing.B) {
	b.Run("raw-tcp", benchRawTCP)
	b.Run("zmq4", benchZmq4)
	b.Run("guarded", func(b *testing.B) { benchGuarded(b, Options{}) })
	b.Run("guarded-direct", func(b *testing.B) { benchGuarded(b, Options{WriteQueue: -1}) })
}

// windowed runs send(i) for b.N messages, waiting for an ack (recvAck)
// whenever benchInFlight are outstanding.
func windowed(b *testing.B, send func() error, recvAck func() error) {
	b.Helper()
	b.SetBytes(benchMsg)
	b.ReportAllocs()
	b.ResetTimer()
	inflight := 0
	for i := 0; i < b.N; i++ {
		if inflight == benchInFlight {
			if err := recvAck(); err != nil {
				b.Fatal(err)
			}
			inflight--
		}
		if err := send(); err != nil {
			b.Fatal(err)
		}
		inflight++
	}
	for ; inflight > 0; inflight-- {
		if err := recvAck(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

func benchRawTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
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
	windowed(b, func() error { _, err := s.Write(msg); return err },
		func() error { _, err := io.ReadFull(s, ack[:]); return err })
	s.Close()
	<-done
}

func benchZmq4(b *testing.B) {
	ctx := context.Background()
	srv := zmq4.NewRouter(ctx)
	defer srv.Close()
	if err := srv.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	cli := zmq4.NewDealer(ctx, zmq4.WithID(zmq4.SocketIdentity("bench")))
	defer cli.Close()
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
	windowed(b, func() error { return srv.Send(zmq4.NewMsgFrom(id, body)) },
		func() error { _, err := srv.Recv(); return err })
	cli.Send(zmq4.NewMsgString("bye")) // ignored; Close ends the goroutine
}

func benchGuarded(b *testing.B, opt Options) {
	opt.Logger = testLogger()
	srv, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cli, err := Dial(srv.Endpoint(), Options{Identity: "bench", Logger: opt.Logger})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
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
	windowed(b, func() error { return srv.Send(peer, body) },
		func() error { <-srv.Recv(); return nil })
}

// BenchmarkGuardCost alternates rounds of 64 messages through stock zmq4 and
// the guarded transport (same machine load for both) and reports the
// throughput ratio guarded/zmq4 (1.0 = free; the target is >= 0.9).
func BenchmarkGuardCost(b *testing.B) {
	for _, v := range []struct {
		name string
		opt  Options
		fast time.Duration
	}{
		{"queue", Options{}, fastWrite},        // default
		{"queue-no-fastpath", Options{}, 0},    // every byte through the writer goroutine
		{"direct", Options{WriteQueue: -1}, 0}, // blocking writes with deadline
	} {
		b.Run(v.name, func(b *testing.B) {
			saved := fastWrite
			fastWrite = v.fast
			defer func() { fastWrite = saved }()
			z := newZmq4Pair(b)
			defer z.close()
			g := newGuardedPair(b, v.opt)
			defer g.close()
			const round = 64
			var tz, tg time.Duration
			b.SetBytes(benchMsg * round * 2)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					tz += z.run(b, round)
					tg += g.run(b, round)
				} else {
					tg += g.run(b, round)
					tz += z.run(b, round)
				}
			}
			b.ReportMetric(float64(tz)/float64(tg), "guarded/zmq4")
			b.ReportMetric(float64(benchMsg*round*b.N)/tz.Seconds()/1e6, "zmq4-MB/s")
			b.ReportMetric(float64(benchMsg*round*b.N)/tg.Seconds()/1e6, "guarded-MB/s")
		})
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

func newZmq4Pair(b *testing.B) *pair {
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
	cli, err := Dial(srv.Endpoint(), Options{Identity: "bench", Logger: opt.Logger})
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
