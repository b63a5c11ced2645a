package faults

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/publish"
)

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Issue 11: "an interrupted sync --once (SIGINT, SIGTERM) exits 0". It
// exits 3, its summary says "interrupted", and the partial file is kept.
func TestInterruptedOnceExitCode(t *testing.T) {
	pub := t.TempDir()
	makeTree(t, pub, 0x1117, 1, 8<<20, 8<<20)
	srv, err := host.StartServer(host.ServerConfig{
		Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Settings: map[string]string{"chunk_size": "8192"}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			in := t.TempDir()
			p := start(t, syncArgs(srv.Endpoint(), in, "--set", "window=16384", "--set", "slice=8192")...)
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, err := scanInbox(in)
				if err == nil && st.partialSum > 0 {
					break
				}
				if p.Exited() || time.Now().After(deadline) {
					t.Fatalf("no transfer under way (exited %v):\n%s", p.Exited(), tail(p.Stderr.String()))
				}
				time.Sleep(5 * time.Millisecond)
			}
			p.Cmd.Process.Signal(sig)
			s, err := p.wait(t, 30*time.Second)
			if code := exitCode(err); code != 3 {
				t.Fatalf("exit %d (%v), want 3:\n%s", code, err, tail(p.Stderr.String()))
			}
			if !strings.Contains(p.Stdout.String(), `"status":"interrupted"`) || s.Files != 0 {
				t.Errorf("summary %s", p.Stdout.String())
			}
			if st, _ := scanInbox(in); st.partialSum == 0 {
				t.Error("partial file not kept")
			}
		})
	}
}

// Issue 11: "files the server cannot read (permission denied) are only
// logged on the server, and the client reports 0 problems". The client is
// told, per file; the sync is partial (exit 1). As root, the server runs
// as nobody so that a file can be unreadable to it.
func TestUnreadableFileReachesClient(t *testing.T) {
	bin := fmqrunBinary(t)
	base := t.TempDir()
	pub, in, run := filepath.Join(base, "pub"), filepath.Join(base, "in"), filepath.Join(base, "run")
	for _, d := range []string{pub, in, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(pub, "ok.txt"), []byte("readable"), 0o644)
	os.WriteFile(filepath.Join(pub, "secret.txt"), []byte("unreadable"), 0o000)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "ok.txt"), old, old)
	os.Chtimes(filepath.Join(pub, "secret.txt"), old, old)
	epFile := filepath.Join(run, "ep")
	cmd := exec.Command(bin, "serve", "--publish", pub, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile)
	if os.Getuid() == 0 {
		for _, d := range []string{filepath.Dir(base), base, filepath.Dir(bin)} {
			os.Chmod(d, 0o755)
		}
		os.Chmod(run, 0o777)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	srv := testutil.Start(t, cmd)
	defer srv.Kill()
	ep := srv.WaitFile(t, epFile, 15*time.Second)
	p := start(t, syncArgs(ep, in)...)
	s, err := p.wait(t, 30*time.Second)
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d, want 1 (partial):\n%s\n%s\nserver:\n%s", code, p.Stdout.String(), tail(p.Stderr.String()), tail(srv.Stderr.String()))
	}
	if s.Files != 1 || !strings.Contains(p.Stdout.String(), `"server_errors":1`) ||
		!strings.Contains(p.Stdout.String(), "secret.txt") || !strings.Contains(p.Stdout.String(), "permission denied") {
		t.Errorf("summary: %s", p.Stdout.String())
	}
	if _, err := os.Stat(filepath.Join(in, "secret.txt")); err == nil {
		t.Error("secret.txt installed")
	}
	// The server's log reaches us through a pipe, behind the client's exit:
	// wait for the line (bounded).
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srv.Stderr.String(), "secret.txt"); {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log the unreadable file:\n%s", tail(srv.Stderr.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
