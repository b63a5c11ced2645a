package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConformCommand(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass.txtar")
	os.WriteFile(pass, []byte("C: OHAI protocol=FILEMQ version=2\nS: OHAI-OK\n"), 0o644)
	fail := filepath.Join(dir, "fail.txtar")
	os.WriteFile(fail, []byte("C: OHAI protocol=FILEMQ version=2\nS: RTFM within 300ms\n"), 0o644)
	bad := filepath.Join(dir, "bad.txtar")
	os.WriteFile(bad, []byte("C: NOPE\n"), 0o644)

	var out, errb lockedBuffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if code := runMain(context.Background(), env, []string{"conform", pass}); code != 0 {
		t.Fatalf("pass: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "1 passed, 0 failed") {
		t.Errorf("summary: %s", out.String())
	}
	out = lockedBuffer{}
	if code := runMain(context.Background(), env, []string{"conform", pass, fail, bad}); code != 1 {
		t.Fatalf("fail: exit %d", code)
	}
	for _, w := range []string{"fail.txtar:2: want S: RTFM within 300ms; got S: OHAI-OK", "bad.txtar:1:4:", "1 passed, 2 failed"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("missing %q in:\n%s", w, out.String())
		}
	}
	if code := runMain(context.Background(), env, []string{"conform"}); code != 2 {
		t.Errorf("no scripts: exit %d", code)
	}
}

func TestScriptCommand(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.txt")
	os.WriteFile(trace, []byte("C: OHAI protocol=\"FILEMQ\" version=2\nS: OHAI-OK\nnotify - x\n"), 0o644)
	outFile := filepath.Join(dir, "s.txtar")
	var out, errb lockedBuffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if code := runMain(context.Background(), env, []string{"script", trace, "-o", outFile}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// the converted trace replays against our server
	out = lockedBuffer{}
	if code := runMain(context.Background(), env, []string{"conform", outFile}); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, out.String())
	}
}
