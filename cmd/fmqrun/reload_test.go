package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
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

// TestReloadOnSIGHUP: SIGHUP reloads the machine file (with the file
// watcher off, so the signal is what triggers it).
func TestReloadOnSIGHUP(t *testing.T) {
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
	// Our own subscription keeps a SIGHUP that arrives before fmqrun's
	// handler is installed from terminating the test process.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)
	waitFile(t, epFile)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errb.String(), "why=SIGHUP") {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(errb.String(), "machine reloaded") {
		t.Fatalf("SIGHUP did not reload:\n%s", errb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
