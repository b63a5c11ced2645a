package codecgen

// runtime is appended to every generated codec: the small pure parsers and
// encoders the message methods call. It is emitted per package (as stringer
// does) so generated packages depend on nothing but codec.
const runtime = `// decoder reads one frame. Its methods do nothing once err is set, so
// message decoders are straight-line code; bad records the first constant
// field with another value, which does not stop decoding.
type decoder struct {
	frame    []byte
	off      int
	maxChunk uint64
	maxItems uint64
	msg      string
	err      *codec.Error
	bad      *codec.Error
}

func (d *decoder) fail(kind codec.ErrorKind, field string, off int, format string, args ...any) {
	if d.err == nil {
		d.err = &codec.Error{Kind: kind, Protocol: ProtocolName, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf(format, args...)}
	}
}

func badSignature(frame []byte) *codec.Error {
	return &codec.Error{Kind: codec.BadSignature, Protocol: ProtocolName, Detail: fmt.Sprintf("frame starts % X, want %02X %02X", frame[:min(len(frame), 2)], sig0, sig1)}
}

// start checks signature, id and frame size; on success the decoder is at
// the first field.
func (d *decoder) start(frame []byte, lim *codec.Limits, id uint8, msg string) bool {
	d.frame, d.msg = frame, msg
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
	if len(frame) < 2 || frame[0] != sig0 || frame[1] != sig1 {
		d.err = badSignature(frame)
		d.err.Message = msg
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
		d.fail(codec.UnknownID, "", 2, "frame holds message 0x%02X (%s)", frame[2], nameOf(frame[2]))
		return false
	}
	d.off = 3
	return true
}

func (d *decoder) need(n int, field string) bool {
	if d.err != nil {
		return false
	}
	if have := len(d.frame) - d.off; have < n {
		d.fail(codec.Truncated, field, d.off, "need %d bytes, have %d", n, have)
		return false
	}
	return true
}

func (d *decoder) number1(field string) uint8 {
	if !d.need(1, field) {
		return 0
	}
	v := d.frame[d.off]
	d.off++
	return v
}

func (d *decoder) number2(field string) uint16 {
	if !d.need(2, field) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.frame[d.off:])
	d.off += 2
	return v
}

func (d *decoder) number4(field string) uint32 {
	if !d.need(4, field) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.frame[d.off:])
	d.off += 4
	return v
}

func (d *decoder) number8(field string) uint64 {
	if !d.need(8, field) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.frame[d.off:])
	d.off += 8
	return v
}

// sized reads a length prefix of 1 or 4 octets and that many octets.
func (d *decoder) sized(field string, prefix int, max uint64) ([]byte, bool) {
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

// str reads a string; old is returned when equal, saving an allocation.
func (d *decoder) str(field, old string) string {
	b, ok := d.sized(field, 1, 255)
	if !ok {
		return ""
	}
	if string(b) == old {
		return old
	}
	return string(b)
}

// longstr reads a longstr; old is returned when equal, saving an allocation.
func (d *decoder) longstr(field, old string) string {
	b, ok := d.sized(field, 4, d.maxChunk)
	if !ok {
		return ""
	}
	if string(b) == old {
		return old
	}
	return string(b)
}

// chunk returns a slice of the frame (no copy); nil when empty.
func (d *decoder) chunk(field string) []byte {
	b, ok := d.sized(field, 4, d.maxChunk)
	if !ok || len(b) == 0 {
		return nil
	}
	return b
}

// octets returns a slice of the frame (no copy).
func (d *decoder) octets(field string, size int) []byte {
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
func (d *decoder) count(field string, minItem int) (int, bool) {
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

// hash reads a hash into old (cleared) or a new map; nil when empty and old
// is nil. A repeated key keeps its last value.
func (d *decoder) hash(field string, old map[string]string) map[string]string {
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
		k := d.str(field, "")
		v := d.longstr(field, "")
		if d.err == nil {
			h[k] = v
		}
	}
	return h
}

// strings reads a strings field, reusing old's array; nil when empty and old is nil.
func (d *decoder) strings(field string, old []string) []string {
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
		a = append(a, d.longstr(field, prev))
	}
	if len(a) == 0 && old == nil {
		return nil
	}
	return a
}

func (d *decoder) checkString(field string, off int, got, want string) {
	if d.err == nil && d.bad == nil && got != want {
		d.bad = &codec.Error{Kind: codec.BadConstant, Protocol: ProtocolName, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf("%q, want %q", got, want)}
	}
}

func (d *decoder) checkNumber(field string, off int, got, want uint64) {
	if d.err == nil && d.bad == nil && got != want {
		d.bad = &codec.Error{Kind: codec.BadConstant, Protocol: ProtocolName, Message: d.msg, Field: field, Offset: off, Detail: fmt.Sprintf("%d, want %d", got, want)}
	}
}

// finish rejects trailing bytes and returns the first error.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.frame) {
		d.fail(codec.Trailing, "", d.off, "%d bytes after the last field", len(d.frame)-d.off)
	}
	if d.err != nil {
		return d.err
	}
	if d.bad != nil {
		return d.bad
	}
	return nil
}

func badValue(msg, field, detail string) error {
	return &codec.Error{Kind: codec.BadValue, Protocol: ProtocolName, Message: msg, Field: field, Detail: detail}
}

func checkString(msg, field, s string) error {
	if len(s) > 255 {
		return badValue(msg, field, fmt.Sprintf("string of %d bytes is over 255", len(s)))
	}
	return nil
}

func checkLongstr(msg, field string, n int) error {
	if uint64(n) > math.MaxUint32 {
		return badValue(msg, field, fmt.Sprintf("%d bytes do not fit a 4-octet length", n))
	}
	return nil
}

func checkOctets(msg, field string, n, size int) error {
	if n != size {
		return badValue(msg, field, fmt.Sprintf("octets field holds %d bytes, want %d", n, size))
	}
	return nil
}

func checkHash(msg, field string, h map[string]string) error {
	if uint64(len(h)) > math.MaxUint32 {
		return badValue(msg, field, "too many entries")
	}
	for k, v := range h {
		if len(k) > 255 {
			return badValue(msg, field, fmt.Sprintf("key of %d bytes is over 255", len(k)))
		}
		if uint64(len(v)) > math.MaxUint32 {
			return badValue(msg, field, fmt.Sprintf("value of %q: %d bytes do not fit a 4-octet length", k, len(v)))
		}
	}
	return nil
}

func checkStrings(msg, field string, a []string) error {
	if uint64(len(a)) > math.MaxUint32 {
		return badValue(msg, field, "too many entries")
	}
	for _, s := range a {
		if err := checkLongstr(msg, field, len(s)); err != nil {
			return err
		}
	}
	return nil
}

// hashLen is the size of a hash's entries (count prefix not included).
func hashLen(h map[string]string) int {
	n := 0
	for k, v := range h {
		n += 1 + len(k) + 4 + len(v)
	}
	return n
}

// stringsLen is the size of a strings field's items (count prefix not included).
func stringsLen(a []string) int {
	n := 0
	for _, s := range a {
		n += 4 + len(s)
	}
	return n
}

// appendHash writes entries sorted by key, so output is deterministic.
func appendHash(dst []byte, h map[string]string) []byte {
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

func appendStrings(dst []byte, a []string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(a)))
	for _, s := range a {
		dst = append(binary.BigEndian.AppendUint32(dst, uint32(len(s))), s...)
	}
	return dst
}

// setNumber converts any Go integer (or an integral float, as expression
// languages produce) that fits bits.
func setNumber(msg, field, typ string, v any, bits int) (uint64, error) {
	var n uint64
	ok := true
	switch x := v.(type) {
	case int:
		n, ok = uint64(x), x >= 0
	case int8:
		n, ok = uint64(x), x >= 0
	case int16:
		n, ok = uint64(x), x >= 0
	case int32:
		n, ok = uint64(x), x >= 0
	case int64:
		n, ok = uint64(x), x >= 0
	case uint:
		n = uint64(x)
	case uint8:
		n = uint64(x)
	case uint16:
		n = uint64(x)
	case uint32:
		n = uint64(x)
	case uint64:
		n = x
	case uintptr:
		n = uint64(x)
	case float64:
		ok = x >= 0 && x < 1<<64 && x == math.Trunc(x)
		if ok {
			n = uint64(x)
		}
	case float32:
		ok = x >= 0 && x < 1<<64 && float64(x) == math.Trunc(float64(x))
		if ok {
			n = uint64(x)
		}
	default:
		return 0, badValue(msg, field, fmt.Sprintf("%T is not a number", v))
	}
	if !ok || (bits < 64 && n >= 1<<bits) {
		return 0, badValue(msg, field, fmt.Sprintf("%v does not fit %s", v, typ))
	}
	return n, nil
}

func setString(msg, field string, v any, short bool) (string, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return "", badValue(msg, field, fmt.Sprintf("%T is not a string", v))
	}
	if short {
		if err := checkString(msg, field, s); err != nil {
			return "", err
		}
	}
	return s, nil
}

func setBytes(msg, field string, v any, size int) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		return nil, badValue(msg, field, fmt.Sprintf("%T is not []byte", v))
	}
	if size >= 0 {
		if err := checkOctets(msg, field, len(b), size); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func setHash(msg, field string, v any) (map[string]string, error) {
	switch x := v.(type) {
	case map[string]string:
		return x, checkHash(msg, field, x)
	case map[string]any:
		h := make(map[string]string, len(x))
		for k, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, badValue(msg, field, fmt.Sprintf("entry %q is %T, not a string", k, e))
			}
			h[k] = s
		}
		return h, checkHash(msg, field, h)
	case nil:
		return nil, nil
	}
	return nil, badValue(msg, field, fmt.Sprintf("%T is not map[string]string", v))
}

func setStrings(msg, field string, v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, checkStrings(msg, field, x)
	case []any:
		a := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, badValue(msg, field, fmt.Sprintf("element %d is %T, not a string", i, e))
			}
			a[i] = s
		}
		return a, checkStrings(msg, field, a)
	case nil:
		return nil, nil
	}
	return nil, badValue(msg, field, fmt.Sprintf("%T is not []string", v))
}
`
