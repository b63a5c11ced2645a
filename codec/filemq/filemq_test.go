package filemq

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/codec"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExactVectors checks every command against bytes written out by hand
// from the wire format (notes section 2), independent of the model's own
// golden vectors.
func TestExactVectors(t *testing.T) {
	tests := []struct {
		msg  codec.Message
		wire string
	}{
		{NewOhai(), "AA A3 01 06 46 49 4C 45 4D 51 00 02"},
		{&Orly{Mechanisms: []string{"PLAIN", "CURVE"}, Challenge: []byte{1, 2}},
			"AA A3 02 00000002 00000005 504C41494E 00000005 4355525645 00000002 0102"},
		{&Orly{}, "AA A3 02 00000000 00000000"},
		{&Yarly{Mechanism: "PLAIN", Response: []byte("\x00u\x00p")},
			"AA A3 03 05 504C41494E 00000004 00 75 00 70"},
		{&OhaiOk{}, "AA A3 04"},
		{&Icanhaz{Path: "/"}, "AA A3 05 00 00 00 01 2F 00 00 00 00 00 00 00 00"},
		{&Icanhaz{Path: "/p", Options: map[string]string{"RESYNC": "1"}, Cache: map[string]string{"b": "B2", "a": "A1@3"}},
			"AA A3 05 00000002 2F70 00000001 06 524553594E43 00000001 31 00000002 01 61 00000004 41314033 01 62 00000002 4232"},
		{&IcanhazOk{}, "AA A3 06"},
		{&Nom{Credit: 5000000, Sequence: 0}, "AA A3 07 00 00 00 00 00 4C 4B 40 00 00 00 00 00 00 00 00"},
		{&Nom{Credit: 1, Sequence: 0x0102030405060708}, "AA A3 07 0000000000000001 0102030405060708"},
		{&Cheezburger{Sequence: 3, Operation: 1, Filename: "/sub/b.bin", Offset: 8, EOF: 1,
			Headers: map[string]string{"SIZE": "8", "SHA1": "AB"}},
			"AA A3 08 0000000000000003 01 0000000A 2F7375622F622E62696E 0000000000000008 01" +
				" 00000002 04 53484131 00000002 4142 04 53495A45 00000001 38 00000000"},
		{&Cheezburger{Operation: 2, Filename: "/x"}, "AA A3 08 0000000000000000 02 00000002 2F78 0000000000000000 00 00000000 00000000"},
		{&Hugz{}, "AA A3 09"},
		{&HugzOk{}, "AA A3 0A"},
		{&Kthxbai{}, "AA A3 0B"},
		{&Srsly{Reason: "bad credentials"}, "AA A3 80 0F " + "6261642063726564656E7469616C73"},
		{&Rtfm{Reason: "x"}, "AA A3 81 01 78"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		name := tt.msg.Info().Name
		seen[name] = true
		want := unhex(t, tt.wire)
		if n := tt.msg.Length(); n != len(want) {
			t.Errorf("%s: Length() = %d, want %d", name, n, len(want))
		}
		prefix := []byte("prefix")
		got, err := tt.msg.Append(prefix)
		if err != nil {
			t.Fatalf("%s: Append: %v", name, err)
		}
		if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
			t.Errorf("%s: Append\n got % X\nwant % X", name, got[6:], want)
		}
		m, err := Decode(want, nil)
		if err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		if !sameMessage(m, tt.msg) {
			t.Errorf("%s: Decode = %+v, want %+v", name, m, tt.msg)
		}
	}
	for _, mi := range Protocol.Messages() {
		if !seen[mi.Name] {
			t.Errorf("no exact vector for %s", mi.Name)
		}
	}
	if got := len(unhex(t, "AA A3 07 00 00 00 00 00 4C 4B 40 00 00 00 00 00 00 00 00")); got != 19 {
		t.Fatalf("NOM vector is %d bytes, want 19", got)
	}
}

// zmtpFrames extracts the message frames of a raw ZMTP 3 byte stream: a
// 64-byte greeting, then frames with a flags byte (bit 1 long size, bit 2
// command) and a 1- or 8-octet size. Commands (READY, PING) are skipped.
func zmtpFrames(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	if len(stream) < 64 || stream[0] != 0xFF || stream[9] != 0x7F {
		t.Fatalf("not a ZMTP greeting: % X", stream[:min(len(stream), 10)])
	}
	var frames [][]byte
	for p := 64; p < len(stream); {
		flags := stream[p]
		if flags&^0x07 != 0 {
			t.Fatalf("offset %d: bad flags %#02x", p, flags)
		}
		p++
		var n uint64
		if flags&0x02 != 0 {
			if p+8 > len(stream) {
				t.Fatalf("offset %d: truncated long size", p)
			}
			n = binary.BigEndian.Uint64(stream[p:])
			p += 8
		} else {
			if p+1 > len(stream) {
				t.Fatalf("offset %d: truncated size", p)
			}
			n = uint64(stream[p])
			p++
		}
		if n > uint64(len(stream)-p) {
			t.Fatalf("offset %d: frame of %d bytes, %d left", p, n, len(stream)-p)
		}
		body := stream[p : p+int(n)]
		p += int(n)
		if flags&0x04 != 0 {
			continue // command
		}
		if flags&0x01 != 0 {
			t.Fatalf("offset %d: multi-part message; FILEMQ commands are one frame", p)
		}
		frames = append(frames, body)
	}
	return frames
}

// cCaptures are the C reference's wire captures (see testdata/c-reference/README.md).
const cCaptures = "testdata/c-reference/*.bin"

func TestCReferenceCaptures(t *testing.T) {
	want := map[string][]string{
		"c-reference-tiny-client-to-server.bin": {"OHAI", "ICANHAZ", "NOM", "KTHXBAI"},
		"c-reference-tiny-server-to-client.bin": {"OHAI-OK", "ICANHAZ-OK", "CHEEZBURGER", "CHEEZBURGER", "CHEEZBURGER", "CHEEZBURGER"},
	}
	files, _ := filepath.Glob(cCaptures)
	if len(files) != len(want) {
		t.Fatalf("%s: %d captures, want %d (%v)", cCaptures, len(files), len(want), files)
	}
	var burgers []*Cheezburger
	for _, file := range files {
		stream, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		frames := zmtpFrames(t, stream)
		var names []string
		for i, f := range frames {
			m, err := Decode(f, nil)
			if err != nil {
				t.Fatalf("%s frame %d: %v (% X)", filepath.Base(file), i, err, f)
			}
			names = append(names, m.Info().Name)
			again, err := m.Append(nil)
			if err != nil || !bytes.Equal(again, f) {
				t.Errorf("%s frame %d (%s): re-encoded\n got % X\nwant % X (%v)", filepath.Base(file), i, m.Info().Name, again, f, err)
			}
			if c, ok := m.(*Cheezburger); ok {
				burgers = append(burgers, c)
			}
			if n, ok := m.(*Nom); ok && n.Credit != 5000000 {
				t.Errorf("NOM credit = %d, want 5000000", n.Credit)
			}
		}
		if w, ok := want[filepath.Base(file)]; ok && strings.Join(names, " ") != strings.Join(w, " ") {
			t.Errorf("%s: messages %v, want %v", filepath.Base(file), names, w)
		}
	}
	if len(burgers) != 4 {
		t.Fatalf("%d CHEEZBURGERs in the captures, want 4", len(burgers))
	}
	if string(burgers[0].Chunk) != "Hello, FileMQ!\n" || burgers[0].Filename != "/hello.txt" || burgers[0].EOF != 0 {
		t.Errorf("first CHEEZBURGER = %+v", burgers[0])
	}
	if b := burgers[3]; b.Sequence != 3 || b.Offset != 8 || b.EOF != 1 || len(b.Chunk) != 0 || b.Filename != "/sub/b.bin" {
		t.Errorf("last CHEEZBURGER = %+v", b)
	}
}

// allFrames is every frame the tests know: golden vectors, samples and
// the C captures.
func allFrames(t testing.TB) [][]byte {
	var out [][]byte
	for _, ex := range goldenExamples {
		b, _ := hex.DecodeString(ex.Wire)
		out = append(out, b)
	}
	for _, m := range sampleMessages() {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTruncatedPrefixes(t *testing.T) {
	for _, frame := range allFrames(t) {
		for n := 0; n < len(frame); n++ {
			m, err := Decode(frame[:n], nil)
			if m != nil || err == nil {
				t.Fatalf("prefix %d of % X: got %v, %v", n, frame, m, err)
			}
			want := codec.ErrTruncated
			if n < 2 {
				want = codec.ErrBadSignature
			}
			if !errors.Is(err, want) {
				t.Errorf("prefix %d of % X: %v, want %v", n, frame, err, want.Kind)
			}
			var ce *codec.Error
			if !errors.As(err, &ce) || ce.Protocol != "filemq" || ce.Offset > n {
				t.Errorf("prefix %d: bad error fields %#v", n, err)
			}
			if n >= 3 && ce.Message != proto.MessageName(frame[2]) {
				t.Errorf("prefix %d: error names message %q, want %q", n, ce.Message, proto.MessageName(frame[2]))
			}
		}
	}
}

func TestTrailingRejected(t *testing.T) {
	for _, frame := range allFrames(t) {
		long := append(bytes.Clone(frame), 0)
		m, err := Decode(long, nil)
		if m != nil || !errors.Is(err, codec.ErrTrailing) {
			t.Fatalf("% X + 00: got %v, %v; want ErrTrailing", frame, m, err)
		}
		if ce := err.(*codec.Error); ce.Offset != len(frame) {
			t.Errorf("trailing offset = %d, want %d", ce.Offset, len(frame))
		}
	}
}

func TestBadSignatureAndUnknownID(t *testing.T) {
	for _, f := range []string{"", "AA", "AB A3 01", "A3 AA 04", "AA A4 04", "00 00 00"} {
		if _, err := Decode(unhex(t, f), nil); !errors.Is(err, codec.ErrBadSignature) {
			t.Errorf("%q: %v, want bad signature", f, err)
		}
	}
	for _, id := range []byte{0, 0x0C, 0x7F, 0x82, 0xFF} {
		_, err := Decode([]byte{0xAA, 0xA3, id}, nil)
		if !errors.Is(err, codec.ErrUnknownID) || err.(*codec.Error).Offset != 2 {
			t.Errorf("id %#x: %v, want unknown id at offset 2", id, err)
		}
	}
	// A typed decoder refuses another message's frame.
	var n Nom
	if err := n.Decode(unhex(t, "AA A3 09"), nil); !errors.Is(err, codec.ErrUnknownID) || !strings.Contains(err.Error(), "HUGZ") {
		t.Errorf("Nom.Decode(HUGZ) = %v", err)
	}
}

func TestBadConstantStillDecodes(t *testing.T) {
	// OHAI version 1: the message comes back filled, with a BadConstant error.
	m, err := Decode(unhex(t, "AA A3 01 06 46494C454D51 0001"), nil)
	if !errors.Is(err, codec.ErrBadConstant) {
		t.Fatalf("version 1: %v, want bad constant", err)
	}
	ce := err.(*codec.Error)
	if ce.Field != "version" || ce.Offset != 10 || ce.Message != "OHAI" {
		t.Errorf("error = %#v", ce)
	}
	if o, ok := m.(*Ohai); !ok || o.Version != 1 || o.Protocol != "FILEMQ" {
		t.Fatalf("message = %#v", m)
	}
	m, err = Decode(unhex(t, "AA A3 01 04 5A4D5450 0002"), nil)
	if !errors.Is(err, codec.ErrBadConstant) || err.(*codec.Error).Field != "protocol" || m.(*Ohai).Protocol != "ZMTP" {
		t.Fatalf("protocol ZMTP: %v %#v", err, m)
	}
	// A structural error wins over a bad constant and returns no message.
	m, err = Decode(unhex(t, "AA A3 01 04 5A4D5450 00"), nil)
	if m != nil || !errors.Is(err, codec.ErrTruncated) {
		t.Fatalf("truncated bad OHAI: %v %v", m, err)
	}
	// A crafted bad OHAI can be encoded (conformance scripts send one).
	o := NewOhai()
	if err := o.Set("version", 1); err != nil {
		t.Fatal(err)
	}
	b, err := o.Append(nil)
	if err != nil || !bytes.Equal(b, unhex(t, "AA A3 01 06 46494C454D51 0001")) {
		t.Fatalf("bad OHAI encodes to % X, %v", b, err)
	}
}

func TestLimits(t *testing.T) {
	big := &Cheezburger{Filename: "/f", Chunk: make([]byte, 1000), Headers: map[string]string{"a": "1", "b": "2", "c": "3"}}
	frame, err := big.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(frame, &codec.Limits{MaxFrame: len(frame)}); err != nil {
		t.Fatalf("at the frame limit: %v", err)
	}
	if _, err := Decode(frame, &codec.Limits{MaxFrame: len(frame) - 1}); !errors.Is(err, codec.ErrOverLimit) {
		t.Errorf("over frame limit: %v", err)
	}
	if _, err := Decode(frame, &codec.Limits{MaxChunk: 1000}); err != nil {
		t.Errorf("at the chunk limit: %v", err)
	}
	_, err = Decode(frame, &codec.Limits{MaxChunk: 999})
	if !errors.Is(err, codec.ErrOverLimit) || err.(*codec.Error).Field != "chunk" {
		t.Errorf("over chunk limit: %v", err)
	}
	_, err = Decode(frame, &codec.Limits{MaxItems: 2})
	if !errors.Is(err, codec.ErrOverLimit) || err.(*codec.Error).Field != "headers" {
		t.Errorf("over item limit: %v", err)
	}
	// A count that cannot fit the bytes left is refused before any allocation.
	lying := unhex(t, "AA A3 05 00000001 2F FFFFFFFF")
	if _, err := Decode(lying, nil); !errors.Is(err, codec.ErrOverLimit) {
		t.Errorf("2^32-1 items: %v", err)
	}
	lying = unhex(t, "AA A3 05 00000001 2F 00010000 00")
	if _, err := Decode(lying, nil); !errors.Is(err, codec.ErrTruncated) {
		t.Errorf("65536 items in 1 byte: %v", err)
	}
	// A length over the chunk limit is over limit even when the bytes are missing.
	if _, err := Decode(unhex(t, "AA A3 08 0000000000000000 01 00000001 2F 0000000000000000 00 00000000 7FFFFFFF"), nil); !errors.Is(err, codec.ErrOverLimit) {
		t.Errorf("2 GB chunk: %v", err)
	}
}

func TestEncodeRefusesOversizeStrings(t *testing.T) {
	long := strings.Repeat("x", 256)
	for _, m := range []codec.Message{
		&Rtfm{Reason: long},
		&Yarly{Mechanism: long},
		&Icanhaz{Path: "/", Options: map[string]string{long: "v"}},
	} {
		dst := []byte{1, 2, 3}
		out, err := m.Append(dst)
		if !errors.Is(err, codec.ErrBadValue) {
			t.Errorf("%s: %v, want bad value", m.Info().Name, err)
		}
		if !bytes.Equal(out, []byte{1, 2, 3}) {
			t.Errorf("%s: appended on error", m.Info().Name)
		}
	}
	ok := &Rtfm{Reason: long[:255]}
	if b, err := ok.Append(nil); err != nil || len(b) != 3+1+255 {
		t.Errorf("255-byte string: %d bytes, %v", len(b), err)
	}
	if err := NewRtfm().Set("reason", long); !errors.Is(err, codec.ErrBadValue) {
		t.Errorf("Set 256-byte string: %v", err)
	}
}

func TestGetSet(t *testing.T) {
	m := NewCheezburger()
	for _, tc := range []struct {
		field string
		v     any
	}{
		{"sequence", 7}, {"sequence", uint64(1 << 63)}, {"operation", int64(2)}, {"operation", uint8(1)},
		{"offset", 4.0}, {"eof", int8(1)}, {"filename", "/a"}, {"filename", []byte("/b")},
		{"headers", map[string]string{"SIZE": "1"}}, {"headers", map[string]any{"SHA1": "AB"}},
		{"chunk", []byte("data")}, {"chunk", "text"},
	} {
		if err := m.Set(tc.field, tc.v); err != nil {
			t.Errorf("Set(%s, %T %v): %v", tc.field, tc.v, tc.v, err)
		}
	}
	if v, ok := m.Get("offset"); !ok || v != uint64(4) {
		t.Errorf("Get(offset) = %v %v", v, ok)
	}
	if v, _ := m.Get("chunk"); string(v.([]byte)) != "text" {
		t.Errorf("Get(chunk) = %v", v)
	}
	if v, _ := m.Get("headers"); v.(map[string]string)["SHA1"] != "AB" {
		t.Errorf("Get(headers) = %v", v)
	}
	if m.EOF != 1 || m.Operation != 1 || m.Filename != "/b" {
		t.Errorf("fields = %+v", m)
	}
	for _, tc := range []struct {
		field string
		v     any
	}{
		{"operation", 256}, {"operation", -1}, {"eof", "1"}, {"offset", 1.5}, {"sequence", -1.0},
		{"filename", 3}, {"headers", map[string]int{"a": 1}}, {"headers", map[string]any{"a": 1}},
		{"chunk", 3}, {"nosuch", 1},
	} {
		err := m.Set(tc.field, tc.v)
		var ce *codec.Error
		if !errors.As(err, &ce) || ce.Kind != codec.BadValue || ce.Field != tc.field || ce.Message != "CHEEZBURGER" {
			t.Errorf("Set(%s, %T %v) = %v, want bad value", tc.field, tc.v, tc.v, err)
		}
	}
	if _, ok := m.Get("nosuch"); ok {
		t.Error("Get(nosuch) ok")
	}
	o := NewOrly()
	if err := o.Set("mechanisms", []any{"PLAIN"}); err != nil || len(o.Mechanisms) != 1 {
		t.Errorf("Set mechanisms []any: %v", err)
	}
	if err := o.Set("mechanisms", []any{1}); !errors.Is(err, codec.ErrBadValue) {
		t.Errorf("Set mechanisms [1]: %v", err)
	}
	nm := NewNom()
	if err := nm.Set("credit", uint64(1<<64-1)); err != nil || nm.Credit != 1<<64-1 {
		t.Errorf("max credit: %v", err)
	}
	v := NewOhai()
	v.Version = 9
	v.Reset()
	if v.Version != 2 || v.Protocol != "FILEMQ" {
		t.Errorf("Reset = %+v", v)
	}
}

func TestProtocolLookups(t *testing.T) {
	p, ok := codec.Lookup("filemq")
	if !ok || p != Protocol || p.Signature() != 0xAAA3 || p.Name() != "filemq" {
		t.Fatalf("registry: %v %v", p, ok)
	}
	msgs := p.Messages()
	if len(msgs) != 13 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, mi := range msgs {
		if i > 0 && msgs[i-1].ID >= mi.ID {
			t.Errorf("not sorted by id at %s", mi.Name)
		}
		byName, ok1 := p.ByName(mi.Name)
		byID, ok2 := p.ByID(mi.ID)
		if !ok1 || !ok2 || byName != mi || byID != mi {
			t.Errorf("%s: lookups disagree", mi.Name)
		}
		m := mi.New()
		if m.Info() != mi {
			t.Errorf("%s: New().Info() is not the info", mi.Name)
		}
		for _, f := range mi.Fields {
			v, ok := m.Get(f.Name)
			if !ok {
				t.Errorf("%s.%s: Get fails", mi.Name, f.Name)
			}
			if f.Const != nil && v != f.Const {
				t.Errorf("%s.%s: New() holds %v, const %v", mi.Name, f.Name, v, f.Const)
			}
			if err := m.Set(f.Name, v); err != nil {
				t.Errorf("%s.%s: Set(Get()) = %v", mi.Name, f.Name, err)
			}
		}
	}
	msgs[0] = nil // Messages returns a copy
	if Protocol.Messages()[0] == nil {
		t.Error("Messages() exposes the internal slice")
	}
	if _, ok := p.ByName("NOPE"); ok {
		t.Error("ByName(NOPE)")
	}
	if _, ok := p.ByID(0x42); ok {
		t.Error("ByID(0x42)")
	}
	if infoCheezburger.From != codec.FromServer || infoHugz.From != codec.FromEither || infoNom.From != codec.FromClient {
		t.Error("directions")
	}
	if f, ok := infoOhai.Field("version"); !ok || f.Const != uint16(2) || f.Type != codec.Number2 {
		t.Errorf("OHAI.version info = %+v", f)
	}
	m, err := p.Decode(unhex(t, "AA A3 0A"), nil)
	if err != nil || m.Info() != &infoHugzOk {
		t.Errorf("Protocol.Decode: %v %v", m, err)
	}
}

// TestChunkAliasesFrame pins the no-copy contract of chunk fields.
func TestChunkAliasesFrame(t *testing.T) {
	frame, _ := (&Cheezburger{Filename: "/f", Chunk: []byte("abcdef")}).Append(nil)
	var c Cheezburger
	if err := c.Decode(frame, nil); err != nil {
		t.Fatal(err)
	}
	if &c.Chunk[0] != &frame[len(frame)-6] {
		t.Error("chunk does not alias the frame")
	}
	if cap(c.Chunk) != 6 {
		t.Errorf("chunk capacity %d lets appends overwrite the frame", cap(c.Chunk))
	}
}

// TestDecodeReuse: decoding into an existing message reuses its map and
// leaves nothing from the previous frame behind.
func TestDecodeReuse(t *testing.T) {
	a, _ := (&Icanhaz{Path: "/a", Options: map[string]string{"RESYNC": "1", "X": "y"}}).Append(nil)
	b, _ := (&Icanhaz{Path: "/b", Options: map[string]string{"Z": "z"}}).Append(nil)
	var m Icanhaz
	if err := m.Decode(a, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Decode(b, nil); err != nil {
		t.Fatal(err)
	}
	if len(m.Options) != 1 || m.Options["Z"] != "z" || m.Path != "/b" {
		t.Errorf("after reuse: %+v", m)
	}
}

func TestDecodeAllocs(t *testing.T) {
	frame, _ := (&Cheezburger{Sequence: 1, Operation: 1, Filename: "/big/file.bin", Chunk: make([]byte, 1<<20)}).Append(nil)
	var c Cheezburger
	// Fresh message each time: the filename is the only allocation.
	allocs := testing.AllocsPerRun(100, func() {
		c = Cheezburger{}
		if err := c.Decode(frame, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Cheezburger.Decode: %.0f allocs, want <= 1", allocs)
	}
	// Same file again (the next chunk): nothing to allocate.
	allocs = testing.AllocsPerRun(100, func() {
		if err := c.Decode(frame, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Cheezburger.Decode into a reused message: %.0f allocs, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := Decode(frame, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("Decode(CHEEZBURGER): %.0f allocs, want <= 2", allocs)
	}
	nom := &Nom{Credit: 1 << 20, Sequence: 9}
	buf := make([]byte, 0, 64)
	allocs = testing.AllocsPerRun(100, func() {
		buf, _ = nom.Append(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("Nom.Append into a reused buffer: %.0f allocs, want 0", allocs)
	}
	ohai, _ := NewOhai().Append(nil)
	var o Ohai
	allocs = testing.AllocsPerRun(100, func() {
		if err := o.Decode(ohai, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Ohai.Decode: %.0f allocs, want 0 (constant strings are not copied)", allocs)
	}
}
