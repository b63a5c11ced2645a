package interp

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/fmq/fmq/codec"
)

// Ctx is what an action sees. It is valid only during the action call;
// the engine reuses it.
type Ctx struct {
	e      *Engine
	d      *disp
	inst   *instance
	evID   int // the event being handled, -1 for the initial entry
	msg    codec.Message
	value  any
	err    error
	action *Action
	// raiseErr records a bad ctx.Raise; it fails the action.
	raiseErr error
}

// Event is the name of the event being handled.
func (c *Ctx) Event() string {
	if c.evID < 0 {
		return ""
	}
	return c.inst.ms.m.Events[c.evID].Name
}

// Msg is the protocol message of the input being processed (also while
// internal events raised from it are handled), or nil for inputs that are
// not messages (timers, posted events) and malformed frames. Its chunk and
// octets fields alias the received frame: copy them to keep them past the
// current input.
func (c *Ctx) Msg() codec.Message { return c.msg }

// Value is the value posted with the event (Post, Broadcast, Call args,
// RaiseValue, Wakeup), or nil.
func (c *Ctx) Value() any { return c.value }

// Err is the error behind the current event: the *codec.Error of a
// malformed frame, the action error behind an exception event, or nil.
func (c *Ctx) Err() error { return c.err }

// PeerID is the instance's peer identity ("" for a client).
func (c *Ctx) PeerID() string { return c.inst.id }

// Peer is the per-instance user value (Options.NewPeer / Library.NewPeer).
func (c *Ctx) Peer() any { return c.inst.peer }

// Shared is the per-engine user value.
func (c *Ctx) Shared() any { return c.e.shared }

// State is the current state name.
func (c *Ctx) State() string { return c.inst.state.Name }

// Log is the engine's logger, with the peer id attached.
func (c *Ctx) Log() *slog.Logger {
	if c.inst.log == nil {
		c.inst.log = c.e.log.With("peer", c.inst.id)
	}
	return c.inst.log
}

// Now is the engine's clock at the current input.
func (c *Ctx) Now() time.Time { return c.d.now }

func (c *Ctx) setting(name string, want SettingType) (any, bool) {
	m := c.inst.ms.m
	i, ok := m.settingIdx[name]
	if !ok || m.Settings[i].Type != want {
		c.e.log.Error("action reads an undeclared setting", "setting", name, "type", want.String(), "machine", m.Name)
		return nil, false
	}
	return c.inst.ms.vals[i], true
}

// Int returns an int setting (0 if it is not declared as an int).
func (c *Ctx) Int(name string) int64 {
	v, ok := c.setting(name, SettingInt)
	if !ok {
		return 0
	}
	return v.(int64)
}

// Duration returns a duration setting.
func (c *Ctx) Duration(name string) time.Duration {
	v, ok := c.setting(name, SettingDuration)
	if !ok {
		return 0
	}
	return v.(time.Duration)
}

// String returns a string setting.
func (c *Ctx) String(name string) string {
	v, ok := c.setting(name, SettingString)
	if !ok {
		return ""
	}
	return v.(string)
}

// Bool returns a bool setting.
func (c *Ctx) Bool(name string) bool {
	v, ok := c.setting(name, SettingBool)
	if !ok {
		return false
	}
	return v.(bool)
}

// Out returns the instance's scratch message of that name, to fill before
// `send NAME` (which encodes, sends and resets it). It returns nil for a
// name that is not a message of the protocol.
func (c *Ctx) Out(name string) codec.Message {
	m := c.inst.ms.m
	i, ok := m.eventIdx[name]
	if !ok || i >= m.nMsgs {
		return nil
	}
	return c.inst.outMsg(i)
}

// Send encodes and sends msg to the instance's peer now. An action may call
// it many times (one chunk per call). It fails for a message this role may
// not send or that does not encode.
func (c *Ctx) Send(msg codec.Message) error { return c.d.send(c.inst, msg) }

// Raise queues an internal event, handled after the current transition
// completes (never re-entrantly). The event must be in the action's Raises.
func (c *Ctx) Raise(event string) { c.RaiseValue(event, nil) }

// RaiseValue is Raise with a value, readable as ctx.Value() and `value`.
func (c *Ctx) RaiseValue(event string, v any) {
	ev, err := c.checkRaise(event)
	if err != nil {
		c.raiseErr = err
		return
	}
	c.d.push(ev, v, nil)
}

func (c *Ctx) checkRaise(event string) (int, error) {
	m := c.inst.ms.m
	i, ok := m.eventIdx[event]
	if !ok {
		return 0, fmt.Errorf("%w: %q raised by action %q", ErrUnknownEvent, event, c.actionName())
	}
	if c.action != nil && c.action.Spec != nil && !contains(c.action.Spec.Raises, event) {
		return 0, fmt.Errorf("action %q raised %q, which its ActionSpec.Raises does not list", c.action.Name, event)
	}
	return i, nil
}

func (c *Ctx) actionName() string {
	if c.action == nil {
		return ""
	}
	return c.action.Name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SetExpiry changes the instance's idle expiry: event "expired" after d
// without inbound messages, counted from now. Zero turns it off.
func (c *Ctx) SetExpiry(d time.Duration) { c.inst.setExpiry(c.d.now, d) }

// SetHeartbeat changes the instance's heartbeat period, counted from now.
// Zero turns it off.
func (c *Ctx) SetHeartbeat(d time.Duration) { c.inst.setHeartbeat(c.d.now, d) }

// Wakeup raises event once after d (replacing a pending wakeup of the same
// event). The event must be in the action's Raises.
func (c *Ctx) Wakeup(d time.Duration, event string) {
	ev, err := c.checkRaise(event)
	if err != nil {
		c.raiseErr = err
		return
	}
	c.inst.setWakeup(ev, c.d.now.Add(max(d, time.Nanosecond))) // never due in the tick that set it
}

// CancelWakeup cancels a pending wakeup.
func (c *Ctx) CancelWakeup(event string) {
	if i, ok := c.inst.ms.m.eventIdx[event]; ok {
		c.inst.cancelWakeup(i)
	}
}

// Hold takes over the release of the frame being handled, for an action
// that keeps part of the message beyond its own call (a chunk or octets
// field aliases the frame; strings and numbers are copies): the engine will
// not give the frame's buffer back after the dispatch (Engine.DeliverOwned),
// and the action calls the function returned, once, when nothing
// references the frame any more; not calling it only leaves the buffer to
// the collector. It never returns nil (a no-op when the frame has no
// release, or when it was taken already).
func (c *Ctx) Hold() func() {
	r := c.d.release
	if r == nil {
		return noRelease
	}
	c.d.release = nil
	return r
}

func noRelease() {}

// Terminate ends the instance once the current action list completes.
func (c *Ctx) Terminate() { c.inst.dead = true }

// Notify reports to the application (Engine.Notifications). It never
// blocks: if the application does not keep up, the notification is dropped
// and counted in Stats.NotifyDropped. A client's Run hands a busy
// dispatcher's notifications over in batches, in order: before it waits
// for more input, or once 64 are held.
func (c *Ctx) Notify(name string, v any) {
	c.e.notifyApp(c.d, Notification{Peer: c.inst.id, Name: name, Value: v})
}
