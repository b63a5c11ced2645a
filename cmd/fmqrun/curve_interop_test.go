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

func TestInteropCurveSyncFromLibzmqServer(t *testing.T) {
	py := testutil.PythonZMQ(t)
	kp, _ := transport.NewCurveKeyPair()
	data := bytes.Repeat([]byte("from libzmq "), 30000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/filemq_curve.py", "server", kp.Secret.String(), "/hello.txt")
	cmd.Stdin = bytes.NewReader(data)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		cmd.Process.Kill()
		for range lines {
		}
		cmd.Wait()
	}()
	var ep string
	select {
	case l := <-lines:
		var ok bool
		if ep, ok = strings.CutPrefix(l, "ENDPOINT "); !ok {
			t.Fatalf("python server said %q; stderr %s", l, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("python server did not start")
	}
	code, errs, inbox := runSyncOnce(t, "--connect", ep, "--curve-server-key", kp.Public.String())
	if code != 0 {
		t.Fatalf("sync exit %d: %s\npython: %s", code, errs, stderr.String())
	}
	if got, err := os.ReadFile(filepath.Join(inbox, "hello.txt")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("hello.txt: %v (%d bytes, want %d)", err, len(got), len(data))
	}
	select {
	case l := <-lines:
		if l != "BYE" {
			t.Fatalf("python server: %q, want BYE (our KTHXBAI)", l)
		}
	case <-ctx.Done():
		t.Fatal("python server saw no KTHXBAI")
	}
}
