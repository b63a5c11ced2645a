package transport

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Router.Hold keeps what is sent to a peer in its write queue until Flush:
// nothing is written meanwhile (the queue holds every byte), then every
// message arrives whole and in order, though the sender reused its buffers.
// A WaitQueued while held does not wait for the Flush, a burst over holdMax
// starts the writer, and after the Flush sends go out as before.
func TestHoldFlush(t *testing.T) {
	srvKeys, cliKeys := curvePair(t)
	for _, v := range []struct {
		name     string
		srv, cli Options
	}{
		{"null", Options{}, Options{}},
		{"curve", Options{CurveServer: &CurveServer{Keys: srvKeys}},
			Options{CurveClient: &CurveClient{ServerKey: srvKeys.Public, Keys: cliKeys}}},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := listen(t, v.srv)
			opt := v.cli
			opt.Identity = "p"
			d := dial(t, r.Endpoint(), opt)
			if err := d.Send([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			recvMsg(t, r.Recv(), 5*time.Second)
			seq := 0
			send := func(n int) {
				b := stamped(0, seq, n)
				var err error
				if seq%2 == 0 {
					err = r.Send("p", b)
				} else {
					err = r.SendSplit("p", b[:8], b[8:])
				}
				if err != nil {
					t.Fatal(err)
				}
				clear(b)
				seq++
			}
			expect := func(from, to int) {
				t.Helper()
				for q := from; q < to; q++ {
					m := recvMsg(t, d.Recv(), 10*time.Second)
					if _, got, err := checkStamped(m.Body); err != nil || got != q {
						t.Fatalf("message %d: seq %d, %v", q, got, err)
					}
				}
			}

			r.Hold("p")
			bodies := 0
			for i := range 6 {
				n := []int{10, 300, smallWrite - 20, smallWrite + 100}[i%4]
				send(n)
				bodies += n
			}
			if q := r.Queued("p"); q < bodies {
				t.Fatalf("held: %d bytes queued, want all %d sent", q, bodies)
			}
			r.Flush("p")
			expect(0, 6)

			// A waiter drains what is held without a Flush.
			r.Hold("p")
			send(100)
			send(5000)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.WaitQueued(ctx, "p", 1); err != nil {
				t.Fatalf("WaitQueued while held: %v (%d bytes queued)", err, r.Queued("p"))
			}
			expect(6, 8)

			// holdMax bytes held start the writer: the messages that made
			// them up arrive before the Flush; the rest waits for it.
			for range holdMax/(8<<10) + 2 {
				send(8 << 10)
			}
			expect(8, 8+holdMax/(8<<10))
			r.Flush("p")
			expect(8+holdMax/(8<<10), seq)

			// After the Flush: as before, a Hold of an unknown peer is nothing.
			r.Hold("nobody")
			r.Flush("nobody")
			from := seq
			send(10)
			send(smallWrite * 3)
			expect(from, seq)
			if err := d.Send([]byte(fmt.Sprint("bye ", seq))); err != nil {
				t.Fatal(err)
			}
			recvMsg(t, r.Recv(), 5*time.Second)
		})
	}
}
