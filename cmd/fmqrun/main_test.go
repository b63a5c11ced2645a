package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { testutil.RemoveBuilds() }))
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return ""
}

// TestNomEndToEndInProcess runs the nom server and client machines over
// ZeroMQ on 127.0.0.1 in this process.
func TestNomEndToEndInProcess(t *testing.T) {
	srv := startCmd(t, "run", "../../machines/nom_server.toml", "--wire", "--no-reload")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cliOut, cliErr lockedBuffer
	code := runMain(ctx, &Env{Stdout: &cliOut, Stderr: &cliErr}, []string{"run", "../../machines/nom_client.toml",
		"--connect", srv.ep, "--set", "pieces=4", "--set", "nickname=grace", "--wire"})
	if code != 0 {
		t.Fatalf("client exit %d\nstdout:\n%s\nstderr:\n%s", code, cliOut.String(), cliErr.String())
	}
	out := cliOut.String()
	for _, want := range []string{
		`C: OHAI protocol="NOM" version=1 nickname="grace"`,
		"S: OHAI-OK",
		`C: ICANHAZ what="/cheezburger" toppings=["cheese"] options={"pieces"="4"}`,
		"S: CHEEZBURGER serial=3 digest=<4 bytes> body=<",
		"notify - piece 3 /cheezburger #3 (1 toppings)",
		"notify - full eating",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("client output lacks %q:\n%s", want, out)
		}
	}
	eventually(t, "the server's notification for grace", srv.stderr, func() bool { return strings.Contains(srv.stdout.String(), "served grace") })
	if code := srv.stop(); code != 0 {
		t.Errorf("server exit %d: %s", code, srv.stderr.String())
	}
	so := srv.stdout.String()
	for _, want := range []string{`C: OHAI protocol="NOM" version=1 nickname="grace"`, "notify ", "served grace: /cheezburger x4"} {
		if !strings.Contains(so, want) {
			t.Errorf("server output lacks %q:\n%s", want, so)
		}
	}
}

func TestCheckAndGraphInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if code := runMain(context.Background(), env, []string{"check", "../../machines/nom_server.toml", "../../machines/nom_client.toml"}); code != 0 {
		t.Fatalf("check: %d %s", code, errb.String())
	}
	bad, _ := filepath.Glob("../../interp/testdata/bad/*.toml")
	errb.Reset()
	if code := runMain(context.Background(), env, append([]string{"check"}, bad...)); code != 1 {
		t.Fatalf("check of bad files: exit %d", code)
	}
	if n := strings.Count(errb.String(), "\n"); n < len(bad) {
		t.Errorf("check printed %d error lines for %d bad files", n, len(bad))
	}
	out.Reset()
	if code := runMain(context.Background(), env, []string{"graph", "../../machines/nom_server.toml", "--format", "mermaid"}); code != 0 {
		t.Fatal(errb.String())
	}
	want, err := os.ReadFile("../../interp/testdata/graph/nom_server.mmd")
	if err != nil || out.String() != string(want) {
		t.Errorf("graph output differs from the golden file (%v)", err)
	}
	if code := runMain(context.Background(), env, []string{"graph", "x.toml", "--format", "png"}); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
	if code := runMain(context.Background(), env, []string{"nope"}); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// TestBinary builds fmqrun and runs the nom machines as two processes.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := testutil.Build(t, ".")
	if out, err := exec.Command(bin, "check", "../../interp/testdata/bad/guard_field.toml").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "guard_field.toml:8:39: guard: type OHAI message has no field age") {
		t.Errorf("check of a bad file: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	epFile := filepath.Join(dir, "ep")
	srv := exec.CommandContext(ctx, bin, "run", "../../machines/nom_server.toml", "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile, "--no-reload")
	var srvOut lockedBuffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	ep := waitFile(t, epFile)
	cli := exec.CommandContext(ctx, bin, "run", "../../machines/nom_client.toml", "--connect", ep, "--set", "pieces=2")
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s\nserver:\n%s", err, out, srvOut.String())
	}
	if !strings.Contains(string(out), "notify - piece 1 /cheezburger #1 (1 toppings)") || !strings.Contains(string(out), "notify - full") {
		t.Errorf("client output:\n%s", out)
	}
}

// lockedBuffer is the shared test buffer, under this package's old name.
type lockedBuffer = testutil.LockedBuffer

// runServerInProcess starts `fmqrun run MACHINE --bind` on a free port
// with extra flags and returns its endpoint, its stdout and stderr, and
// the channel its exit code arrives on (when ctx ends).
func runServerInProcess(t *testing.T, ctx context.Context, machine string, extra ...string) (string, *lockedBuffer, *lockedBuffer, chan int) {
	t.Helper()
	epFile := filepath.Join(t.TempDir(), "ep")
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int)
	args := append([]string{"run", machine, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile, "--no-reload"}, extra...)
	go func() { done <- runMain(ctx, &Env{Stdout: out, Stderr: errOut}, args) }()
	return waitFile(t, epFile), out, errOut, done
}

// TestNomManySessionsInARow runs 200 nom clients one after the other
// against one `fmqrun run` server: with the one hosting pump, a departed
// client's last frame never reaches a fresh session, so none is refused.
func TestNomManySessionsInARow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ep, srvOut, srvErr, srvDone := runServerInProcess(t, ctx, "../../machines/nom_server.toml")
	const sessions = 200
	for i := 0; i < sessions; i++ {
		var cliOut, cliErr lockedBuffer
		code := runMain(ctx, &Env{Stdout: &cliOut, Stderr: &cliErr}, []string{"run", "../../machines/nom_client.toml",
			"--connect", ep, "--set", "pieces=1"})
		if code != 0 || !strings.Contains(cliOut.String(), "notify - full eating") {
			t.Fatalf("session %d: client exit %d\nstdout:\n%s\nstderr:\n%s", i, code, cliOut.String(), cliErr.String())
		}
		if strings.Contains(cliOut.String(), "WTF") {
			t.Fatalf("session %d refused:\n%s", i, cliOut.String())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(srvOut.String(), "served ") < sessions && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-srvDone; code != 0 {
		t.Errorf("server exit %d: %s", code, srvErr.String())
	}
	if n := strings.Count(srvOut.String(), "served "); n != sessions {
		t.Errorf("server served %d sessions, want %d", n, sessions)
	}
	if strings.Contains(srvErr.String(), "refus") || strings.Contains(srvOut.String(), "refus") {
		t.Errorf("a session was refused:\n%s\n%s", srvOut.String(), srvErr.String())
	}
}

// TestLastFrameBeforeDeparture: each client sends one last frame and
// closes its connection at once. The frame and the departure reach the
// server's engine in the transport's order (one hosting pump), so the
// frame always lands in the client's own session, never in a fresh one
// (which would answer WTF).
func TestLastFrameBeforeDeparture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ep, srvOut, srvErr, srvDone := runServerInProcess(t, ctx, "testdata/bye_server.toml", "--wire")
	const sessions = 100
	for i := 0; i < sessions; i++ {
		var cliOut, cliErr lockedBuffer
		if code := runMain(ctx, &Env{Stdout: &cliOut, Stderr: &cliErr}, []string{"run", "testdata/bye_client.toml",
			"--connect", ep}); code != 0 {
			t.Fatalf("session %d: client exit %d\nstderr:\n%s", i, code, cliErr.String())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(srvOut.String(), "C: HUGZ-OK") < sessions && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-srvDone; code != 0 {
		t.Errorf("server exit %d: %s", code, srvErr.String())
	}
	out := srvOut.String()
	if n := strings.Count(out, "C: HUGZ-OK"); n != sessions {
		t.Errorf("server saw %d last frames, want %d", n, sessions)
	}
	if n := strings.Count(out, "S: WTF"); n != 0 {
		t.Errorf("%d of %d last frames reached a fresh session (answered WTF)", n, sessions)
	}
}
