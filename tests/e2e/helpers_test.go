// Package e2e holds the end-to-end tests of the FileMQ server and client:
// real host.Server and host.Client instances (and hand-driven raw peers)
// talking ZeroMQ over 127.0.0.1, checked on the files they leave on disk.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger discards logs unless FMQ_TEST_LOG is set (then: stderr,
// debug level with FMQ_TEST_LOG=debug).
func testLogger() *slog.Logger {
	switch os.Getenv("FMQ_TEST_LOG") {
	case "":
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	case "debug":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	default:
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// past is the modification time given to fixture files so that the
// publisher's settle window accepts them at once.
var past = time.Now().Add(-time.Hour)

// content returns n pseudo-random bytes from a seeded ChaCha8 (fast, and
// different seeds give different files).
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'f', 'm', 'q'})
	r.Read(b)
	return b
}

// writeFile writes a fixture file (parents created), dated in the past.
func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
}

// writeBigFile writes size pseudo-random bytes to root/rel in pieces (no
// whole-file buffer), dated in the past.
func writeBigFile(t testing.TB, root, rel string, seed uint64, size int64) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{byte(seed), 'b', 'i', 'g'})
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
}

// hidden reports whether a slash path has an element starting with "."
// (partials, the digest cache: never part of a mirrored tree).
func hidden(rel string) bool {
	for _, e := range strings.Split(rel, "/") {
		if strings.HasPrefix(e, ".") {
			return true
		}
	}
	return false
}

// treeSums maps every visible regular file under root (slash path relative
// to root) to its SHA-256.
func treeSums(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking a live tree
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if hidden(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return out
}

// subset keeps the entries of sums whose path ("/" + rel) is under one of
// the virtual prefixes.
func subset(sums map[string]string, prefixes ...string) map[string]string {
	out := map[string]string{}
	for rel, s := range sums {
		for _, p := range prefixes {
			if publish.Matches(p, "/"+rel) {
				out[rel] = s
				break
			}
		}
	}
	return out
}

// diffSums describes how got differs from want ("" when equal): missing,
// unexpected and different files, a few of each.
func diffSums(want, got map[string]string) string {
	var missing, extra, differ []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != w:
			differ = append(differ, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra)+len(differ) == 0 {
		return ""
	}
	show := func(name string, l []string) string {
		if len(l) == 0 {
			return ""
		}
		sort.Strings(l)
		more := ""
		if len(l) > 8 {
			more = fmt.Sprintf(" (+%d more)", len(l)-8)
			l = l[:8]
		}
		return fmt.Sprintf(" %s %d: %v%s;", name, len(l), l, more)
	}
	return fmt.Sprintf("want %d files, got %d;", len(want), len(got)) +
		show("missing", missing) + show("unexpected", extra) + show("different", differ)
}

// eventually polls cond until it returns "" (converged) or the timeout
// passes; then it fails the test with the last difference.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		d := cond()
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v: %s", what, timeout, d)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// waitTree waits until the visible files under dir are exactly want.
func waitTree(t testing.TB, timeout time.Duration, what, dir string, want func() map[string]string) {
	t.Helper()
	eventually(t, timeout, what, func() string { return diffSums(want(), treeSums(t, dir)) })
}

// serverOpt adjusts a ServerConfig before start.
type serverOpt func(*host.ServerConfig)

func withSettings(kv ...string) serverOpt {
	return func(c *host.ServerConfig) {
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Settings[kv[i]] = kv[i+1]
		}
	}
}

// startServer publishes dir as "/" on 127.0.0.1 (bind "" = a free port)
// with short settle and rescan periods; Close is registered as cleanup.
func startServer(t testing.TB, dir, bind string, opts ...serverOpt) *host.Server {
	t.Helper()
	if bind == "" {
		bind = "tcp://127.0.0.1:0"
	}
	cfg := host.ServerConfig{
		Publish: []publish.Mount{{Dir: dir, Alias: "/"}},
		Bind:    bind,
		Settle:  100 * time.Millisecond,
		Rescan:  500 * time.Millisecond,
		Logger:  testLogger(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := host.StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { s.Close() }) })
	return s
}

// startClient starts a client; Close is registered as cleanup (a second
// Close by the test is harmless).
func startClient(t testing.TB, cfg host.ClientConfig) *host.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	c, err := host.StartClient(cfg)
	if err != nil {
		t.Fatalf("StartClient: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { c.Close() }) })
	return c
}

// closer wraps a Close so a test may close early and cleanup again.
func closer(c interface{ Close() error }) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = c.Close() })
		return err
	}
}

// waitClient waits for a --once client to finish and fails on its error.
func waitClient(t testing.TB, c *host.Client, timeout time.Duration, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		st := c.Stats()
		t.Fatalf("%s: Wait: %v (files %d, bytes %d, problems %d, refused %d, sessions %d)",
			what, err, st.Files.Load(), st.Bytes.Load(), st.Problems.Load(), st.Refused.Load(), c.Sessions())
	}
}

// waitSynced waits for a continuous client's first complete sync.
func waitSynced(t testing.TB, c *host.Client, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-c.Synced():
	case <-time.After(timeout):
		st := c.Stats()
		t.Fatalf("%s: not synced after %v (files %d, bytes %d, problems %d, sessions %d, err %v)",
			what, timeout, st.Files.Load(), st.Bytes.Load(), st.Problems.Load(), c.Sessions(), c.Err())
	}
}
