package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloadOnFileChange: a broken file is refused with its errors and the
// old machine keeps serving; a good one is loaded.
func TestReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../machines/nom_server.toml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "server.toml")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int)
	epFile := filepath.Join(dir, "ep")
	go func() {
		done <- runMain(ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"run", file, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile})
	}()
	waitFile(t, epFile)
	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(errb.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", want, errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the watcher start
	broken := strings.Replace(string(src), `"send OHAI-OK"`, `"send OHAI-OK", "dance"`, 1)
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("reload refused")
	waitLog(`unknown action \"dance\"`)
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("machine reloaded")
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
