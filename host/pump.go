package host

import (
	"context"

	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/transport"
)

// Pump is the one hosting pump between a Router and a server engine (used
// by serve, relay and fmqrun run): every frame goes to Engine.Deliver, every
// departure to Engine.Forget, from this one goroutine, so the engine sees
// them in the transport's order. A departure already signalled goes first:
// the transport emits Gone(peer) after that peer's last frame and before
// anything from a later connection that presents the same identity, so a
// departed peer's last frames never reach a fresh session, and a new
// connection never reaches the old one's. The engine's Run must be running
// (it serves the sessions and their timers). Pump returns when ctx ends or
// the Router closes.
func Pump(ctx context.Context, r *transport.Router, e *interp.Engine) {
	for {
		select {
		case peer := <-r.Gone():
			e.Forget(peer)
			continue
		default:
		}
		select {
		case msg, ok := <-r.Recv():
			if !ok {
				return
			}
			e.Deliver(msg.Peer, msg.Body)
		case peer := <-r.Gone():
			e.Forget(peer)
		case <-ctx.Done():
			return
		}
	}
}
