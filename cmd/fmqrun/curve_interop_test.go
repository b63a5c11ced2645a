package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/transport"
)

// FILEMQ over CURVE with libzmq (pyzmq, testdata/filemq_curve.py) on the
// other side: a libzmq DEALER syncing from `fmqrun serve`, and `fmqrun
// sync` mirroring from a libzmq ROUTER.

func TestInteropCurveLibzmqClientToServe(t *testing.T) {
	py := testutil.PythonZMQ(t)
	keys := t.TempDir()
	kp, _ := transport.NewCurveKeyPair()
	if _, _, err := transport.WriteCurveKeyPair(kp, filepath.Join(keys, "server")); err != nil {
		t.Fatal(err)
	}
	pub := t.TempDir()
	data := bytes.Repeat([]byte("confidential "), 40000)
	os.WriteFile(filepath.Join(pub, "report.txt"), data, 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "report.txt"), old, old)
	ep := startServe(t, "--publish", pub, "--curve-secret-file", filepath.Join(keys, "server.key"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/filemq_curve.py", "client", ep, kp.Public.String()).Output()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	sum := sha1.Sum(data)
	want := fmt.Sprintf("FILE /report.txt %d %s\nSYNCED\n", len(data), hex.EncodeToString(sum[:]))
	if string(out) != want {
		t.Fatalf("python client printed\n%s\nwant\n%s", out, want)
	}
}

// pyServer is testdata/filemq_curve.py running as a server (mode "server"
// or "c-server"), sending data under each name.
type pyServer struct {
	ep     string
	lines  chan string // what it prints after its endpoint
	stderr *testutil.LockedBuffer
}

func startPyServer(t *testing.T, ctx context.Context, kp transport.CurveKeyPair, mode string, data []byte, names ...string) *pyServer {
	t.Helper()
	py := testutil.PythonZMQ(t)
	cmd := exec.CommandContext(ctx, py, append([]string{"testdata/filemq_curve.py", mode, kp.Secret.String()}, names...)...)
	cmd.Stdin = bytes.NewReader(data)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ps := &pyServer{lines: make(chan string, 10), stderr: &testutil.LockedBuffer{}}
	cmd.Stderr = ps.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(ps.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ps.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range ps.lines {
		}
		cmd.Wait()
	})
	select {
	case l := <-ps.lines:
		var ok bool
		if ps.ep, ok = strings.CutPrefix(l, "ENDPOINT "); !ok {
			t.Fatalf("python server said %q; stderr %s", l, ps.stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("python server did not start")
	}
	return ps
}

func TestInteropCurveSyncFromLibzmqServer(t *testing.T) {
	kp, _ := transport.NewCurveKeyPair()
	data := bytes.Repeat([]byte("from libzmq "), 30000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps := startPyServer(t, ctx, kp, "server", data, "/hello.txt")
	code, errs, inbox := runSyncOnce(t, "--connect", ps.ep, "--curve-server-key", kp.Public.String())
	if code != 0 {
		t.Fatalf("sync exit %d: %s\npython: %s", code, errs, ps.stderr.String())
	}
	if got, err := os.ReadFile(filepath.Join(inbox, "hello.txt")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("hello.txt: %v (%d bytes, want %d)", err, len(got), len(data))
	}
	select {
	case l := <-ps.lines:
		if l != "BYE" {
			t.Fatalf("python server: %q, want BYE (our KTHXBAI)", l)
		}
	case <-ctx.Done():
		t.Fatal("python server saw no KTHXBAI")
	}
}

// Issue 11: "against the C server, --once never exits (it waits for a
// SYNCED marker the C server never sends)", and "refused files exit 0
// although --help promises 1". A libzmq server that behaves as the C
// reference (no synced marker, C-style file ends, no headers) and sends
// one good file and one unsafe name: --once ends once the server is
// quiet, with a warning, the good file installed, the unsafe one refused
// and nothing outside the inbox; exit 1 (partial), as the summary says.
func TestOnceAgainstCStyleLibzmqServer(t *testing.T) {
	kp, _ := transport.NewCurveKeyPair()
	data := bytes.Repeat([]byte("c style "), 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ps := startPyServer(t, ctx, kp, "c-server", data, "/hello.txt", "/../escape.txt")
	base := t.TempDir()
	in := filepath.Join(base, "in")
	code, sum, errs := syncOnce(t, "--connect", ps.ep, "--curve-server-key", kp.Public.String(), "--inbox", in)
	if code != exitPartial || sum.Status != "partial" || sum.Files != 1 || sum.Refused != 1 || !sum.NoSynced {
		t.Fatalf("exit %d, %+v\n%s\npython: %s", code, sum, errs, ps.stderr.String())
	}
	if !strings.Contains(errs, "does not send the synced marker") || !strings.Contains(strings.Join(sum.Messages, "\n"), "escape.txt") {
		t.Errorf("no warning about the marker, or no word about the refused name:\n%s\n%q", errs, sum.Messages)
	}
	if got, err := os.ReadFile(filepath.Join(in, "hello.txt")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("hello.txt: %v (%d bytes, want %d)", err, len(got), len(data))
	}
	if _, err := os.Stat(filepath.Join(base, "escape.txt")); err == nil {
		t.Fatal("a file was written outside the inbox")
	}
}

// Issue 11: "a --timeout for --once". A server that answers the
// subscription but never sends anything (a C-style libzmq server with
// nothing to send takes 15 s to be taken as done): --timeout ends --once
// first, with exit 6 and status "timeout".
func TestOnceTimeout(t *testing.T) {
	kp, _ := transport.NewCurveKeyPair()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ps := startPyServer(t, ctx, kp, "c-server", nil)
	start := time.Now()
	code, sum, errs := syncOnce(t, "--connect", ps.ep, "--curve-server-key", kp.Public.String(), "--inbox", t.TempDir(), "--timeout", "1s")
	if code != exitTimeout || sum.Status != "timeout" {
		t.Fatalf("exit %d, %+v\n%s\npython: %s", code, sum, errs, ps.stderr.String())
	}
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("--timeout 1s took %v", el)
	}
}
