//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Peak RSS of a child cannot be read straight from the harness: Go starts
// children with vfork (CLONE_VM), and Linux carries the pre-exec address
// space's high-water mark into the child's ru_maxrss, so every child would
// report at least the harness's own peak (data generation and hashing take
// well over 100 MiB). Children whose peak RSS matters are therefore started
// through a launcher: this same binary re-executed with launcherEnv set. The
// launcher is a small fresh process; it starts the target, forwards SIGTERM
// and SIGINT to it, and writes the target's ru_maxrss to the file named by
// launcherEnv. What it reports is max(launcher's own peak, target's peak);
// the launcher's floor is measured and printed in the notes.

// launcherEnv names the environment variable that turns this binary into the
// launcher; its value is the file to write the peak RSS (bytes) to.
const launcherEnv = "FMQ_BENCH_RUSAGE_FILE"

// maybeLauncher runs the launcher and exits if this process is one.
func maybeLauncher() {
	out := os.Getenv(launcherEnv)
	if out == "" {
		return
	}
	os.Exit(launcherMain(out, os.Args[1:]))
}

func launcherMain(out string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench launcher: no command")
		return 2
	}
	// Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = withoutEnv(os.Environ(), launcherEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench launcher:", err)
		return 127
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err = <-waited:
			break wait
		}
	}
	if werr := os.WriteFile(out, []byte(strconv.FormatInt(maxRSS(cmd.ProcessState), 10)), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "bench launcher:", werr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "bench launcher:", err)
		return 127
	}
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// launcherArgs wraps name/args so that they run under the launcher writing
// to rssFile. It returns the program to exec and its arguments plus the
// environment entries to add.
func launcherArgs(rssFile, name string, args []string) (string, []string, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, nil, fmt.Errorf("launcher: %w", err)
	}
	// GORACE only matters when the harness itself is a -race test binary,
	// whose runtime otherwise sleeps a second at exit.
	return self, append([]string{name}, args...), []string{launcherEnv + "=" + rssFile, "GORACE=atexit_sleep_ms=0"}, nil
}

// readRSSFile reads the launcher's report.
func readRSSFile(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("launcher wrote no peak RSS: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("launcher peak RSS %q: %w", b, err)
	}
	return n, nil
}
