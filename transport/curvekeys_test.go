package transport

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RFC 32's test vector.
func TestZ85Vector(t *testing.T) {
	raw := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	s, err := Z85Encode(raw)
	if err != nil || s != "HelloWorld" {
		t.Fatalf("encode: %q %v", s, err)
	}
	b, err := Z85Decode("HelloWorld")
	if err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("decode: %x %v", b, err)
	}
	for _, bad := range []string{"Hell", "Hello Worl", "#####"} {
		if _, err := Z85Decode(bad); err == nil {
			t.Errorf("Z85Decode(%q) accepted", bad)
		}
	}
	if _, err := Z85Encode([]byte{1, 2, 3}); err == nil {
		t.Error("Z85Encode of 3 bytes accepted")
	}
}

func FuzzZ85(f *testing.F) {
	f.Add([]byte("0123"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b)/4*4]
		s, err := Z85Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Z85Decode(s)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip %x -> %q -> %x %v", b, s, back, err)
		}
		Z85Decode(string(b)) // must not panic
	})
}

// libzmq's documented test key pair (zmq_curve(7)).
func TestCurveKeyPairFromSecretMatchesLibzmq(t *testing.T) {
	sec, err := ParseCurveKey("D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs")
	if err != nil {
		t.Fatal(err)
	}
	if got := CurveKeyPairFromSecret(sec).Public.String(); got != "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID" {
		t.Fatalf("public key %s", got)
	}
}

func TestWriteAndLoadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	kp, err := NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "srv")
	sec, pub, err := WriteCurveKeyPair(kp, base)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(sec); fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode %v", fi.Mode())
	}
	for _, p := range []string{sec, pub} {
		b, _ := os.ReadFile(p)
		if len(b) != 41 || b[40] != '\n' {
			t.Fatalf("%s: %q, want one line of 40 characters", p, b)
		}
	}
	got, err := LoadCurveSecretFile(sec)
	if err != nil || got != kp {
		t.Fatalf("load secret: %v %v", got, err)
	}
	if k, err := LoadCurvePublicKey(pub); err != nil || k != kp.Public {
		t.Fatalf("load public file: %v %v", k, err)
	}
	if k, err := LoadCurvePublicKey(kp.Public.String()); err != nil || k != kp.Public {
		t.Fatalf("load public text: %v %v", k, err)
	}
	if _, _, err := WriteCurveKeyPair(kp, base); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second write: %v", err)
	}
	os.Chmod(sec, 0o644)
	if _, err := LoadCurveSecretFile(sec); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("world-readable secret: %v", err)
	}
	os.Chmod(sec, 0o640)
	if _, err := LoadCurveSecretFile(sec); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("group-readable secret: %v", err)
	}
}

func TestCurveKeySetFile(t *testing.T) {
	a, _ := NewCurveKeyPair()
	b, _ := NewCurveKeyPair()
	text := "# allowed clients\n\n" + a.Public.String() + " laptop\n  " + b.Public.String() + "\n"
	s, err := ParseCurveKeySet(strings.NewReader(text), "clients")
	if err != nil || s.Len() != 2 || !s.Contains(a.Public) || !s.Contains(b.Public) {
		t.Fatalf("%v %v", s, err)
	}
	_, err = ParseCurveKeySet(strings.NewReader(a.Public.String()+"\nshort\n"+strings.Repeat(" ", 40)+"x\n"), "clients")
	if err == nil || !strings.Contains(err.Error(), "clients:2:") || !strings.Contains(err.Error(), "clients:3:") {
		t.Fatalf("bad lines: %v", err)
	}
}

// Keys we write are keys pyzmq reads: z85 round trip through libzmq.
func TestKeysInteropLibzmq(t *testing.T) {
	py := python(t)
	kp, _ := NewCurveKeyPair()
	out, err := exec.Command(py, "-c", "import sys, zmq; print(zmq.curve_public(sys.argv[1].encode()).decode())", kp.Secret.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != kp.Public.String() {
		t.Fatalf("libzmq derives %s from our secret, we %s", got, kp.Public)
	}
}
