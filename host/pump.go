package host

import (
	"context"

	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/transport"
)

// Source is a socket as the hosting pump reads it: frames, and departures
// signalled after the departed connection's last frame was taken from Recv
// (and before anything of a later connection that presents the same
// identity). A transport.Router (many peers) and a transport.Dealer (one
// connection, one departure) are Sources.
type Source interface {
	Recv() <-chan transport.Msg
	Gone() <-chan string
}

// Sink takes what a Pump reads: an *interp.Engine (a server's sessions, or
// a client's one instance), or a host's adapter (the FileMQ client turns a
// departure into its machine's "lost" call and redials).
type Sink interface {
	Deliver(peer string, body []byte)
	Forget(peer string)
}

// OwnedSink is a Sink that gives a frame's buffer back once done with it
// (interp.Engine.DeliverOwned): the Pump hands it the frames that come
// with a transport.Msg.Release. To another Sink such frames are delivered
// with Deliver and left to the collector.
type OwnedSink interface {
	Sink
	DeliverOwned(peer string, body []byte, release func())
}

var (
	_ Source    = (*transport.Router)(nil)
	_ Source    = (*transport.Dealer)(nil)
	_ Sink      = (*interp.Engine)(nil)
	_ OwnedSink = (*interp.Engine)(nil)
)

// Pump is the one hosting pump between a socket and an engine, used by
// serve, relay, sync and fmqrun run (server and client): every frame goes
// to Sink.Deliver, every departure to Sink.Forget, from this one goroutine,
// so the engine sees them in the transport's order. A departure already
// signalled goes first: the transport emits it after that connection's
// last frame and before anything from a later connection that presents
// the same identity, so a departed peer's last frames never reach a fresh
// session, and a new connection never reaches the old one's. A client
// host runs one Pump per connection and starts the next session only once
// it returned, so a frame of an old connection never reaches the new
// session either. The engine's Run must be running (it serves the sessions
// and their timers). Pump returns when ctx ends or Recv is closed (a
// Router closed, a Dealer lost or closed), after the departures signalled
// by then.
func Pump(ctx context.Context, src Source, sink Sink) {
	gone := src.Gone()
	owned, _ := sink.(OwnedSink)
	for {
		select {
		case peer := <-gone:
			sink.Forget(peer)
			continue
		default:
		}
		select {
		case msg, ok := <-src.Recv():
			if !ok {
				for {
					select {
					case peer := <-gone:
						sink.Forget(peer)
					default:
						return
					}
				}
			}
			if msg.Release != nil && owned != nil {
				owned.DeliverOwned(msg.Peer, msg.Body, msg.Release)
			} else {
				sink.Deliver(msg.Peer, msg.Body)
			}
		case peer := <-gone:
			sink.Forget(peer)
		case <-ctx.Done():
			return
		}
	}
}
