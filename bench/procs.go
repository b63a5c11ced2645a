//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// procRun is what one finished child process cost.
type procRun struct {
	Wall   time.Duration // from just before fork/exec to reaped
	MaxRSS int64         // peak resident set size in bytes (getrusage ru_maxrss)
	Stdout []byte
}

// maxRSS reads the peak RSS of a reaped child; Linux reports KiB.
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru != nil {
		return int64(ru.Maxrss) * 1024
	}
	return 0
}

// tailFile returns the end of a log file for error messages: the last
// three warning or error lines among its last 50 lines when there are any
// (servers and clients log plenty at info level), else its last lines, at
// most max bytes.
func tailFile(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 50 {
		lines = lines[len(lines)-50:]
	}
	var bad []string
	for _, l := range lines {
		u := strings.ToUpper(l)
		if strings.Contains(u, "WARN") || strings.Contains(u, "ERROR") || strings.Contains(u, "FATAL") || strings.Contains(u, "PANIC") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		lines = bad
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	out := strings.Join(lines, "\n")
	if len(out) > max {
		out = "..." + out[len(out)-max:]
	}
	return out
}

// procError is a child process that failed, with the end of its stderr.
type procError struct {
	Cmd    string
	Err    error
	Stderr string
}

func (e *procError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if e.Stderr != "" {
		s += ": " + strings.ReplaceAll(e.Stderr, "\n", " | ")
	}
	return s
}

func (e *procError) Unwrap() error { return e.Err }

// runProc runs a child to completion, timing it. Its stderr is appended to
// logPath; its stdout is returned. procRun.MaxRSS is only meaningful from
// runProcRSS (see rusage.go).
func runProc(ctx context.Context, timeout time.Duration, logPath, name string, args ...string) (procRun, error) {
	return runProcEnv(ctx, timeout, logPath, nil, name, args, name, args)
}

// runProcRSS is runProc through the launcher, so that MaxRSS is the child's
// own peak RSS. rssFile is a scratch file for the launcher's report.
func runProcRSS(ctx context.Context, timeout time.Duration, logPath, rssFile, name string, args ...string) (procRun, error) {
	self, largs, env, err := launcherArgs(rssFile, name, args)
	if err != nil {
		return procRun{}, err
	}
	_ = os.Remove(rssFile)
	r, err := runProcEnv(ctx, timeout, logPath, env, self, largs, name, args)
	rss, rerr := readRSSFile(rssFile)
	r.MaxRSS = rss
	if err == nil {
		err = rerr
	}
	return r, err
}

func runProcEnv(ctx context.Context, timeout time.Duration, logPath string, env []string, name string, args []string, shownName string, shownArgs []string) (procRun, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return procRun{}, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "+ %s %s\n", shownName, strings.Join(shownArgs, " "))
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = &stdout
	cmd.Stderr = logf
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	r := procRun{Wall: wall, MaxRSS: maxRSS(cmd.ProcessState), Stdout: stdout.Bytes()}
	addClientCPU(ctx, cmd.ProcessState)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return r, &procError{Cmd: filepath.Base(shownName) + " " + firstArgs(shownArgs), Err: err, Stderr: tailFile(logPath, 600)}
	}
	return r, nil
}

func firstArgs(args []string) string {
	if len(args) > 3 {
		return strings.Join(args[:3], " ") + " ..."
	}
	return strings.Join(args, " ")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// released before it is returned; the small race with other programs is
// accepted (the child then fails to bind and the error says so).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// bgProc is a long-running child (a server) that the harness stops itself.
type bgProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the child is reaped
	waitErr error
	rssFile string // set when started through the launcher
}

// startBg starts a server child. It is killed if ctx ends. With rssFile set
// it runs under the launcher and stop reports the child's own peak RSS.
// extraEnv is added to the child's environment.
func startBg(ctx context.Context, logPath, rssFile string, extraEnv []string, name string, args ...string) (*bgProc, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "+ %s %s\n", name, strings.Join(args, " "))
	shown := filepath.Base(name)
	env := extraEnv
	if rssFile != "" {
		self, largs, e, err := launcherArgs(rssFile, name, args)
		if err != nil {
			logf.Close()
			return nil, err
		}
		_ = os.Remove(rssFile)
		name, args, env = self, largs, append(e, extraEnv...)
	}
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	p := &bgProc{name: shown, cmd: cmd, logPath: logPath, done: make(chan struct{}), rssFile: rssFile}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-p.done:
		}
	}()
	return p, nil
}

// pid is the child's process id (the launcher's when it runs under one).
func (p *bgProc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has already ended.
func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// diedError describes a server that ended on its own.
func (p *bgProc) diedError() error {
	return &procError{Cmd: p.name, Err: fmt.Errorf("exited early: %v", p.waitErr), Stderr: tailFile(p.logPath, 600)}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs. It returns the
// child's peak RSS in bytes.
func (p *bgProc) stop(grace time.Duration) (int64, error) {
	var err error
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
			t.Stop()
		case <-t.C:
			_ = p.cmd.Process.Kill()
			<-p.done
			err = fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.name, grace)
		}
	}
	return p.peakRSS(), err
}

// peakRSS is the reaped child's peak RSS in bytes (0 if unknown).
func (p *bgProc) peakRSS() int64 {
	if p.rssFile != "" {
		n, _ := readRSSFile(p.rssFile)
		return n
	}
	return maxRSS(p.cmd.ProcessState)
}

// waitReady polls until ready returns true, the child dies, ctx ends or the
// timeout passes. Polling is only used for server start-up, never inside a
// timed measurement.
func (p *bgProc) waitReady(ctx context.Context, timeout time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if p.exited() {
			return p.diedError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (%s); log: %s", p.name, timeout, what, tailFile(p.logPath, 400))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// canDial reports whether something accepts TCP connections on addr.
func canDial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
