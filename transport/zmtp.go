package transport

// Small, pure ZMTP 3 parsers and encoders (RFC 23/37 framing, RFC 24 PLAIN).
// Every parser takes the bytes it has, never reads past them, and reports a
// *ProtocolError naming the rule that was broken; none of them can panic.

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ZMTP constants.
const (
	greetingLen = 64

	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
	flagsKnown  = flagMore | flagLong | flagCommand

	// maxHandshakeCmd bounds a command frame during the handshake (READY,
	// HELLO, INITIATE, ERROR carry small metadata; libzmq sends < 200 bytes).
	maxHandshakeCmd = 8192
	// maxTrafficCmd bounds a command frame after the handshake (PING: 1+4+2+16).
	maxTrafficCmd = 64
	// maxPingContext is the largest PING/PONG context ZMTP 3.1 allows.
	maxPingContext = 16
	// maxParts bounds the frames of one multipart message.
	maxParts = 32

	mechNULL  = "NULL"
	mechPLAIN = "PLAIN"

	propSocketType = "Socket-Type"
	propIdentity   = "Identity"
)

// Drop reasons: the keys of Stats.Drops and the "reason" attribute of log lines.
const (
	ReasonHandshakeTimeout = "handshake-timeout"
	ReasonHandshakeClosed  = "handshake-closed"
	ReasonBadGreeting      = "bad-greeting"
	ReasonBadMechanism     = "bad-mechanism"
	ReasonBadHandshake     = "bad-handshake"
	ReasonAuthFailed       = "auth-failed"
	ReasonBadSocketType    = "bad-socket-type"
	ReasonBadIdentity      = "bad-identity"
	ReasonDuplicateID      = "duplicate-identity"
	ReasonBadFrame         = "bad-frame"
	ReasonFrameTooLarge    = "frame-too-large"
	ReasonBadCommand       = "bad-command"
	ReasonWriteTimeout     = "write-timeout"
	ReasonWriteOverflow    = "write-overflow"
	ReasonWriteError       = "write-error"
	ReasonReadError        = "read-error"
	ReasonTooManyPending   = "too-many-handshakes"
	ReasonReplaced         = "replaced"
	ReasonDisconnected     = "disconnected"
)

// ProtocolError is a violation of ZMTP by the peer (or a refusal by us). The
// connection that produced it is cut; Reason is one of the Reason* constants.
type ProtocolError struct {
	Reason string
	Detail string
}

func (e *ProtocolError) Error() string {
	return "transport: " + e.Reason + ": " + e.Detail
}

func protoErr(reason, format string, args ...any) *ProtocolError {
	return &ProtocolError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// greeting is the part of a ZMTP 3 greeting we check.
type greeting struct {
	Major, Minor byte
	Mechanism    string
	AsServer     bool
}

// appendGreeting appends a 64-byte ZMTP 3.0 greeting.
func appendGreeting(b []byte, mech string, asServer bool) []byte {
	var g [greetingLen]byte
	g[0] = 0xFF
	g[9] = 0x7F
	g[10] = 3
	g[11] = 0
	copy(g[12:32], mech)
	if asServer {
		g[32] = 1
	}
	return append(b, g[:]...)
}

// parseGreeting checks a 64-byte greeting: signature, version >= 3,
// a NUL-padded printable mechanism name and a boolean as-server byte.
func parseGreeting(b []byte) (greeting, error) {
	var g greeting
	if len(b) != greetingLen {
		return g, protoErr(ReasonBadGreeting, "greeting is %d bytes, want %d", len(b), greetingLen)
	}
	if b[0] != 0xFF || b[9] != 0x7F {
		return g, protoErr(ReasonBadGreeting, "bad signature %x..%x", b[0], b[9])
	}
	g.Major, g.Minor = b[10], b[11]
	if g.Major < 3 {
		return g, protoErr(ReasonBadGreeting, "ZMTP version %d.%d, need 3.x", g.Major, g.Minor)
	}
	mech := b[12:32]
	end := 0
	for end < len(mech) && mech[end] != 0 {
		c := mech[end]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return g, protoErr(ReasonBadGreeting, "bad mechanism byte %#x", c)
		}
		end++
	}
	for _, c := range mech[end:] {
		if c != 0 {
			return g, protoErr(ReasonBadGreeting, "mechanism not NUL-padded")
		}
	}
	if end == 0 {
		return g, protoErr(ReasonBadGreeting, "empty mechanism")
	}
	g.Mechanism = string(mech[:end])
	switch b[32] {
	case 0:
	case 1:
		g.AsServer = true
	default:
		return g, protoErr(ReasonBadGreeting, "as-server byte %#x", b[32])
	}
	return g, nil
}

// frameHeader is a decoded ZMTP frame header.
type frameHeader struct {
	Flags byte
	Size  uint64
}

func (h frameHeader) more() bool    { return h.Flags&flagMore != 0 }
func (h frameHeader) command() bool { return h.Flags&flagCommand != 0 }

// headerLen returns the header length implied by a flags byte (2 or 9).
func headerLen(flags byte) int {
	if flags&flagLong != 0 {
		return 9
	}
	return 2
}

// parseFrameHeader decodes a frame header from b, which must hold at least
// headerLen(b[0]) bytes. It enforces the reserved bits, "commands have no
// MORE bit" and the size cap for the frame's kind.
func parseFrameHeader(b []byte, maxMsg, maxCmd uint64) (frameHeader, error) {
	var h frameHeader
	if len(b) < 1 || len(b) < headerLen(b[0]) {
		return h, protoErr(ReasonBadFrame, "truncated frame header")
	}
	h.Flags = b[0]
	if h.Flags&^flagsKnown != 0 {
		return h, protoErr(ReasonBadFrame, "reserved flag bits set in %#02x", h.Flags)
	}
	if h.command() && h.more() {
		return h, protoErr(ReasonBadFrame, "command frame with MORE flag")
	}
	if h.Flags&flagLong != 0 {
		h.Size = binary.BigEndian.Uint64(b[1:9])
	} else {
		h.Size = uint64(b[1])
	}
	limit := maxMsg
	if h.command() {
		limit = maxCmd
	}
	if h.Size > limit {
		kind := "message"
		if h.command() {
			kind = "command"
		}
		return h, protoErr(ReasonFrameTooLarge, "%s frame of %d bytes exceeds %d", kind, h.Size, limit)
	}
	return h, nil
}

// appendFrameHeader appends the shortest header for a frame.
func appendFrameHeader(b []byte, flags byte, size int) []byte {
	if size > 255 {
		b = append(b, flags|flagLong)
		return binary.BigEndian.AppendUint64(b, uint64(size))
	}
	return append(b, flags, byte(size))
}

// appendCommand appends a complete command frame.
func appendCommand(b []byte, name string, body []byte) []byte {
	b = appendFrameHeader(b, flagCommand, 1+len(name)+len(body))
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, body...)
}

// parseCommand splits a command frame body into name and data.
func parseCommand(b []byte) (name string, data []byte, err error) {
	if len(b) < 1 {
		return "", nil, protoErr(ReasonBadCommand, "empty command frame")
	}
	n := int(b[0])
	if n == 0 || n > len(b)-1 {
		return "", nil, protoErr(ReasonBadCommand, "command name length %d with %d bytes left", n, len(b)-1)
	}
	name = string(b[1 : 1+n])
	for _, c := range []byte(name) {
		if c < 'A' || c > 'Z' {
			return "", nil, protoErr(ReasonBadCommand, "bad command name %q", name)
		}
	}
	return name, b[1+n:], nil
}

// property is one metadata entry, in wire order.
type property struct{ Name, Value string }

// metadata is a decoded READY/INITIATE property list. Names compare
// case-insensitively (RFC 37).
type metadata []property

func (m metadata) get(name string) (string, bool) {
	for _, p := range m {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// parseMetadata decodes a property list, rejecting truncation, empty or
// duplicate names and values over maxValue bytes.
func parseMetadata(b []byte, maxValue int) (metadata, error) {
	var m metadata
	for len(b) > 0 {
		nl := int(b[0])
		b = b[1:]
		if nl == 0 || nl > len(b) {
			return nil, protoErr(ReasonBadHandshake, "metadata name length %d with %d bytes left", nl, len(b))
		}
		name := string(b[:nl])
		b = b[nl:]
		if len(b) < 4 {
			return nil, protoErr(ReasonBadHandshake, "metadata %q: truncated value length", name)
		}
		vl := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(vl) > uint64(len(b)) || int(vl) > maxValue {
			return nil, protoErr(ReasonBadHandshake, "metadata %q: value length %d with %d bytes left", name, vl, len(b))
		}
		if _, dup := m.get(name); dup {
			return nil, protoErr(ReasonBadHandshake, "duplicate metadata %q", name)
		}
		m = append(m, property{name, string(b[:vl])})
		b = b[vl:]
	}
	return m, nil
}

// appendMetadata encodes properties (names must be 1..255 bytes).
func appendMetadata(b []byte, props ...property) []byte {
	for _, p := range props {
		b = append(b, byte(len(p.Name)))
		b = append(b, p.Name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Value)))
		b = append(b, p.Value...)
	}
	return b
}

// parsePlainHello decodes a PLAIN HELLO body: 1-byte length + username,
// 1-byte length + password, nothing after.
func parsePlainHello(b []byte) (user, pass string, err error) {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return "", "", protoErr(ReasonBadHandshake, "HELLO: truncated username")
	}
	user = string(b[1 : 1+b[0]])
	b = b[1+int(b[0]):]
	if len(b) < 1 || int(b[0]) != len(b)-1 {
		return "", "", protoErr(ReasonBadHandshake, "HELLO: bad password length")
	}
	return user, string(b[1:]), nil
}

func appendPlainHello(b []byte, user, pass string) []byte {
	b = append(b, byte(len(user)))
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

// parseErrorReason decodes an ERROR command body: 1-byte length + reason.
func parseErrorReason(b []byte) string {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return "(malformed ERROR)"
	}
	return string(b[1 : 1+b[0]])
}

// compatible reports whether a socket of type ours may talk to one of type peer.
func compatible(ours, peer string) bool {
	switch ours {
	case "ROUTER":
		return peer == "DEALER" || peer == "REQ" || peer == "ROUTER"
	case "DEALER":
		return peer == "ROUTER" || peer == "REP" || peer == "DEALER"
	}
	return false
}
