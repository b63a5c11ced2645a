package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

// summary is fmqrun sync --json's line.
type summary struct {
	Files        int64  `json:"files"`
	Deleted      int64  `json:"deleted"`
	Bytes        int64  `json:"bytes"`
	ResumedBytes int64  `json:"resumed_bytes"`
	Problems     int64  `json:"problems"`
	Refused      int64  `json:"refused"`
	Sessions     int    `json:"sessions"`
	ElapsedMS    int64  `json:"elapsed_ms"`
	Error        string `json:"error"`
}

// proc is a running fmqrun.
type proc struct {
	cmd    *exec.Cmd
	stdout testutil.LockedBuffer
	stderr testutil.LockedBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
}

// start runs fmqrun with args. The process is killed (SIGKILL) at test
// cleanup if it is still running.
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(fmqrunBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start fmqrun %v: %v", args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone (bounded).
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits (bounded) for the process to exit and parses its --json line.
func (p *proc) wait(t testing.TB, limit time.Duration) (summary, error) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
		t.Fatalf("fmqrun %v did not exit within %v; stderr:\n%s", p.cmd.Args[1:], limit, tail(p.stderr.String()))
	}
	var s summary
	line := strings.TrimSpace(p.stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if line != "" {
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("fmqrun --json printed %q: %v", line, err)
		}
	}
	return s, p.err
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// syncArgs are the arguments of a throttled fmqrun sync --once --json.
func syncArgs(endpoint, inbox string, extra ...string) []string {
	args := []string{"sync", "--connect", endpoint, "--inbox", inbox, "--once", "--json",
		"--progress", "never", "--log-level", "warn"}
	return append(args, extra...)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServeProc runs fmqrun serve on a fixed endpoint and waits until it
// serves (it writes its endpoint to a file then).
func startServeProc(t testing.TB, pub, endpoint string, extra ...string) *proc {
	t.Helper()
	epFile := filepath.Join(t.TempDir(), "endpoint")
	args := append([]string{"serve", "--publish", pub, "--bind", endpoint, "--print-endpoint", epFile,
		"--log-level", "warn"}, extra...)
	p := start(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if b, err := os.ReadFile(epFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return p
		}
		if p.exited() {
			t.Fatalf("fmqrun serve exited: %v\n%s", p.err, tail(p.stderr.String()))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fmqrun serve not ready within 15s:\n%s", tail(p.stderr.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}
