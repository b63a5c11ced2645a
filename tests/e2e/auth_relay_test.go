package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/publish"
)

// TestAuthentication: a server with a password file syncs a client with
// the right password; a wrong password or none ends the client with an
// error naming the refusal, and nothing is written to its inbox.
func TestAuthentication(t *testing.T) {
	pub := t.TempDir()
	writeFile(t, pub, "secret/plans.txt", []byte("top secret\n"))
	writeFile(t, pub, "readme", content(5, 200_000))
	want := treeSums(t, pub)
	pw := filepath.Join(t.TempDir(), "passwords")
	if err := os.WriteFile(pw, []byte("# logins\nalice:s3cret:with:colons\nbob:other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, pub, "", func(c *host.ServerConfig) { c.Passwords = pw })

	in := t.TempDir()
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true,
		Login: "alice", Password: "s3cret:with:colons"})
	waitClient(t, c, 30*time.Second, "right password")
	if d := diffSums(want, treeSums(t, in)); d != "" {
		t.Fatalf("right password: inbox differs: %s", d)
	}

	for _, tc := range []struct {
		name, login, password, mention string
	}{
		{"wrong password", "alice", "s3cret", "SRSLY"},
		{"unknown login", "mallory", "s3cret:with:colons", "SRSLY"},
		{"no credentials", "", "", "no credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := t.TempDir()
			c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true,
				Login: tc.login, Password: tc.password})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.Wait(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Wait = %v, want an error mentioning %s", err, tc.mention)
			}
			t.Logf("Wait: %v", err)
			c.Close()
			if got := listAll(t, in); len(got) != 1 || got[0] != inbox.MarkerFile {
				t.Errorf("inbox holds %v after a refused login, want only its marker", got)
			}
			if n := c.Sessions(); n != 1 {
				t.Errorf("%d sessions: a refused client must not retry", n)
			}
		})
	}
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRelayChain: server -> relay (a client mirroring into D plus a server
// publishing D) -> client. The tree arrives at the end of the chain, links
// as links and empty directories too, and a later change travels through it.
func TestRelayChain(t *testing.T) {
	pub, relayDir, in := t.TempDir(), t.TempDir(), t.TempDir()
	for i := range 30 {
		writeFile(t, pub, fmt.Sprintf("p%d/q%d/f%02d.dat", i%3, i%5, i), content(uint64(500+i), 1000*i))
	}
	writeBigFile(t, pub, "big/blob.bin", 9, 6<<20)
	if err := os.Symlink("big/blob.bin", filepath.Join(pub, "blob-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(pub, "empty", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	origin := startServer(t, pub, "")

	relayIn := startClient(t, host.ClientConfig{Connect: origin.Endpoint(), Inbox: relayDir})
	relayOut, err := host.StartServer(host.ServerConfig{
		Publish: []publish.Mount{{Dir: relayDir, Alias: "/"}},
		Bind:    "tcp://127.0.0.1:0",
		Settle:  100 * time.Millisecond, // the relay's files are new: short stability window
		Rescan:  500 * time.Millisecond,
		Logger:  testLogger(),
		// The relay republishes its inbox.
		PublishInboxes: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	closeRelayOut := closer(relayOut)
	t.Cleanup(func() { closeRelayOut() })
	end := startClient(t, host.ClientConfig{Connect: relayOut.Endpoint(), Inbox: in})

	want := func() map[string]string { return treeSums(t, pub) }
	waitTree(t, 60*time.Second, "relay directory", relayDir, want)
	waitTree(t, 60*time.Second, "end of the chain", in, want)
	for _, dir := range []string{relayDir, in} {
		eventually(t, 30*time.Second, "link and empty directory in "+dir, func() string {
			target, err := os.Readlink(filepath.Join(dir, "blob-link"))
			fi, derr := os.Lstat(filepath.Join(dir, "empty", "deeper"))
			if err != nil || target != "big/blob.bin" || derr != nil || !fi.IsDir() {
				return fmt.Sprintf("blob-link -> %q (%v), empty/deeper: %v", target, err, derr)
			}
			return ""
		})
	}

	// A change at the origin travels through the relay.
	writeFile(t, pub, "p0/added.txt", []byte("added after the first sync\n"))
	mustRemove(t, pub, "p1")
	mustRename(t, pub, "p2/q2/f02.dat", "moved.dat")
	waitTree(t, 30*time.Second, "end of the chain after changes", in, want)

	for name, c := range map[string]*host.Client{"relay": relayIn, "end": end} {
		if err := c.Err(); err != nil {
			t.Errorf("%s client: %v", name, err)
		}
		if st := c.Stats(); st.Problems.Load()+st.Refused.Load() != 0 {
			t.Errorf("%s client: problems %d, refused %d", name, st.Problems.Load(), st.Refused.Load())
		}
	}
	// The relay never republishes its partials or its digest cache.
	for _, e := range relayOut.Tree().Snapshot() {
		if strings.Contains(e.VPath, "/.") {
			t.Errorf("relay publishes hidden file %s", e.VPath)
		}
	}
}
