package wire

import (
	"fmt"
	"math"

	"github.com/fmq/fmq/codec"
)

// The Set* functions are the conversions of codec.Message.Set: they take
// the values a caller (or an expression language) may hand over for a
// field of a wire type and return the field's Go value, or a BadValue
// error of message msg, field field.

// SetNumber converts any Go integer, or an integral float (as expression
// languages produce), that fits typ (Number1, Number2, Number4 or Number8).
func (p *Proto) SetNumber(msg, field string, typ codec.FieldType, v any) (uint64, error) {
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
		return 0, p.BadValue(msg, field, fmt.Sprintf("%T is not a number", v))
	}
	if bits := numberBits(typ); !ok || (bits < 64 && n >= 1<<bits) {
		return 0, p.BadValue(msg, field, fmt.Sprintf("%v does not fit %s", v, typ))
	}
	return n, nil
}

func numberBits(t codec.FieldType) int {
	switch t {
	case codec.Number1:
		return 8
	case codec.Number2:
		return 16
	case codec.Number4:
		return 32
	}
	return 64
}

func (p *Proto) setText(msg, field string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", p.BadValue(msg, field, fmt.Sprintf("%T is not a string", v))
}

// SetString converts a string or []byte of at most 255 bytes for a string field.
func (p *Proto) SetString(msg, field string, v any) (string, error) {
	s, err := p.setText(msg, field, v)
	if err != nil {
		return "", err
	}
	if err := p.CheckString(msg, field, s); err != nil {
		return "", err
	}
	return s, nil
}

// SetLongstr converts a string or []byte for a longstr field.
func (p *Proto) SetLongstr(msg, field string, v any) (string, error) {
	return p.setText(msg, field, v)
}

// SetChunk converts a []byte (kept, not copied) or a string for a chunk field.
func (p *Proto) SetChunk(msg, field string, v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, p.BadValue(msg, field, fmt.Sprintf("%T is not []byte", v))
}

// SetOctets is SetChunk for an octets field of exactly size bytes.
func (p *Proto) SetOctets(msg, field string, v any, size int) ([]byte, error) {
	b, err := p.SetChunk(msg, field, v)
	if err != nil {
		return nil, err
	}
	if err := p.CheckOctets(msg, field, len(b), size); err != nil {
		return nil, err
	}
	return b, nil
}

// SetHash converts a map[string]string (kept), a map[string]any of strings
// (copied) or nil for a hash field.
func (p *Proto) SetHash(msg, field string, v any) (map[string]string, error) {
	switch x := v.(type) {
	case map[string]string:
		return x, p.CheckHash(msg, field, x)
	case map[string]any:
		h := make(map[string]string, len(x))
		for k, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, p.BadValue(msg, field, fmt.Sprintf("entry %q is %T, not a string", k, e))
			}
			h[k] = s
		}
		return h, p.CheckHash(msg, field, h)
	case nil:
		return nil, nil
	}
	return nil, p.BadValue(msg, field, fmt.Sprintf("%T is not map[string]string", v))
}

// SetStrings converts a []string (kept), a []any of strings (copied) or
// nil for a strings field.
func (p *Proto) SetStrings(msg, field string, v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, p.CheckStrings(msg, field, x)
	case []any:
		a := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, p.BadValue(msg, field, fmt.Sprintf("element %d is %T, not a string", i, e))
			}
			a[i] = s
		}
		return a, p.CheckStrings(msg, field, a)
	case nil:
		return nil, nil
	}
	return nil, p.BadValue(msg, field, fmt.Sprintf("%T is not []string", v))
}
