package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reasonOf(err error) string {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

func TestGreetingBytes(t *testing.T) {
	g := appendGreeting(nil, "PLAIN", true)
	want := unhex(t, "ff 0000000000000000 7f 03 00 504c41494e000000000000000000000000000000 01"+strings.Repeat("00", 31))
	if !bytes.Equal(g, want) {
		t.Fatalf("greeting\n got %x\nwant %x", g, want)
	}
	pg, err := parseGreeting(g)
	if err != nil || pg.Mechanism != "PLAIN" || !pg.AsServer || pg.Major != 3 {
		t.Fatalf("%+v %v", pg, err)
	}
	// libzmq 4.3 sends 3.1 and a non-zero padding (ZMTP 1.0 length field).
	lz := appendGreeting(nil, "NULL", false)
	lz[8], lz[11] = 1, 1
	if pg, err := parseGreeting(lz); err != nil || pg.Minor != 1 {
		t.Fatalf("libzmq greeting: %+v %v", pg, err)
	}
	for i := 0; i < greetingLen; i++ {
		if _, err := parseGreeting(g[:i]); reasonOf(err) != ReasonBadGreeting {
			t.Fatalf("truncated greeting of %d bytes: %v", i, err)
		}
	}
	bad := map[string]func(b []byte){
		"signature":      func(b []byte) { b[0] = 0 },
		"footer":         func(b []byte) { b[9] = 0x7E },
		"version 2":      func(b []byte) { b[10] = 2 },
		"lowercase mech": func(b []byte) { b[12] = 'p' },
		"empty mech":     func(b []byte) { copy(b[12:32], make([]byte, 20)) },
		"mech padding":   func(b []byte) { b[30] = 'X' },
		"as-server 2":    func(b []byte) { b[32] = 2 },
	}
	for name, mutate := range bad {
		b := bytes.Clone(g)
		mutate(b)
		if _, err := parseGreeting(b); reasonOf(err) != ReasonBadGreeting {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFrameHeader(t *testing.T) {
	cases := []struct {
		hex    string
		size   uint64
		reason string
	}{
		{"00 05", 5, ""},
		{"01 00", 0, ""},
		{"04 ff", 0, ReasonFrameTooLarge}, // command over maxCmd (64)
		{"04 40", 64, ""},
		{"02 0000000000000100", 256, ""},
		{"02 0000000000100001", 0, ReasonFrameTooLarge}, // 1 MiB + 1 over a 1 MiB cap
		{"02 4000000000000000", 0, ReasonFrameTooLarge}, // 2^62
		{"02 ffffffffffffffff", 0, ReasonFrameTooLarge},
		{"05 00", 0, ReasonBadFrame}, // command with MORE
		{"08 00", 0, ReasonBadFrame}, // reserved bit
		{"80 00", 0, ReasonBadFrame},
	}
	for _, tc := range cases {
		b := unhex(t, tc.hex)
		h, err := parseFrameHeader(b, 1<<20, 64)
		if reasonOf(err) != tc.reason || (err == nil && h.Size != tc.size) {
			t.Errorf("%s: size %d err %v, want size %d reason %q", tc.hex, h.Size, err, tc.size, tc.reason)
		}
		for i := 0; i < len(b); i++ { // every truncation is an error, never a panic
			if _, err := parseFrameHeader(b[:i], 1<<20, 64); err == nil {
				t.Errorf("%s truncated to %d: no error", tc.hex, i)
			}
		}
	}
	if got := appendFrameHeader(nil, flagMore, 300); !bytes.Equal(got, unhex(t, "03 000000000000012c")) {
		t.Fatalf("long header %x", got)
	}
	if got := appendCommand(nil, "PING", []byte{0, 1}); !bytes.Equal(got, unhex(t, "04 07 04 50494e47 0001")) {
		t.Fatalf("PING %x", got)
	}
}

func TestCommandAndMetadata(t *testing.T) {
	// READY as libzmq's DEALER sends it (Socket-Type DEALER, empty Identity).
	ready := unhex(t, "05 5245414459 0b 536f636b65742d54797065 00000006 4445414c4552 08 4964656e74697479 00000000")
	name, data, err := parseCommand(ready)
	if err != nil || name != "READY" {
		t.Fatalf("%q %v", name, err)
	}
	md, err := parseMetadata(data, 255)
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := md.get("socket-type"); typ != "DEALER" {
		t.Fatalf("socket type %q", typ)
	}
	if id, ok := md.get("Identity"); !ok || id != "" {
		t.Fatalf("identity %q %v", id, ok)
	}
	if got := appendMetadata(nil, md...); !bytes.Equal(got, data) {
		t.Fatalf("re-encoded %x", got)
	}
	for i := 0; i < len(data); i++ {
		if _, err := parseMetadata(data[:i], 255); i > 0 && err == nil && i != 22 { // 22: after the first property
			t.Errorf("metadata truncated to %d bytes accepted", i)
		}
	}
	for _, bad := range []string{"00", "01 61", "01 61 000000", "01 61 00000002 62", "01 61 00000000 01 41 00000000"} {
		if _, err := parseMetadata(unhex(t, bad), 255); reasonOf(err) != ReasonBadHandshake {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, bad := range []string{"", "00", "05 5245", "03 616263"} {
		if _, _, err := parseCommand(unhex(t, bad)); reasonOf(err) != ReasonBadCommand {
			t.Errorf("command %q: %v", bad, err)
		}
	}
	for body, ok := range map[string]bool{
		"04 50494e47 0000": true, "04 50494e47 0000" + strings.Repeat("61", 16): true,
		"04 50494e47 00": false, "04 50494e47 0000" + strings.Repeat("61", 17): false,
		"04 504f4e47": true, "05 5245414459": false,
	} {
		if err := checkTrafficCommand(unhex(t, body)); (err == nil) != ok {
			t.Errorf("traffic command %s: %v", body, err)
		}
	}
}

func TestPlainHello(t *testing.T) {
	b := appendPlainHello(nil, "ada", "pw")
	if !bytes.Equal(b, unhex(t, "03 616461 02 7077")) {
		t.Fatalf("%x", b)
	}
	u, p, err := parsePlainHello(b)
	if err != nil || u != "ada" || p != "pw" {
		t.Fatalf("%q %q %v", u, p, err)
	}
	for i := 0; i < len(b); i++ {
		if _, _, err := parsePlainHello(b[:i]); err == nil {
			t.Errorf("HELLO truncated to %d accepted", i)
		}
	}
	if _, _, err := parsePlainHello(append(b, 0)); err == nil {
		t.Error("HELLO with trailing byte accepted")
	}
	if r := parseErrorReason(unhex(t, "03 343030")); r != "400" {
		t.Fatalf("reason %q", r)
	}
	if r := parseErrorReason(unhex(t, "09 3430")); !strings.Contains(r, "malformed") {
		t.Fatalf("reason %q", r)
	}
}

func TestSwallower(t *testing.T) {
	// zmq4 writes its greeting, then READY header and body in separate calls.
	ready := appendCommand(nil, "READY", appendMetadata(nil, property{propSocketType, "ROUTER"}, property{propIdentity, strings.Repeat("x", 300)}))
	stream := append(appendGreeting(nil, "NULL", false), ready...)
	stream = append(stream, "after"...)
	for _, step := range []int{1, 2, 7, 64, 1000} {
		var s swallower
		s.greet = greetingLen
		var rest []byte
		for i := 0; i < len(stream); i += step {
			rest = append(rest, s.consume(stream[i:min(i+step, len(stream))])...)
		}
		if !s.done || string(rest) != "after" {
			t.Fatalf("step %d: done %v rest %q", step, s.done, rest)
		}
	}
}
