package transport

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func listen(t testing.TB, opt Options) *Router {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger()
	}
	r, err := Listen("tcp://127.0.0.1:0", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dial(t testing.TB, ep string, opt Options) *Dealer {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger()
	}
	d, err := Dial(ep, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func recvMsg(t testing.TB, ch <-chan Msg, within time.Duration) Msg {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("receive channel closed")
		}
		return m
	case <-time.After(within):
		t.Fatalf("no message within %v", within)
	}
	return Msg{}
}

// echo answers every message on r with the same body, until r closes.
func echo(r *Router) {
	go func() {
		for m := range r.Recv() {
			r.Send(m.Peer, m.Body)
		}
	}()
}

// roundTrip checks that a fresh dealer gets its message echoed.
func roundTrip(t testing.TB, ep string, opt Options) {
	t.Helper()
	d := dial(t, ep, opt)
	want := []byte(fmt.Sprintf("ping %d", time.Now().UnixNano()))
	if err := d.Send(want); err != nil {
		t.Fatal(err)
	}
	got := recvMsg(t, d.Recv(), 5*time.Second)
	if !bytes.Equal(got.Body, want) {
		t.Fatalf("echo: got %q want %q", got.Body, want)
	}
	d.Close()
}

func TestRouterDealerEcho(t *testing.T) {
	r := listen(t, Options{})
	echo(r)
	d := dial(t, r.Endpoint(), Options{Identity: "alice"})
	for i := 0; i < 100; i++ {
		body := bytes.Repeat([]byte{byte(i)}, i*37)
		if err := d.Send(body); err != nil {
			t.Fatal(err)
		}
		got := recvMsg(t, d.Recv(), 5*time.Second)
		if !bytes.Equal(got.Body, body) {
			t.Fatalf("message %d: got %d bytes want %d", i, len(got.Body), len(body))
		}
	}
	if d.Identity() != "alice" {
		t.Fatalf("identity %q", d.Identity())
	}
	s := r.Stats()
	if s.Established != 1 || s.Active != 1 {
		t.Fatalf("stats %+v", s)
	}
}
