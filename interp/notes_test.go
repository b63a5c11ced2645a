package interp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// A client's Run hands its notifications over in batches while it is
// busy: the application still sees every one, in the order the actions
// made them, and the last of a burst without waiting for more input (Run
// hands them over before it waits).
func TestRunClientNotificationsBatchedInOrder(t *testing.T) {
	seq := 0
	e := newOrderClient(t, func(ctx *interp.Ctx) {
		seq++ // the engine's goroutine only
		ctx.Notify(ctx.Event(), seq)
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		if err := e.Run(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	defer func() {
		cancel()
		<-ran
	}()
	next := func(what string) interp.Notification {
		t.Helper()
		select {
		case n := <-e.Notifications():
			return n
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification for %s", what)
			return interp.Notification{}
		}
	}
	hugz, _ := (&nom.HugzOk{}).Append(nil)
	// One frame, then nothing: its notification comes all the same.
	e.Deliver("", hugz)
	if n := next("a lone frame"); n.Name != "HUGZ-OK" || n.Value != 1 {
		t.Fatalf("notification %+v, want HUGZ-OK 1", n)
	}
	// A burst beyond the batch (64) and the backlog (64), calls between.
	var want []string
	for i := 0; i < 500; i++ {
		if i%70 == 69 {
			if err := e.Call("mark", nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprint("mark ", len(want)+2))
		}
		e.Deliver("", hugz)
		want = append(want, fmt.Sprint("HUGZ-OK ", len(want)+2))
	}
	for i, w := range want {
		n := next(w)
		if got := fmt.Sprint(n.Name, " ", n.Value); got != w {
			t.Fatalf("notification %d: %q, want %q", i, got, w)
		}
	}
	if d := e.Stats().NotifyDropped; d != 0 {
		t.Errorf("%d notifications dropped", d)
	}
	select {
	case n := <-e.Notifications():
		t.Errorf("one notification too many: %+v", n)
	default:
	}
}
