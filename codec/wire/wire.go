// Package wire is the runtime of the generated codecs (codec/filemq,
// codec/nom, ...): the small pure parsers and encoders of the wire types of
// spec/model.md, with bounds and limit checks that report *codec.Error.
// Generated message methods are straight-line calls into this package; it
// knows no protocol beyond the Proto a generated package describes itself
// with.
//
// Decoding: a Decoder reads one frame. Its methods do nothing once an error
// is recorded, so a message decoder is one call per field and a final
// Finish. Encoding: Append* write one field; Check* validate a value first
// (Append* assume it fits). Set*: the conversions of codec.Message.Set.
//
// The hot-path helpers (Decoder.Number*, Chunk, Octets, the Check* and
// Append* of fixed types) are small enough to inline; error paths are
// kept in separate functions so they do not count against that.
package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/fmq/fmq/codec"
)

// Proto describes a generated protocol to this package: its name (the
// Protocol of every error), its signature and its messages (to name a
// message id in errors).
type Proto struct {
	Name      string
	Signature uint16
	Messages  []*codec.MessageInfo // sorted by id
}

// MessageName is the name of the message with the given id, or "unknown".
func (p *Proto) MessageName(id uint8) string {
	for _, mi := range p.Messages {
		if mi.ID == id {
			return mi.Name
		}
	}
	return "unknown"
}

// hasSignature reports whether frame starts with the signature.
func (p *Proto) hasSignature(frame []byte) bool {
	return len(frame) >= 2 && frame[0] == byte(p.Signature>>8) && frame[1] == byte(p.Signature)
}

func (p *Proto) badSignature(frame []byte, msg string) *codec.Error {
	return &codec.Error{Kind: codec.BadSignature, Protocol: p.Name, Message: msg, Detail: fmt.Sprintf("frame starts % X, want %02X %02X", frame[:min(len(frame), 2)], p.Signature>>8, p.Signature&0xFF)}
}

// Head checks what a package-level Decode checks before it knows the
// message: the signature (BadSignature) and the presence of an id octet
// (Truncated). On success frame[2] is the message id.
func (p *Proto) Head(frame []byte) error {
	if !p.hasSignature(frame) {
		return p.badSignature(frame, "")
	}
	if len(frame) < 3 {
		return &codec.Error{Kind: codec.Truncated, Protocol: p.Name, Offset: 2, Detail: "no message id"}
	}
	return nil
}

// UnknownID is the error of a package-level Decode for an id no message has.
func (p *Proto) UnknownID(id uint8) error {
	return &codec.Error{Kind: codec.UnknownID, Protocol: p.Name, Offset: 2, Detail: fmt.Sprintf("no message has id 0x%02X", id)}
}

// Decoded is what a package-level Decode returns once m.Decode returned
// err: m and nil, m with a BadConstant error (fully decoded, so a server
// can say what was wrong), or nil and any other error.
func Decoded(m codec.Message, err error) (codec.Message, error) {
	if err != nil {
		if e, ok := err.(*codec.Error); ok && e.Kind == codec.BadConstant {
			return m, err
		}
		return nil, err
	}
	return m, nil
}

// Decoder reads one frame. Its methods do nothing once an error is
// recorded, so message decoders are straight-line code; a constant field
// with another value is recorded apart (CheckString, CheckNumber) and does
// not stop decoding. The zero value is ready for Start.
type Decoder struct {
	frame    []byte
	off      int
	maxChunk uint64
	maxItems uint64
	p        *Proto
	msg      string
	err      *codec.Error
	bad      *codec.Error
}

// fail records the first structural error. It also moves the offset past
// the end of the frame, so every later read fails its length check (and
// records nothing): the readers need no separate error test to stay cheap
// enough to inline.
func (d *Decoder) fail(kind codec.ErrorKind, field string, off int, format string, args ...any) {
	if d.err == nil {
		d.err = &codec.Error{Kind: kind, Protocol: d.p.Name, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf(format, args...)}
	}
	d.off = len(d.frame) + 1
}

// Start checks signature, frame size and id of a frame of message msg;
// on success the decoder is at the first field. On failure Err is the
// error.
func (d *Decoder) Start(frame []byte, lim *codec.Limits, p *Proto, id uint8, msg string) bool {
	d.frame, d.p, d.msg = frame, p, msg
	maxFrame, maxChunk, maxItems := codec.DefaultMaxFrame, codec.DefaultMaxChunk, codec.DefaultMaxItems
	if lim != nil {
		if lim.MaxFrame > 0 {
			maxFrame = lim.MaxFrame
		}
		if lim.MaxChunk > 0 {
			maxChunk = lim.MaxChunk
		}
		if lim.MaxItems > 0 {
			maxItems = lim.MaxItems
		}
	}
	d.maxChunk, d.maxItems = uint64(maxChunk), uint64(maxItems)
	if !p.hasSignature(frame) {
		d.err = p.badSignature(frame, msg)
		return false
	}
	if len(frame) > maxFrame {
		d.fail(codec.OverLimit, "", 0, "frame of %d bytes is over the limit of %d", len(frame), maxFrame)
		return false
	}
	if len(frame) < 3 {
		d.fail(codec.Truncated, "", 2, "no message id")
		return false
	}
	if frame[2] != id {
		d.fail(codec.UnknownID, "", 2, "frame holds message 0x%02X (%s)", frame[2], p.MessageName(frame[2]))
		return false
	}
	d.off = 3
	return true
}

// Err is the first structural error, or nil.
func (d *Decoder) Err() error {
	if d.err == nil {
		return nil
	}
	return d.err
}

// Offset is the position of the next field in the frame.
func (d *Decoder) Offset() int { return d.off }

// short records that n bytes are needed at the current offset (nothing
// after an error). It is the cold half of the readers, kept apart so that
// they inline.
//
//go:noinline
func (d *Decoder) short(n int, field string) {
	if d.err == nil {
		d.fail(codec.Truncated, field, d.off, "need %d bytes, have %d", n, len(d.frame)-d.off)
	}
}

// need reports whether n more bytes are there (never after an error).
func (d *Decoder) need(n int, field string) bool {
	if len(d.frame)-d.off < n {
		d.short(n, field)
		return false
	}
	return true
}

// Number1 reads a number1 field.
func (d *Decoder) Number1(field string) (v uint8) {
	if d.off < len(d.frame) {
		v = d.frame[d.off]
		d.off++
	} else {
		d.short(1, field)
	}
	return
}

// Number2 reads a number2 field.
func (d *Decoder) Number2(field string) uint16 {
	if len(d.frame)-d.off < 2 {
		d.short(2, field)
		return 0
	}
	v := binary.BigEndian.Uint16(d.frame[d.off:])
	d.off += 2
	return v
}

// Number4 reads a number4 field.
func (d *Decoder) Number4(field string) uint32 {
	if len(d.frame)-d.off < 4 {
		d.short(4, field)
		return 0
	}
	v := binary.BigEndian.Uint32(d.frame[d.off:])
	d.off += 4
	return v
}

// Number8 reads a number8 field.
func (d *Decoder) Number8(field string) uint64 {
	if len(d.frame)-d.off < 8 {
		d.short(8, field)
		return 0
	}
	v := binary.BigEndian.Uint64(d.frame[d.off:])
	d.off += 8
	return v
}

// sized reads a length prefix of 1 or 4 octets and that many octets,
// checking the length against max (OverLimit) and the bytes left
// (Truncated). The result aliases the frame with its capacity clipped.
func (d *Decoder) sized(field string, prefix int, max uint64) ([]byte, bool) {
	if !d.need(prefix, field) {
		return nil, false
	}
	at := d.off
	var n uint64
	if prefix == 1 {
		n = uint64(d.frame[at])
	} else {
		n = uint64(binary.BigEndian.Uint32(d.frame[at:]))
	}
	if n > max {
		d.fail(codec.OverLimit, field, at, "length %d is over the limit of %d", n, max)
		return nil, false
	}
	if have := uint64(len(d.frame) - at - prefix); n > have {
		d.fail(codec.Truncated, field, at+prefix, "length %d, have %d bytes", n, have)
		return nil, false
	}
	d.off = at + prefix + int(n)
	return d.frame[at+prefix : d.off : d.off], true
}

// String reads a string field; old is returned when equal, saving an
// allocation (pass the constant for a constant field).
func (d *Decoder) String(field, old string) string {
	b, ok := d.sized(field, 1, 255)
	if !ok {
		return ""
	}
	if string(b) == old {
		return old
	}
	return string(b)
}

// Longstr reads a longstr field; old is returned when equal, saving an
// allocation.
func (d *Decoder) Longstr(field, old string) string {
	b, ok := d.sized(field, 4, d.maxChunk)
	if !ok {
		return ""
	}
	if string(b) == old {
		return old
	}
	return string(b)
}

// Chunk reads a chunk field: a slice of the frame (no copy, capacity
// clipped); nil when empty.
func (d *Decoder) Chunk(field string) []byte {
	b, ok := d.sized(field, 4, d.maxChunk)
	if !ok || len(b) == 0 {
		return nil
	}
	return b
}

// Octets reads an octets field of size bytes: a slice of the frame (no
// copy, capacity clipped).
func (d *Decoder) Octets(field string, size int) []byte {
	if !d.need(size, field) {
		return nil
	}
	b := d.frame[d.off : d.off+size : d.off+size]
	d.off += size
	return b
}

// count reads a 4-octet item count and checks it against the limit and
// against the bytes left (each item takes at least minItem octets), so a
// lying count cannot make the decoder allocate.
func (d *Decoder) count(field string, minItem int) (int, bool) {
	if !d.need(4, field) {
		return 0, false
	}
	at := d.off
	n := uint64(binary.BigEndian.Uint32(d.frame[at:]))
	if n > d.maxItems {
		d.fail(codec.OverLimit, field, at, "%d items are over the limit of %d", n, d.maxItems)
		return 0, false
	}
	if have := uint64(len(d.frame) - at - 4); n*uint64(minItem) > have {
		d.fail(codec.Truncated, field, at+4, "%d items need at least %d bytes, have %d", n, n*uint64(minItem), have)
		return 0, false
	}
	d.off += 4
	return int(n), true
}

// Hash reads a hash field into old (cleared) or a new map; nil when empty
// and old is nil. A repeated key keeps its last value.
func (d *Decoder) Hash(field string, old map[string]string) map[string]string {
	n, ok := d.count(field, 5)
	if !ok {
		return old
	}
	h := old
	if h != nil {
		clear(h)
	} else if n > 0 {
		h = make(map[string]string, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.String(field, "")
		v := d.Longstr(field, "")
		if d.err == nil {
			h[k] = v
		}
	}
	return h
}

// Strings reads a strings field, reusing old's array and its equal
// strings; nil when empty and old is nil.
func (d *Decoder) Strings(field string, old []string) []string {
	n, ok := d.count(field, 4)
	if !ok {
		return old
	}
	a := old[:0]
	if cap(a) < n {
		a = make([]string, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var prev string
		if i < len(old) {
			prev = old[i]
		}
		a = append(a, d.Longstr(field, prev))
	}
	if len(a) == 0 && old == nil {
		return nil
	}
	return a
}

// CheckString records a BadConstant error when the constant string field
// read at off holds got instead of want (the first one only, and only
// while there is no structural error).
func (d *Decoder) CheckString(field string, off int, got, want string) {
	if got != want {
		d.badString(field, off, got, want)
	}
}

// CheckNumber is CheckString for a constant number field.
func (d *Decoder) CheckNumber(field string, off int, got, want uint64) {
	if got != want {
		d.badNumber(field, off, got, want)
	}
}

//go:noinline
func (d *Decoder) badString(field string, off int, got, want string) {
	if d.err == nil && d.bad == nil {
		d.bad = &codec.Error{Kind: codec.BadConstant, Protocol: d.p.Name, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf("%q, want %q", got, want)}
	}
}

//go:noinline
func (d *Decoder) badNumber(field string, off int, got, want uint64) {
	if d.err == nil && d.bad == nil {
		d.bad = &codec.Error{Kind: codec.BadConstant, Protocol: d.p.Name, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf("%d, want %d", got, want)}
	}
}

// Finish rejects trailing bytes (Trailing) and returns the first
// structural error, else the first BadConstant error, else nil.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.frame) {
		d.trailing()
	}
	if d.err != nil {
		return d.err
	}
	if d.bad != nil {
		return d.bad
	}
	return nil
}

//go:noinline
func (d *Decoder) trailing() {
	d.fail(codec.Trailing, "", d.off, "%d bytes after the last field", len(d.frame)-d.off)
}

// BadValue is the encode-side error of message msg, field field.
func (p *Proto) BadValue(msg, field, detail string) error {
	return &codec.Error{Kind: codec.BadValue, Protocol: p.Name, Message: msg, Field: field, Detail: detail}
}

// CheckString: a string value holds at most 255 bytes.
func (p *Proto) CheckString(msg, field, s string) error {
	if len(s) > 255 {
		return p.tooLong(msg, field, len(s))
	}
	return nil
}

//go:noinline
func (p *Proto) tooLong(msg, field string, n int) error {
	return p.BadValue(msg, field, fmt.Sprintf("string of %d bytes is over 255", n))
}

// CheckLongstr: a longstr or chunk of n bytes fits a 4-octet length.
func (p *Proto) CheckLongstr(msg, field string, n int) error {
	if uint64(n) > math.MaxUint32 {
		return p.tooBig(msg, field, n)
	}
	return nil
}

//go:noinline
func (p *Proto) tooBig(msg, field string, n int) error {
	return p.BadValue(msg, field, fmt.Sprintf("%d bytes do not fit a 4-octet length", n))
}

// CheckOctets: an octets value of n bytes has exactly size bytes.
func (p *Proto) CheckOctets(msg, field string, n, size int) error {
	if n != size {
		return p.wrongSize(msg, field, n, size)
	}
	return nil
}

//go:noinline
func (p *Proto) wrongSize(msg, field string, n, size int) error {
	return p.BadValue(msg, field, fmt.Sprintf("octets field holds %d bytes, want %d", n, size))
}

// CheckHash: at most 2^32-1 entries, keys of at most 255 bytes, values
// that fit a 4-octet length.
func (p *Proto) CheckHash(msg, field string, h map[string]string) error {
	if uint64(len(h)) > math.MaxUint32 {
		return p.BadValue(msg, field, "too many entries")
	}
	for k, v := range h {
		if len(k) > 255 {
			return p.BadValue(msg, field, fmt.Sprintf("key of %d bytes is over 255", len(k)))
		}
		if uint64(len(v)) > math.MaxUint32 {
			return p.BadValue(msg, field, fmt.Sprintf("value of %q: %d bytes do not fit a 4-octet length", k, len(v)))
		}
	}
	return nil
}

// CheckStrings: at most 2^32-1 items, each fitting a 4-octet length.
func (p *Proto) CheckStrings(msg, field string, a []string) error {
	if uint64(len(a)) > math.MaxUint32 {
		return p.BadValue(msg, field, "too many entries")
	}
	for _, s := range a {
		if err := p.CheckLongstr(msg, field, len(s)); err != nil {
			return err
		}
	}
	return nil
}

// HashLen is the encoded size of a hash's entries (count prefix not included).
func HashLen(h map[string]string) int {
	n := 0
	for k, v := range h {
		n += 1 + len(k) + 4 + len(v)
	}
	return n
}

// StringsLen is the encoded size of a strings field's items (count prefix
// not included).
func StringsLen(a []string) int {
	n := 0
	for _, s := range a {
		n += 4 + len(s)
	}
	return n
}

// AppendNumber1 appends a number1.
func AppendNumber1(dst []byte, v uint8) []byte { return append(dst, v) }

// AppendNumber2 appends a number2 (big-endian).
func AppendNumber2(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

// AppendNumber4 appends a number4 (big-endian).
func AppendNumber4(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendNumber8 appends a number8 (big-endian).
func AppendNumber8(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// AppendString appends a string (1-octet length); s must pass CheckString.
func AppendString(dst []byte, s string) []byte { return append(append(dst, byte(len(s))), s...) }

// AppendLongstr appends a longstr (4-octet length).
func AppendLongstr(dst []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(s))), s...)
}

// AppendChunk appends a chunk (4-octet length).
func AppendChunk(dst []byte, b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(b))), b...)
}

// AppendChunkLen appends the 4-octet length of a chunk of n octets, whose
// content follows (see codec.Headed).
func AppendChunkLen(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendOctets appends an octets value (no length); b must pass CheckOctets.
func AppendOctets(dst []byte, b []byte) []byte { return append(dst, b...) }

// AppendHash appends a hash with its entries sorted by key, so output is
// deterministic; up to 16 keys are sorted without allocating.
func AppendHash(dst []byte, h map[string]string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h)))
	if len(h) == 0 {
		return dst
	}
	var small [16]string
	keys := small[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := h[k]
		dst = append(append(dst, byte(len(k))), k...)
		dst = append(binary.BigEndian.AppendUint32(dst, uint32(len(v))), v...)
	}
	return dst
}

// AppendStrings appends a strings field.
func AppendStrings(dst []byte, a []string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(a)))
	for _, s := range a {
		dst = append(binary.BigEndian.AppendUint32(dst, uint32(len(s))), s...)
	}
	return dst
}
