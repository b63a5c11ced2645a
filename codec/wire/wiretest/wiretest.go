// Package wiretest holds the checks every generated codec's test runs
// (codec/*/x_gen_test.go): golden vectors encode and decode exactly, sample
// messages round-trip, and the message comparison the hand-written tests
// reuse. It is imported only by tests.
package wiretest

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/fmq/fmq/codec"
)

// Example is one golden vector of a model: a message and its exact frame.
type Example struct {
	Name string               // message name, for failure reports
	Msg  func() codec.Message // a fresh message with the vector's field values
	Wire string               // the frame, in hex
}

// Decoder is a generated package's Decode.
type Decoder func(frame []byte, lim *codec.Limits) (codec.Message, error)

// SameMessage reports whether a and b are the same message with equal
// fields; nil and empty hashes, strings and chunks are equal.
func SameMessage(a, b codec.Message) bool {
	if a.Info() != b.Info() {
		return false
	}
	for _, f := range a.Info().Fields {
		x, _ := a.Get(f.Name)
		y, _ := b.Get(f.Name)
		if !sameValue(x, y) {
			return false
		}
	}
	return true
}

func sameValue(x, y any) bool {
	switch x := x.(type) {
	case []byte:
		y, ok := y.([]byte)
		return ok && bytes.Equal(x, y)
	case []string:
		y, ok := y.([]string)
		return ok && slices.Equal(x, y)
	case map[string]string:
		y, ok := y.(map[string]string)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	return x == y
}

// Golden checks every example: Length is the frame's size, Append writes
// exactly the frame, and decode turns the frame back into an equal message.
// A model without golden vectors fails.
func Golden(t testing.TB, decode Decoder, examples []Example) {
	t.Helper()
	if len(examples) == 0 {
		t.Fatal("the model has no golden vectors")
	}
	for _, ex := range examples {
		want, err := hex.DecodeString(ex.Wire)
		if err != nil {
			t.Fatal(err)
		}
		m := ex.Msg()
		if n := m.Length(); n != len(want) {
			t.Errorf("%s: Length() = %d, want %d", ex.Name, n, len(want))
		}
		got, err := m.Append(nil)
		if err != nil {
			t.Errorf("%s: Append: %v", ex.Name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Append\n got % X\nwant % X", ex.Name, got, want)
		}
		d, err := decode(want, nil)
		if err != nil {
			t.Errorf("%s: Decode: %v", ex.Name, err)
			continue
		}
		if !SameMessage(d, m) {
			t.Errorf("%s: Decode = %+v, want %+v", ex.Name, d, m)
		}
	}
}

// RoundTrip checks that every message encodes to Length() bytes and
// decodes back into an equal message.
func RoundTrip(t testing.TB, decode Decoder, msgs []codec.Message) {
	t.Helper()
	for _, m := range msgs {
		b, err := m.Append(nil)
		if err != nil {
			t.Errorf("%s: Append: %v", m.Info().Name, err)
			continue
		}
		if len(b) != m.Length() {
			t.Errorf("%s: encoded %d bytes, Length() = %d", m.Info().Name, len(b), m.Length())
		}
		if h, ok := m.(codec.Headed); ok {
			head, err := h.AppendHead([]byte("x"), len(h.Tail()))
			if err != nil || string(append(head, h.Tail()...)) != "x"+string(b) {
				t.Errorf("%s: AppendHead + Tail = %x, %v; want the frame %x", m.Info().Name, head, err, b)
			}
		}
		d, err := decode(b, nil)
		if err != nil {
			t.Errorf("%s: Decode: %v", m.Info().Name, err)
			continue
		}
		if !SameMessage(d, m) {
			t.Errorf("%s: round trip = %+v, want %+v", m.Info().Name, d, m)
		}
	}
}
