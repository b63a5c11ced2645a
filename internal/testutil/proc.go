package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builds holds the binaries Build made, one per package, for the life of
// the test process.
var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
}

// Build builds the main package pkg (an import path, or a directory
// relative to the test's package) with CGO_ENABLED=0 and without -race
// (for speed), once per test process, and returns the binary's path. Call
// RemoveBuilds from TestMain to delete them.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "fmq-test-bin")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.bins = dir, map[string]string{}
	}
	bin := filepath.Join(builds.dir, fmt.Sprintf("%d-%s", len(builds.bins), filepath.Base(pkg)))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds.bins[pkg] = bin
	return bin
}

// RemoveBuilds deletes what Build made.
func RemoveBuilds() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins = "", nil
	}
}

// Proc is a process a test runs, its output captured.
type Proc struct {
	Cmd            *exec.Cmd
	Stdout, Stderr LockedBuffer
	done           chan struct{}
	err            error // of Wait, once done is closed
}

// Start starts cmd with its output captured (unless the caller set
// Stdout/Stderr). The process is killed (SIGKILL) at test cleanup if it is
// still running.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL and waits (bounded) for the process to be gone.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil for exit 0), once it has ended.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Wait waits up to limit for the process to end and returns its exit
// error; past the limit it kills it and fails the test.
func (p *Proc) Wait(t testing.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.Kill()
		t.Fatalf("%v did not exit within %v; stderr:\n%s", p.Cmd.Args, limit, Tail(p.Stderr.String()))
	}
	return p.err
}

// WaitFile waits up to limit for the process to write a non-empty file
// (an endpoint it prints once ready) and returns its trimmed content. It
// fails the test if the process ends first.
func (p *Proc) WaitFile(t testing.TB, path string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
		if p.Exited() {
			t.Fatalf("%v exited before writing %s: %v\n%s", p.Cmd.Args, path, p.err, Tail(p.Stderr.String()))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: %s not written within %v:\n%s", p.Cmd.Args, path, limit, Tail(p.Stderr.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tail is the end of a long output (the last 4000 bytes).
func Tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
