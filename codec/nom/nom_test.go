package nom

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExactVectors(t *testing.T) {
	tests := []struct {
		msg  codec.Message
		wire string
	}{
		{&Ohai{Protocol: "NOM", Version: 1, Nickname: "bob"}, "AA A0 01 03 4E4F4D 01 03 626F62"},
		{&OhaiOk{}, "AA A0 02"},
		{&Wtf{Reason: "", Code: 0xBEEF}, "AA A0 03 00 BEEF"},
		{&Icanhaz{What: "", Toppings: []string{"", "ab"}, Options: map[string]string{"z": "", "a": "1"}},
			"AA A0 04 00000000 00000002 00000000 00000002 6162 00000002 01 61 00000001 31 01 7A 00000000"},
		{&Cheezburger{Serial: 0xDEADBEEF, Digest: []byte{1, 2, 3, 4}}, "AA A0 05 DEADBEEF 01020304 00000000"},
		{&Hugz{}, "AA A0 06"},
		{&HugzOk{}, "AA A0 07"},
	}
	for _, tt := range tests {
		want := unhex(t, tt.wire)
		got, err := tt.msg.Append(nil)
		if err != nil || !bytes.Equal(got, want) || tt.msg.Length() != len(want) {
			t.Errorf("%s: Append = % X, %v (Length %d); want % X", tt.msg.Info().Name, got, err, tt.msg.Length(), want)
		}
		m, err := Decode(want, nil)
		if err != nil || !sameMessage(m, tt.msg) {
			t.Errorf("%s: Decode = %+v, %v", tt.msg.Info().Name, m, err)
		}
	}
	if len(tests) != len(Protocol.Messages()) {
		t.Errorf("%d vectors for %d messages", len(tests), len(Protocol.Messages()))
	}
}

func TestErrors(t *testing.T) {
	var frames [][]byte
	for _, m := range sampleMessages() {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	for _, f := range frames {
		for n := 0; n < len(f); n++ {
			_, err := Decode(f[:n], nil)
			want := codec.ErrTruncated
			if n < 2 {
				want = codec.ErrBadSignature
			}
			if !errors.Is(err, want) {
				t.Errorf("prefix %d of % X: %v", n, f, err)
			}
		}
		if _, err := Decode(append(bytes.Clone(f), 0xFF), nil); !errors.Is(err, codec.ErrTrailing) {
			t.Errorf("% X + FF: %v", f, err)
		}
	}
	// A FILEMQ frame is not a nom frame, and the other way round.
	if _, err := Decode(unhex(t, "AA A3 09"), nil); !errors.Is(err, codec.ErrBadSignature) {
		t.Errorf("FILEMQ HUGZ: %v", err)
	}
	if _, err := filemq.Decode(unhex(t, "AA A0 06"), nil); !errors.Is(err, codec.ErrBadSignature) {
		t.Errorf("nom HUGZ in filemq: %v", err)
	}
	if _, err := Decode(unhex(t, "AA A0 08"), nil); !errors.Is(err, codec.ErrUnknownID) {
		t.Errorf("id 8: %v", err)
	}
	m, err := Decode(unhex(t, "AA A0 01 03 4E4F4D 02 00"), nil)
	if !errors.Is(err, codec.ErrBadConstant) || m.(*Ohai).Version != 2 {
		t.Errorf("OHAI version 2: %v %v", m, err)
	}
	// Octets have a fixed size on encode and through Set.
	if _, err := (&Cheezburger{Digest: []byte{1}}).Append(nil); !errors.Is(err, codec.ErrBadValue) {
		t.Errorf("short digest: %v", err)
	}
	c := NewCheezburger()
	if err := c.Set("digest", "abcd"); err != nil || string(c.Digest) != "abcd" {
		t.Errorf("Set digest: %v", err)
	}
	if err := c.Set("digest", "abc"); !errors.Is(err, codec.ErrBadValue) {
		t.Errorf("Set 3-byte digest: %v", err)
	}
	if err := c.Set("serial", 1<<32); !errors.Is(err, codec.ErrBadValue) {
		t.Errorf("Set serial 2^32: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	p, ok := codec.Lookup("nom")
	if !ok || p.Signature() != 0xAAA0 || len(p.Messages()) != 7 {
		t.Fatalf("nom not registered: %v", p)
	}
	if names := codec.Names(); !slices.Contains(names, "nom") || !slices.Contains(names, "filemq") {
		t.Errorf("registry names %v", names)
	}
	if mi, ok := p.ByName("WTF"); !ok || mi.ID != IDWtf || mi.From != codec.FromServer {
		t.Errorf("WTF info %+v", mi)
	}
}

func FuzzDecode(f *testing.F) {
	for _, ex := range goldenExamples {
		b, _ := hex.DecodeString(ex.Wire)
		f.Add(b)
	}
	for _, m := range sampleMessages() {
		b, _ := m.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame, &codec.Limits{MaxChunk: 1 << 12, MaxItems: 64})
		var ce *codec.Error
		if err != nil && (!errors.As(err, &ce) || ce.Protocol != "nom") {
			t.Fatalf("untyped error %v", err)
		}
		if err != nil && ce.Kind != codec.BadConstant {
			return
		}
		enc, encErr := m.Append(nil)
		if encErr != nil || len(enc) != m.Length() {
			t.Fatalf("re-encode: %v", encErr)
		}
		m2, err2 := Decode(enc, nil)
		if (err == nil) != (err2 == nil) || !sameMessage(m, m2) {
			t.Fatalf("unstable: %+v (%v) -> %+v (%v)", m, err, m2, err2)
		}
	})
}
