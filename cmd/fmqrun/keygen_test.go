package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/transport"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "server")
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if code := runMain(context.Background(), env, []string{"keygen", base}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	kp, err := transport.LoadCurveSecretFile(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := transport.LoadCurvePublicKey(base + ".pub")
	if err != nil || pub != kp.Public {
		t.Fatalf("public %v %v, want %v", pub, err, kp.Public)
	}
	if !strings.Contains(out.String(), kp.Public.String()) {
		t.Errorf("output lacks the public key:\n%s", out.String())
	}
	before, _ := os.ReadFile(base + ".key")
	if code := runMain(context.Background(), env, []string{"keygen", base}); code != 1 {
		t.Fatalf("second keygen: exit %d", code)
	}
	if after, _ := os.ReadFile(base + ".key"); !bytes.Equal(before, after) {
		t.Fatal("existing secret key overwritten")
	}
	if code := runMain(context.Background(), env, []string{"keygen"}); code != 2 {
		t.Fatalf("no NAME: exit %d", code)
	}
}
