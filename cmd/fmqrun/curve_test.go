package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServe runs `fmqrun serve` in-process on a free port with args and
// returns its endpoint; the server stops at the end of the test.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	return startServing(t, "serve", args...)
}

// startServing runs `fmqrun CMD` (serve or relay) in-process, bound to a
// free port, and returns its endpoint once it is serving; it is stopped
// (and must exit 0) at the end of the test.
func startServing(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	s := startCmd(t, cmd, args...)
	t.Cleanup(func() { // before startCmd's own cleanup, which only stops it
		if code := s.stop(); code != 0 {
			t.Errorf("%s exit %d: %s", cmd, code, s.stderr.String())
		}
	})
	return s.ep
}

func runSyncOnce(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	inbox := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	code := runMain(ctx, &Env{Stdout: &out, Stderr: &errb}, append([]string{"sync", "--once", "--progress", "never", "--inbox", inbox}, args...))
	return code, errb.String(), inbox
}

func TestServeSyncCurve(t *testing.T) {
	keys := t.TempDir()
	env := &Env{Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}}
	for _, n := range []string{"server", "alice", "mallory", "other"} {
		if code := runMain(context.Background(), env, []string{"keygen", filepath.Join(keys, n)}); code != 0 {
			t.Fatalf("keygen %s: %d", n, code)
		}
	}
	k := func(n string) string { return filepath.Join(keys, n) }
	alicePub, _ := os.ReadFile(k("alice.pub"))
	clients := filepath.Join(keys, "clients")
	os.WriteFile(clients, []byte("# allowed\n"+strings.TrimSpace(string(alicePub))+" alice\n"), 0o644)

	pub := t.TempDir()
	secret := strings.Repeat("the secret plans ", 5000)
	os.WriteFile(filepath.Join(pub, "plans.txt"), []byte(secret), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "plans.txt"), old, old)
	pwFile := filepath.Join(keys, "passwd")
	os.WriteFile(pwFile, []byte("alice:s3cret\n"), 0o600)
	alicePw := filepath.Join(keys, "alice.pw")
	os.WriteFile(alicePw, []byte("s3cret\n"), 0o600)
	ep := startServe(t, "--publish", pub, "--curve-secret-file", k("server.key"), "--curve-clients", clients, "--passwords", pwFile)

	t.Run("allowed", func(t *testing.T) {
		// the server key as a .pub file; FileMQ's login inside CURVE
		code, errs, inbox := runSyncOnce(t, "--connect", ep, "--curve-server-key", k("server.pub"), "--curve-secret-file", k("alice.key"), "--login", "alice", "--password-file", alicePw)
		if code != 0 {
			t.Fatalf("sync exit %d: %s", code, errs)
		}
		if b, err := os.ReadFile(filepath.Join(inbox, "plans.txt")); err != nil || string(b) != secret {
			t.Fatalf("plans.txt: %v", err)
		}
	})
	t.Run("relay", func(t *testing.T) {
		// upstream with alice's key, downstream its own CURVE server
		relayInbox := t.TempDir()
		relayEp := startServing(t, "relay", "--connect", ep, "--inbox", relayInbox, "--curve-server-key", k("server.pub"),
			"--curve-secret-file", k("alice.key"), "--login", "alice", "--password-file", alicePw,
			"--downstream-curve-secret-file", k("other.key"))
		// the relay publishes what it has: sync once it has the file, until
		// a sync brings it (bounded)
		waitFile(t, filepath.Join(relayInbox, "plans.txt"))
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, errs, inbox := runSyncOnce(t, "--connect", relayEp, "--curve-server-key", k("other.pub"))
			if code != 0 {
				t.Fatalf("sync from the relay: exit %d: %s", code, errs)
			}
			b, err := os.ReadFile(filepath.Join(inbox, "plans.txt"))
			if err == nil && string(b) == secret {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("plans.txt through the relay: %v", err)
			}
		}
		code, errs, _ := runSyncOnce(t, "--connect", relayEp, "--curve-server-key", k("server.pub"))
		if code == 0 || !strings.Contains(errs, "its public key?") {
			t.Fatalf("the relay's clients need the relay's key: exit %d: %s", code, errs)
		}
	})
	t.Run("unknown-client-key", func(t *testing.T) {
		serverPub, _ := os.ReadFile(k("server.pub"))
		code, errs, inbox := runSyncOnce(t, "--connect", ep, "--curve-server-key", strings.TrimSpace(string(serverPub)), "--curve-secret-file", k("mallory.key"))
		if code != exitRefused || !strings.Contains(errs, "authentication refused: 400") {
			t.Fatalf("exit %d, want %d (refused) with the refusal: %s", code, exitRefused, errs)
		}
		if ents, _ := os.ReadDir(inbox); len(ents) != 1 || ents[0].Name() != ".fmq-inbox" {
			t.Fatalf("inbox has %d entries, want only its marker", len(ents))
		}
	})
	t.Run("wrong-server-key", func(t *testing.T) {
		code, errs, _ := runSyncOnce(t, "--connect", ep, "--curve-server-key", k("other.pub"), "--curve-secret-file", k("alice.key"))
		if code != exitRefused || !strings.Contains(errs, "its public key?") {
			t.Fatalf("exit %d, want %d (refused) naming the server key: %s", code, exitRefused, errs)
		}
	})
}

func TestCurveFlagErrors(t *testing.T) {
	keys := t.TempDir()
	env := &Env{Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}}
	runMain(context.Background(), env, []string{"keygen", filepath.Join(keys, "s")})
	os.Chmod(filepath.Join(keys, "s.key"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--curve-secret-file", filepath.Join(keys, "s.key")}, "accessible by other users"},
		{[]string{"serve", "--curve-clients", filepath.Join(keys, "s.pub")}, "needs --curve-secret-file"},
		{[]string{"sync", "--connect", "tcp://127.0.0.1:1", "--inbox", keys, "--curve-server-key", "short"}, "--curve-server-key"},
		{[]string{"sync", "--connect", "tcp://127.0.0.1:1", "--inbox", keys, "--curve-server-key", filepath.Join(keys, "s.pub"), "--zmtp-login", "a"}, "cannot be combined"},
	} {
		var errb lockedBuffer
		if code := runMain(context.Background(), &Env{Stdout: &lockedBuffer{}, Stderr: &errb}, tc.args); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q: %s", tc.args, code, tc.want, errb.String())
		}
	}
	os.Chmod(filepath.Join(keys, "s.key"), 0o600)
	cfg := filepath.Join(keys, "fmq.toml")
	os.WriteFile(cfg, []byte("[server]\ncurve_secret_file = \""+filepath.Join(keys, "s.key")+"\"\nzmtp_passwords = \""+filepath.Join(keys, "s.pub")+"\"\n"), 0o644)
	var errb lockedBuffer
	if code := runMain(context.Background(), &Env{Stdout: &lockedBuffer{}, Stderr: &errb}, []string{"serve", "--config", cfg}); code != 2 {
		t.Errorf("config with both mechanisms: exit %d: %s", code, errb.String())
	}
}
