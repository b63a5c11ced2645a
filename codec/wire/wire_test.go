package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fmq/fmq/codec"
)

var testProto = &Proto{Name: "t", Signature: 0xAAB1, Messages: []*codec.MessageInfo{{Name: "ALL", ID: 1}, {Name: "PING", ID: 2}}}

// all is a message of every wire type, decoded by hand as generated code does.
type all struct {
	n1  uint8
	n2  uint16
	n4  uint32
	n8  uint64
	s   string
	l   string
	h   map[string]string
	c   []byte
	a   []string
	o   []byte
	off int // offset of n2, checked as a constant 0x0102
}

func (m *all) decode(frame []byte, lim *codec.Limits) error {
	var d Decoder
	if !d.Start(frame, lim, testProto, 1, "ALL") {
		return d.Err()
	}
	m.n1 = d.Number1("n1")
	m.off = d.Offset()
	m.n2 = d.Number2("n2")
	d.CheckNumber("n2", m.off, uint64(m.n2), 0x0102)
	m.n4 = d.Number4("n4")
	m.n8 = d.Number8("n8")
	offS := d.Offset()
	m.s = d.String("s", m.s)
	d.CheckString("s", offS, m.s, "hi")
	m.l = d.Longstr("l", m.l)
	m.h = d.Hash("h", m.h)
	m.c = d.Chunk("c")
	m.a = d.Strings("a", m.a)
	m.o = d.Octets("o", 2)
	return d.Finish()
}

func (m *all) append(dst []byte) []byte {
	dst = append(dst, 0xAA, 0xB1, 1)
	dst = AppendNumber1(dst, m.n1)
	dst = AppendNumber2(dst, m.n2)
	dst = AppendNumber4(dst, m.n4)
	dst = AppendNumber8(dst, m.n8)
	dst = AppendString(dst, m.s)
	dst = AppendLongstr(dst, m.l)
	dst = AppendHash(dst, m.h)
	dst = AppendChunk(dst, m.c)
	dst = AppendStrings(dst, m.a)
	return AppendOctets(dst, m.o)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const allWire = "AAB1 01  07  0102  01020304  0102030405060708  02 6869  00000003 6C6F6E" +
	"  00000002 01 61 00000001 31 01 62 00000000  00000002 6364  00000002 00000001 78 00000000  EEFF"

func sample() *all {
	return &all{n1: 7, n2: 0x0102, n4: 0x01020304, n8: 0x0102030405060708, s: "hi", l: "lon",
		h: map[string]string{"b": "", "a": "1"}, c: []byte("cd"), a: []string{"x", ""}, o: []byte{0xEE, 0xFF}}
}

func TestExactBytes(t *testing.T) {
	want := unhex(t, allWire)
	m := sample()
	if got := m.append(nil); !bytes.Equal(got, want) {
		t.Fatalf("append\n got % X\nwant % X", got, want)
	}
	if n := 3 + 1 + 2 + 4 + 8 + 1 + len(m.s) + 4 + len(m.l) + 4 + HashLen(m.h) + 4 + len(m.c) + 4 + StringsLen(m.a) + 2; n != len(want) {
		t.Errorf("lengths add up to %d, frame has %d", n, len(want))
	}
	var d all
	if err := d.decode(want, nil); err != nil {
		t.Fatal(err)
	}
	if d.n1 != 7 || d.n2 != 0x0102 || d.n4 != 0x01020304 || d.n8 != 0x0102030405060708 || d.s != "hi" || d.l != "lon" ||
		len(d.h) != 2 || d.h["a"] != "1" || d.h["b"] != "" || string(d.c) != "cd" || len(d.a) != 2 || d.a[0] != "x" || d.a[1] != "" ||
		!bytes.Equal(d.o, []byte{0xEE, 0xFF}) || d.off != 4 {
		t.Fatalf("decoded %+v", d)
	}
	// Chunks and octets alias the frame, capacity clipped.
	if &d.c[0] != &want[len(want)-2-4-4-1-4-2] || cap(d.c) != 2 || cap(d.o) != 2 {
		t.Errorf("chunk does not alias the frame with clipped capacity")
	}
}

// TestTruncatedPrefixes: every proper prefix fails with the error of the
// field it ends in, at the offset where bytes are missing.
func TestTruncatedPrefixes(t *testing.T) {
	frame := unhex(t, allWire)
	fieldAt := []struct {
		end   int // the field ends before this offset
		field string
	}{{3, ""}, {4, "n1"}, {6, "n2"}, {10, "n4"}, {18, "n8"}, {21, "s"}, {28, "l"}, {45, "h"}, {51, "c"}, {64, "a"}, {66, "o"}}
	for n := 0; n < len(frame); n++ {
		var m all
		err := m.decode(frame[:n], nil)
		var ce *codec.Error
		if !errors.As(err, &ce) {
			t.Fatalf("prefix %d: %v", n, err)
		}
		want := codec.Truncated
		if n < 2 {
			want = codec.BadSignature
		}
		var field string
		for _, f := range fieldAt {
			if n < f.end {
				field = f.field
				break
			}
		}
		if ce.Kind != want || ce.Protocol != "t" || ce.Message != "ALL" || ce.Field != field || ce.Offset > n || (n >= 2 && ce.Offset < 2) {
			t.Errorf("prefix %d: %#v, want %v in field %q", n, ce, want, field)
		}
	}
}

func TestErrors(t *testing.T) {
	frame := unhex(t, allWire)
	at := func(off int, b ...byte) []byte {
		f := bytes.Clone(frame)
		copy(f[off:], b)
		return f
	}
	tests := []struct {
		name  string
		frame []byte
		lim   *codec.Limits
		want  string
	}{
		{"empty", nil, nil, "t: bad signature in ALL at offset 0: frame starts , want AA B1"},
		{"signature", []byte{0xAA, 0xB2, 1}, nil, "t: bad signature in ALL at offset 0: frame starts AA B2, want AA B1"},
		{"no id", []byte{0xAA, 0xB1}, nil, "t: truncated frame in ALL at offset 2: no message id"},
		{"other id", at(2, 2), nil, "t: unknown message id in ALL at offset 2: frame holds message 0x02 (PING)"},
		{"unknown id", at(2, 9), nil, "t: unknown message id in ALL at offset 2: frame holds message 0x09 (unknown)"},
		{"max frame", frame, &codec.Limits{MaxFrame: 65}, "t: over limit in ALL at offset 0: frame of 66 bytes is over the limit of 65"},
		{"max frame ok", frame, &codec.Limits{MaxFrame: 66}, ""},
		{"short n8", frame[:12], nil, "t: truncated frame in ALL.n8 at offset 10: need 8 bytes, have 2"},
		{"string length", at(18, 0xFF), nil, "t: truncated frame in ALL.s at offset 19: length 255, have 47 bytes"},
		{"longstr limit", frame, &codec.Limits{MaxChunk: 2}, "t: over limit in ALL.l at offset 21: length 3 is over the limit of 2"},
		{"items limit", frame, &codec.Limits{MaxItems: 1}, "t: over limit in ALL.h at offset 28: 2 items are over the limit of 1"},
		{"lying count", at(28, 0, 1, 0, 0), nil, "t: truncated frame in ALL.h at offset 32: 65536 items need at least 327680 bytes, have 34"},
		{"lying strings count", at(51, 0, 0, 0, 3), nil, "t: truncated frame in ALL.a at offset 55: 3 items need at least 12 bytes, have 11"},
		{"chunk limit", func() []byte { m := sample(); m.l = ""; return m.append(nil) }(), &codec.Limits{MaxChunk: 1}, "t: over limit in ALL.c at offset 42: length 2 is over the limit of 1"},
		{"trailing", append(bytes.Clone(frame), 0, 0), nil, "t: trailing bytes in ALL at offset 66: 2 bytes after the last field"},
		{"constant number", at(4, 9), nil, "t: bad constant in ALL.n2 at offset 4: 2306, want 258"},
		{"constant string", at(19, 'h', 'o'), nil, `t: bad constant in ALL.s at offset 18: "ho", want "hi"`},
		{"constant then truncated", at(4, 9)[:60], nil, "t: truncated frame in ALL.a at offset 55: 2 items need at least 8 bytes, have 5"},
		{"two constants", at(19, 'h', 'o')[:0:0], nil, "t: bad constant in ALL.n2 at offset 4: 2306, want 258"},
	}
	for _, tt := range tests {
		if tt.name == "two constants" {
			tt.frame = at(4, 9)
			copy(tt.frame[19:], "ho")
		}
		var m all
		err := m.decode(tt.frame, tt.lim)
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%s: %v\n want %s", tt.name, err, tt.want)
		}
	}
	// A structural error after a bad constant wins; a bad constant alone
	// still fills the message.
	var m all
	if err := m.decode(at(4, 9), nil); !errors.Is(err, codec.ErrBadConstant) || m.n2 != 0x0902 || len(m.o) != 2 {
		t.Errorf("bad constant: %v, %+v", err, m)
	}
}

func TestHead(t *testing.T) {
	for _, tt := range []struct {
		frame []byte
		want  string
	}{
		{nil, "t: bad signature at offset 0: frame starts , want AA B1"},
		{[]byte{0xAA}, "t: bad signature at offset 0: frame starts AA, want AA B1"},
		{[]byte{0xAA, 0xB1}, "t: truncated frame at offset 2: no message id"},
		{[]byte{0xAA, 0xB1, 7}, ""},
	} {
		err := testProto.Head(tt.frame)
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("Head(% X) = %v, want %q", tt.frame, err, tt.want)
		}
	}
	if err := testProto.UnknownID(0x7F); err.Error() != "t: unknown message id at offset 2: no message has id 0x7F" {
		t.Error(err)
	}
}

type fakeMsg struct{ codec.Message }

func TestDecoded(t *testing.T) {
	m := fakeMsg{}
	if got, err := Decoded(m, nil); got != m || err != nil {
		t.Error("success not passed through")
	}
	bad := &codec.Error{Kind: codec.BadConstant}
	if got, err := Decoded(m, bad); got != m || err != bad {
		t.Error("bad constant must return the message")
	}
	short := &codec.Error{Kind: codec.Truncated}
	if got, err := Decoded(m, short); got != nil || err != short {
		t.Error("structural error must return no message")
	}
}

func TestReuse(t *testing.T) {
	frame := unhex(t, allWire)
	var m all
	if err := m.decode(frame, nil); err != nil {
		t.Fatal(err)
	}
	h, a, l := m.h, m.a, m.l
	h["stale"] = "x"
	if err := m.decode(frame, nil); err != nil {
		t.Fatal(err)
	}
	if len(m.h) != 2 || &m.a[0] != &a[0] || m.l != l || m.h["stale"] != "" {
		t.Errorf("decode did not reuse: %+v", m)
	}
	_ = h
	if n := testing.AllocsPerRun(100, func() { _ = m.decode(frame, nil) }); n != 0 {
		t.Errorf("decode into a used message: %v allocations, want 0", n)
	}
	// Empty hash and strings decode as nil into a fresh message, and a
	// repeated key keeps the last value.
	f := unhex(t, "AAB1 01 07 0102 01020304 0102030405060708 02 6869 00000000 00000002 01 61 00000001 31 01 61 00000001 32 00000000 00000000 EEFF")
	var e all
	if err := e.decode(f, nil); err != nil || e.a != nil || e.c != nil || e.h["a"] != "2" || len(e.h) != 1 {
		t.Errorf("empty fields: %v %+v", err, e)
	}
}

func TestChecks(t *testing.T) {
	p := testProto
	long := strings.Repeat("x", 256)
	for _, tt := range []struct {
		err  error
		want string
	}{
		{p.CheckString("M", "f", long), "t: bad value in M.f: string of 256 bytes is over 255"},
		{p.CheckString("M", "f", long[:255]), ""},
		{p.CheckLongstr("M", "f", math.MaxUint32), ""},
		{p.CheckLongstr("M", "f", math.MaxUint32+1), "t: bad value in M.f: 4294967296 bytes do not fit a 4-octet length"},
		{p.CheckOctets("M", "f", 3, 2), "t: bad value in M.f: octets field holds 3 bytes, want 2"},
		{p.CheckOctets("M", "f", 2, 2), ""},
		{p.CheckHash("M", "f", map[string]string{long: ""}), "t: bad value in M.f: key of 256 bytes is over 255"},
		{p.CheckHash("M", "f", map[string]string{"k": long}), ""},
		{p.CheckStrings("M", "f", []string{long}), ""},
		{p.BadValue("M", "f", "no such field"), "t: bad value in M.f: no such field"},
	} {
		if (tt.err == nil) != (tt.want == "") || (tt.err != nil && tt.err.Error() != tt.want) {
			t.Errorf("got %v, want %q", tt.err, tt.want)
		}
	}
}

func TestAppendHashSorted(t *testing.T) {
	h := map[string]string{}
	for _, k := range []string{"q", "c", "z", "a", "m", "b", "y", "d", "x", "e", "w", "f", "v", "g", "u", "h", "t", "i"} {
		h[k] = k
	}
	got := AppendHash(nil, h)
	want := []byte{0, 0, 0, 18}
	for _, k := range "abcdefghimqtuvwxyz" {
		want = append(want, 1, byte(k), 0, 0, 0, 1, byte(k))
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendHash\n got % X\nwant % X", got, want)
	}
	small := map[string]string{"b": "2", "a": "1"}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { _ = AppendHash(buf[:0], small) }); n != 0 {
		t.Errorf("AppendHash of 2 keys: %v allocations", n)
	}
}

func TestSet(t *testing.T) {
	p := testProto
	for _, tt := range []struct {
		typ  codec.FieldType
		v    any
		want uint64
		err  string
	}{
		{codec.Number1, 255, 255, ""},
		{codec.Number1, 256, 0, "256 does not fit number1"},
		{codec.Number1, -1, 0, "-1 does not fit number1"},
		{codec.Number2, uint16(65535), 65535, ""},
		{codec.Number2, int64(65536), 0, "65536 does not fit number2"},
		{codec.Number4, 2.0, 2, ""},
		{codec.Number4, 2.5, 0, "2.5 does not fit number4"},
		{codec.Number4, float32(7), 7, ""},
		{codec.Number4, uintptr(1 << 32), 0, "4294967296 does not fit number4"},
		{codec.Number8, uint64(math.MaxUint64), math.MaxUint64, ""},
		{codec.Number8, 1e30, 0, "1e+30 does not fit number8"},
		{codec.Number8, int8(-3), 0, "-3 does not fit number8"},
		{codec.Number8, "1", 0, "string is not a number"},
	} {
		n, err := p.SetNumber("M", "f", tt.typ, tt.v)
		if tt.err == "" && (err != nil || n != tt.want) {
			t.Errorf("SetNumber(%s, %v) = %d, %v", tt.typ, tt.v, n, err)
		}
		if tt.err != "" && (err == nil || err.Error() != "t: bad value in M.f: "+tt.err) {
			t.Errorf("SetNumber(%s, %v) error %v, want %s", tt.typ, tt.v, err, tt.err)
		}
	}
	if s, err := p.SetString("M", "f", []byte("ab")); s != "ab" || err != nil {
		t.Error(s, err)
	}
	if _, err := p.SetString("M", "f", strings.Repeat("x", 256)); !errors.Is(err, codec.ErrBadValue) {
		t.Error(err)
	}
	if s, err := p.SetLongstr("M", "f", strings.Repeat("x", 256)); len(s) != 256 || err != nil {
		t.Error(err)
	}
	if _, err := p.SetLongstr("M", "f", 1); err == nil || err.Error() != "t: bad value in M.f: int is not a string" {
		t.Error(err)
	}
	if b, err := p.SetChunk("M", "f", "ab"); string(b) != "ab" || err != nil {
		t.Error(b, err)
	}
	if _, err := p.SetChunk("M", "f", 1); err == nil || err.Error() != "t: bad value in M.f: int is not []byte" {
		t.Error(err)
	}
	if _, err := p.SetOctets("M", "f", "abc", 2); err == nil || err.Error() != "t: bad value in M.f: octets field holds 3 bytes, want 2" {
		t.Error(err)
	}
	if h, err := p.SetHash("M", "f", map[string]any{"k": "v"}); h["k"] != "v" || err != nil {
		t.Error(h, err)
	}
	if _, err := p.SetHash("M", "f", map[string]any{"k": 1}); err == nil || err.Error() != `t: bad value in M.f: entry "k" is int, not a string` {
		t.Error(err)
	}
	if h, err := p.SetHash("M", "f", nil); h != nil || err != nil {
		t.Error(h, err)
	}
	if _, err := p.SetHash("M", "f", 1); err == nil || err.Error() != "t: bad value in M.f: int is not map[string]string" {
		t.Error(err)
	}
	if a, err := p.SetStrings("M", "f", []any{"a", "b"}); len(a) != 2 || a[1] != "b" || err != nil {
		t.Error(a, err)
	}
	if _, err := p.SetStrings("M", "f", []any{"a", 2}); err == nil || err.Error() != "t: bad value in M.f: element 1 is int, not a string" {
		t.Error(err)
	}
	if a, err := p.SetStrings("M", "f", nil); a != nil || err != nil {
		t.Error(a, err)
	}
	if _, err := p.SetStrings("M", "f", "x"); err == nil || err.Error() != "t: bad value in M.f: string is not []string" {
		t.Error(err)
	}
}

// FuzzDecode: the decoder never panics, reports only typed errors inside
// the frame, and what it accepts re-encodes to the same frame.
func FuzzDecode(f *testing.F) {
	full, _ := hex.DecodeString(strings.Join(strings.Fields(allWire), ""))
	f.Add(full)
	f.Add([]byte{0xAA, 0xB1, 1, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m all
		err := m.decode(frame, &codec.Limits{MaxChunk: 64, MaxItems: 8})
		if err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) || ce.Protocol != "t" || ce.Offset < 0 || ce.Offset > len(frame) {
				t.Fatalf("bad error %#v", err)
			}
			if ce.Kind != codec.BadConstant {
				return
			}
		}
		if len(m.h) <= 1 { // a repeated key re-encodes shorter
			if got := m.append(nil); !bytes.Equal(got, frame) {
				t.Fatalf("re-encoded % X, frame % X", got, frame)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	frame, _ := hex.DecodeString(strings.Join(strings.Fields(allWire), ""))
	var m all
	b.ReportAllocs()
	for b.Loop() {
		if err := m.decode(frame, nil); err != nil {
			b.Fatal(err)
		}
	}
}
