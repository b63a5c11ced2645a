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
	file, src, errb, stop := startRunServer(t)
	// startRunServer returned: the endpoint file is written, which fmqrun
	// does once its file watcher is installed.
	broken := strings.Replace(string(src), `"send OHAI-OK"`, `"send OHAI-OK", "dance"`, 1)
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, errb, "reload refused")
	waitLog(t, errb, `unknown action \"dance\"`)
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, errb, "machine reloaded")
	if code := stop(); code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// TestReloadOnSIGHUP: SIGHUP reloads the machine file (the file does not
// change, so the signal is what triggers it).
func TestReloadOnSIGHUP(t *testing.T) {
	// Our own subscription keeps a SIGHUP that arrives before fmqrun's
	// handler is installed from terminating the test process.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)
	_, _, errb, stop := startRunServer(t)
	// The endpoint file is written once fmqrun's SIGHUP handler is installed.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, errb, "why=SIGHUP")
	if !strings.Contains(errb.String(), "machine reloaded") {
		t.Fatalf("SIGHUP did not reload:\n%s", errb.String())
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// startRunServer copies nom_server.toml into a temp dir and runs
// `fmqrun run FILE --bind` on it until the returned stop is called; stop
// returns the exit status.
func startRunServer(t *testing.T) (file string, src []byte, errb *lockedBuffer, stop func() int) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile("../../machines/nom_server.toml")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "server.toml")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel) // a failed test still stops the server
	var out lockedBuffer
	errb = &lockedBuffer{}
	done := make(chan int)
	epFile := filepath.Join(dir, "ep")
	go func() {
		done <- runMain(ctx, &Env{Stdout: &out, Stderr: errb}, []string{"run", file, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile})
	}()
	waitFile(t, epFile)
	return file, src, errb, func() int { cancel(); return <-done }
}

// waitLog waits until the log holds want (bounded: 30s).
func waitLog(t *testing.T, errb *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
