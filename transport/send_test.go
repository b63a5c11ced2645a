package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sendSizes cross the short/long frame header (255/256 bytes) and the
// joined-write limit (smallWrite, header included).
var sendSizes = []int{0, 1, 255, 256, smallWrite - 9, smallWrite - 2, smallWrite, smallWrite + 1, 200 << 10}

// stamped makes a message of n bytes (at least 8) carrying sender and
// sequence number, the rest a pattern derived from both.
func stamped(sender, seq, n int) []byte {
	b := make([]byte, max(n, 8))
	binary.BigEndian.PutUint32(b[0:], uint32(sender))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	for i := 8; i < len(b); i++ {
		b[i] = byte(sender*31 + seq*7 + i)
	}
	return b
}

func checkStamped(b []byte) (sender, seq int, err error) {
	if len(b) < 8 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(b))
	}
	sender, seq = int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
	for i := 8; i < len(b); i++ {
		if b[i] != byte(sender*31+seq*7+i) {
			return 0, 0, fmt.Errorf("sender %d seq %d: byte %d corrupt", sender, seq, i)
		}
	}
	return sender, seq, nil
}

// TestConcurrentSendsKeepFrames: several goroutines send (Send, or
// SendSplit with the head and tail split anywhere) to the same peer and to
// other peers at once, with sizes around every header and write-path
// boundary; each message arrives whole (no interleaved frames), with its
// content even though the sender reuses its buffer once Send returns, and
// each sender's messages arrive in order.
func TestConcurrentSendsKeepFrames(t *testing.T) {
	srvKeys, cliKeys := curvePair(t)
	for _, v := range []struct {
		name     string
		srv, cli Options
	}{
		{"null", Options{}, Options{}},
		{"null-keep", Options{KeepBodies: true}, Options{}},
		{"curve", Options{CurveServer: &CurveServer{Keys: srvKeys}},
			Options{CurveClient: &CurveClient{ServerKey: srvKeys.Public, Keys: cliKeys}}},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := listen(t, v.srv)
			const peers, senders, perSender = 3, 4, 60
			var ds []*Dealer
			for i := 0; i < peers; i++ {
				opt := v.cli
				opt.Identity = fmt.Sprintf("p%d", i)
				d := dial(t, r.Endpoint(), opt)
				if err := d.Send([]byte("hi")); err != nil {
					t.Fatal(err)
				}
				recvMsg(t, r.Recv(), 5*time.Second)
				ds = append(ds, d)
			}
			var wg sync.WaitGroup
			errs := make(chan error, peers*senders)
			for p := 0; p < peers; p++ {
				for s := 0; s < senders; s++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for q := 0; q < perSender; q++ {
							b := stamped(s, q, sendSizes[(s+q)%len(sendSizes)])
							var err error
							if s%2 == 0 {
								err = r.Send(fmt.Sprintf("p%d", p), b)
							} else {
								// head and tail, split anywhere in the first 300 bytes
								k := min(len(b), 8+q*5%300)
								err = r.SendSplit(fmt.Sprintf("p%d", p), b[:k], b[k:])
							}
							if err != nil {
								errs <- err
								return
							}
							if !v.srv.KeepBodies {
								clear(b) // ours again once sent: what waits was copied
							}
						}
					}()
				}
			}
			for p, d := range ds {
				next := make([]int, senders)
				for n := 0; n < senders*perSender; n++ {
					m := recvMsg(t, d.Recv(), 10*time.Second)
					s, q, err := checkStamped(m.Body)
					if err != nil {
						t.Fatalf("peer %d: %v", p, err)
					}
					if s >= senders || q != next[s] {
						t.Fatalf("peer %d: sender %d seq %d, want seq %d", p, s, q, next[s])
					}
					if want := max(sendSizes[(s+q)%len(sendSizes)], 8); len(m.Body) != want {
						t.Fatalf("peer %d: sender %d seq %d: %d bytes, want %d", p, s, q, len(m.Body), want)
					}
					next[s]++
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// The Dealer's direct path in the other direction.
			for i, size := range sendSizes {
				if err := ds[0].Send(stamped(0, i, size)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range sendSizes {
				m := recvMsg(t, r.Recv(), 5*time.Second)
				if _, q, err := checkStamped(m.Body); err != nil || q != i || m.Peer != "p0" {
					t.Fatalf("dealer message %d from %q: seq %d, %v", i, m.Peer, q, err)
				}
			}
		})
	}
}

// TestSendAfterCut: a send to a peer whose connection was cut fails (or
// the peer is already unknown) and never reaches another peer.
func TestSendAfterCut(t *testing.T) {
	r := listen(t, Options{})
	d := dial(t, r.Endpoint(), Options{Identity: "gone"})
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, r.Recv(), 5*time.Second)
	if !r.Disconnect("gone") {
		t.Fatal("peer not connected")
	}
	select {
	case <-d.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("dealer did not see the cut")
	}
	if err := r.Send("gone", []byte("late")); err == nil {
		t.Error("send to a cut peer succeeded")
	}
	if err := d.Send([]byte("late")); err == nil {
		t.Error("send on a lost dealer succeeded")
	}
}

// knownPeer dials r as a raw NULL DEALER presenting id, which says hello so
// that r knows it, and reads nothing until told to.
func knownPeer(t *testing.T, r *Router, id string) *rawPeer {
	t.Helper()
	p := rawDial(t, r.Endpoint())
	p.handshakeNULL(id)
	p.sendMsg([]byte("hi"))
	recvMsg(t, r.Recv(), 5*time.Second)
	return p
}

// WaitQueued blocks while a peer's write queue is over the mark and
// returns as the writer drains it below, without polling; it returns at
// once below the mark, and with an error when the peer is cut.
func TestWaitQueued(t *testing.T) {
	r := listen(t, Options{WriteQueue: 64 << 20})
	slow := knownPeer(t, r, "slow")
	if err := r.WaitQueued(context.Background(), "slow", 1); err != nil {
		t.Fatalf("empty queue: %v", err)
	}
	if err := r.WaitQueued(context.Background(), "nobody", 1); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
	const mark = 1 << 20
	fill := func(peer string) {
		chunk := make([]byte, 256<<10)
		for i := 0; r.Queued(peer) < 2*mark; i++ { // the peer reads nothing: the queue grows
			if i == 200 {
				t.Fatalf("queue at %d bytes after %d sends", r.Queued(peer), i)
			}
			if err := r.Send(peer, chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("slow")
	done := make(chan error, 1)
	go func() { done <- r.WaitQueued(context.Background(), "slow", mark) }()
	select {
	case err := <-done:
		t.Fatalf("WaitQueued returned (%v) with %d bytes queued and nothing read", err, r.Queued("slow"))
	default:
	}
	// A waiter that gives up is forgotten.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitQueued(ctx, "slow", mark); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	go io.Copy(io.Discard, slow.br) // the peer reads: the queue drains
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("WaitQueued still blocked with %d bytes queued", r.Queued("slow"))
	}
	if q := r.Queued("slow"); q >= mark {
		t.Fatalf("WaitQueued returned with %d bytes queued, mark %d", q, mark)
	}

	// A peer that is cut ends the wait with an error.
	knownPeer(t, r, "stuck")
	fill("stuck")
	cut := make(chan error, 1)
	go func() { cut <- r.WaitQueued(context.Background(), "stuck", mark) }()
	r.Disconnect("stuck")
	select {
	case err := <-cut:
		if err == nil {
			t.Fatal("WaitQueued on a cut peer returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitQueued on a cut peer still blocked")
	}
}

// SendSplitOwned hands the tail over: one that must wait is queued as is
// and released once written (never before: the test poisons each tail on
// release, and the peer must still receive every byte intact), exactly
// once, whether it was written in place, queued or copied.
func TestSendSplitOwned(t *testing.T) {
	r := listen(t, Options{WriteQueue: 64 << 20})
	p := knownPeer(t, r, "p")
	const n = 64
	sizes := []int{0, 100, smallWrite, smallWrite + 1, 300 << 10, 1 << 20}
	var mu sync.Mutex
	released := make([]int, n)
	var want [][]byte
	for i := 0; i < n; i++ {
		head := []byte(fmt.Sprintf("head %d:", i))
		tail := stamped(i, i, max(8, sizes[i%len(sizes)]))
		want = append(want, append(append([]byte(nil), head...), tail...))
		err := r.SendSplitOwned("p", head, tail, func() {
			mu.Lock()
			released[i]++
			mu.Unlock()
			for k := range tail {
				tail[k] = 0xEE // ours again: reused at once
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The peer has read nothing so far: large tails are queued.
	if q := r.Queued("p"); q == 0 {
		t.Log("nothing queued: every tail went out in place")
	}
	p.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < n; i++ {
		if body := p.readFrame(t); !bytes.Equal(body, want[i]) {
			t.Fatalf("message %d (%d bytes) differs from what was sent: the tail was released before it was written", i, len(want[i]))
		}
	}
	// Every byte arrived, so every tail was written; the writer releases
	// right after its write returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		missing := -1
		for i, k := range released {
			if k > 1 {
				mu.Unlock()
				t.Fatalf("tail %d released %d times", i, k)
			}
			if k == 0 && missing < 0 {
				missing = i
			}
		}
		mu.Unlock()
		if missing < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail %d never released", missing)
		}
		runtime.Gosched()
	}

	// Tails still queued when the connection is cut are released too (the
	// server's pool gets its buffers back), each once.
	knownPeer(t, r, "cut")
	var releasedCut atomic.Int64
	sent := 0
	for ; r.Queued("cut") < 4<<20; sent++ {
		if sent == 200 {
			t.Fatalf("queue at %d bytes after %d sends", r.Queued("cut"), sent)
		}
		once := new(atomic.Int32)
		if err := r.SendSplitOwned("cut", []byte("h"), make([]byte, 256<<10), func() {
			if once.Add(1) > 1 {
				t.Error("a tail released twice")
			}
			releasedCut.Add(1)
		}); err != nil {
			t.Fatal(err)
		}
	}
	r.Disconnect("cut")
	for deadline := time.Now().Add(10 * time.Second); releasedCut.Load() < int64(sent); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tails released after the cut", releasedCut.Load(), sent)
		}
	}
	if err := r.SendSplitOwned("cut", []byte("h"), make([]byte, 256<<10), func() { releasedCut.Add(1) }); err == nil {
		t.Fatal("a send to a cut peer succeeded")
	}
	if releasedCut.Load() != int64(sent)+1 {
		t.Fatalf("a tail refused by a cut peer was not released (%d of %d)", releasedCut.Load(), sent+1)
	}
}
