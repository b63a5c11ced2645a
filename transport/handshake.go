package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// handshake runs the real ZMTP handshake on c.raw under one deadline, then
// prepares the synthetic NULL handshake zmq4 will read. ours is our socket
// type; id our identity (Dealer); newID draws a routing id for a peer that
// announced none (Router).
func (c *gconn) handshake(ours, id string, newID func() string) error {
	c.raw.SetDeadline(time.Now().Add(c.opt.HandshakeTimeout))
	err := c.exchange(ours, id)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return protoErr(ReasonHandshakeTimeout, "no complete handshake within %v", c.opt.HandshakeTimeout)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return protoErr(ReasonHandshakeClosed, "peer closed during the handshake")
		}
		return err
	}
	c.raw.SetDeadline(time.Time{})
	if c.curve != nil {
		// From here on the peer's frames come out of CURVE MESSAGEs.
		c.curve.src = c.br
		c.curve.startReader(c.done)
		c.br = bufio.NewReaderSize(c.curve, 64<<10)
	}
	routing := c.peerID
	if c.server && routing == "" {
		routing = newID()
	}
	c.peerID = routing
	props := []property{{propSocketType, c.peerType}}
	if routing != "" {
		props = append(props, property{propIdentity, routing})
	}
	c.replay = appendGreeting(nil, mechNULL, false)
	c.replay = appendCommand(c.replay, "READY", appendMetadata(nil, props...))
	return nil
}

func (c *gconn) exchange(ours, id string) error {
	mech := c.opt.mechanism()
	asServer := c.server && mech != mechNULL
	if _, err := c.raw.Write(appendGreeting(nil, mech, asServer)); err != nil {
		return err
	}
	var gb [greetingLen]byte
	if _, err := io.ReadFull(c.br, gb[:]); err != nil {
		return err
	}
	g, err := parseGreeting(gb[:])
	if err != nil {
		return err
	}
	c.libzmqPeer = !bytes.Equal(gb[1:9], make([]byte, 8))
	if g.Mechanism != mech {
		return protoErr(ReasonBadMechanism, "peer speaks %s, we require %s", g.Mechanism, mech)
	}
	var ourMeta []property
	ourMeta = append(ourMeta, property{propSocketType, ours})
	if id != "" {
		ourMeta = append(ourMeta, property{propIdentity, id})
	}
	var peerMeta []byte
	switch {
	case mech == mechCURVE && c.server:
		if peerMeta, err = c.curveServerHandshake(); err != nil {
			return err
		}
		if err := c.checkPeerMeta(peerMeta, ours); err != nil {
			return err
		}
		return c.curveServerReady(appendMetadata(nil, ourMeta...))
	case mech == mechCURVE:
		if peerMeta, err = c.curveClientHandshake(appendMetadata(nil, ourMeta...)); err != nil {
			return err
		}
	case mech == mechNULL:
		if err := c.sendCmd("READY", appendMetadata(nil, ourMeta...)); err != nil {
			return err
		}
		if peerMeta, err = c.expectCmd("READY"); err != nil {
			return err
		}
	case c.server:
		body, err := c.expectCmd("HELLO")
		if err != nil {
			return err
		}
		user, pass, err := parsePlainHello(body)
		if err != nil {
			return err
		}
		if !c.opt.PlainServer.Check(user, pass) {
			c.sendError("400")
			return protoErr(ReasonAuthFailed, "PLAIN login %q refused", user)
		}
		c.user = user
		if err := c.sendCmd("WELCOME", nil); err != nil {
			return err
		}
		if peerMeta, err = c.expectCmd("INITIATE"); err != nil {
			return err
		}
		if err := c.checkPeerMeta(peerMeta, ours); err != nil {
			return err
		}
		return c.sendCmd("READY", appendMetadata(nil, ourMeta...))
	default:
		cr := c.opt.PlainClient
		if len(cr.Username) > 255 || len(cr.Password) > 255 {
			return protoErr(ReasonBadHandshake, "PLAIN username or password over 255 bytes")
		}
		if err := c.sendCmd("HELLO", appendPlainHello(nil, cr.Username, cr.Password)); err != nil {
			return err
		}
		if _, err := c.expectCmd("WELCOME"); err != nil {
			return err
		}
		if err := c.sendCmd("INITIATE", appendMetadata(nil, ourMeta...)); err != nil {
			return err
		}
		if peerMeta, err = c.expectCmd("READY"); err != nil {
			return err
		}
	}
	return c.checkPeerMeta(peerMeta, ours)
}

// libzmqErrorName is how libzmq 4.3 spells the ERROR command name on the
// wire ("\x05ERROR" in its C source is the two characters 0x5E 'R', then
// "ROR"), and the only spelling it recognises.
var libzmqErrorName = []byte("\x5eRROR")

// sendError refuses the handshake with an ERROR command. A peer whose
// greeting carries libzmq's ZMTP 1.0 compatibility length (a non-zero
// padding) gets libzmq's spelling of ERROR, which is the one it reports as
// an authentication failure with the status code; others get RFC 23's.
func (c *gconn) sendError(reason string) {
	body := append([]byte{byte(len(reason))}, reason...)
	if c.libzmqPeer {
		frame := appendFrameHeader(nil, flagCommand, len(libzmqErrorName)+len(body))
		frame = append(frame, libzmqErrorName...)
		c.raw.Write(append(frame, body...))
		return
	}
	_ = c.sendCmd("ERROR", body)
}

func (c *gconn) sendCmd(name string, body []byte) error {
	_, err := c.raw.Write(appendCommand(nil, name, body))
	return err
}

// expectCmd reads one handshake command frame and checks its name. An ERROR
// from the peer becomes an *AuthError (when we are a PLAIN client) or a
// bad-handshake ProtocolError.
func (c *gconn) expectCmd(want string) ([]byte, error) {
	flags, err := c.br.ReadByte()
	if err != nil {
		return nil, err
	}
	if flags&flagCommand == 0 {
		return nil, protoErr(ReasonBadHandshake, "message frame before %s", want)
	}
	var hdr [9]byte
	hdr[0] = flags
	hl := headerLen(flags)
	if _, err := io.ReadFull(c.br, hdr[1:hl]); err != nil {
		return nil, err
	}
	h, err := parseFrameHeader(hdr[:hl], 0, maxHandshakeCmd)
	if err != nil {
		return nil, err
	}
	body := make([]byte, h.Size)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	var name string
	var data []byte
	if bytes.HasPrefix(body, libzmqErrorName) {
		// libzmq 4.3 writes the ERROR name as "\x05ERROR" in C, which the
		// compiler reads as 0x5E "RROR"; accept its spelling.
		name, data = "ERROR", body[len(libzmqErrorName):]
	} else if name, data, err = parseCommand(body); err != nil {
		return nil, protoErr(ReasonBadHandshake, "%s", err.(*ProtocolError).Detail)
	}
	if name == "ERROR" && name != want {
		reason := parseErrorReason(data)
		if !c.server && (c.opt.PlainClient != nil || c.opt.CurveClient != nil) {
			return nil, &AuthError{Reason: reason}
		}
		return nil, protoErr(ReasonBadHandshake, "peer sent ERROR %q", reason)
	}
	if name != want {
		return nil, protoErr(ReasonBadHandshake, "got %s, want %s", name, want)
	}
	return data, nil
}

// checkPeerMeta parses READY/INITIATE metadata: a compatible Socket-Type and
// a usable Identity.
func (c *gconn) checkPeerMeta(raw []byte, ours string) error {
	md, err := parseMetadata(raw, 1<<12)
	if err != nil {
		return err
	}
	typ, ok := md.get(propSocketType)
	if !ok {
		return protoErr(ReasonBadSocketType, "no Socket-Type in metadata")
	}
	if !compatible(ours, typ) {
		return protoErr(ReasonBadSocketType, "peer socket %q cannot talk to %s", typ, ours)
	}
	c.peerType = typ
	id, _ := md.get(propIdentity)
	if len(id) > 255 {
		return protoErr(ReasonBadIdentity, "identity of %d bytes", len(id))
	}
	if id != "" && id[0] == 0 {
		return protoErr(ReasonBadIdentity, "identity starts with a zero byte (reserved)")
	}
	c.peerID = id
	return nil
}

// checkIdentity validates a Dealer identity we announce.
func checkIdentity(id string) error {
	if id == "" || len(id) > 255 || id[0] == 0 {
		return fmt.Errorf("transport: identity must be 1..255 bytes not starting with a zero byte (got %d bytes)", len(id))
	}
	return nil
}
