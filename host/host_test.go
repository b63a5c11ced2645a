package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSmokeSync(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	big := make([]byte, 3_500_000)
	rand.Read(big)
	writeFile(t, filepath.Join(pub, "hello.txt"), []byte("Hello, FileMQ!\n"))
	writeFile(t, filepath.Join(pub, "sub/b.bin"), []byte{0, 1, 2, 3, 0xfd, 0xfe, 0xff, 0x7f})
	writeFile(t, filepath.Join(pub, "sub/deep/big.bin"), big)
	writeFile(t, filepath.Join(pub, "empty"), nil)
	old := time.Now().Add(-time.Hour)
	filepath.Walk(pub, func(p string, _ os.FileInfo, _ error) error { os.Chtimes(p, old, old); return nil })

	var logs testutil.LockedBuffer
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := StartClient(ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	// The chunks of big.bin came in pooled buffers, each given back once
	// written and checked (the engine and the client's inbox are done).
	if st := cl.TransportStats(); st.Pooled < 3 || st.Recycled != st.Pooled {
		t.Errorf("%d chunk frames pooled, %d given back (want >= 3, all)", st.Pooled, st.Recycled)
	}
	for _, f := range []string{"hello.txt", "sub/b.bin", "sub/deep/big.bin", "empty"} {
		a, _ := os.ReadFile(filepath.Join(pub, f))
		b, err := os.ReadFile(filepath.Join(in, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: differs (err %v)", f, err)
		}
	}
	// The server's per-client accounting saw the whole session (the peer
	// value persists across inputs).
	want := fmt.Sprintf("files=4 bytes=%d", 15+8+len(big))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("server log lacks %q:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestResyncDeletesWhatWentAway(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"keep.txt", "gone.txt", "d/gone2.txt"} {
		writeFile(t, filepath.Join(pub, f), []byte("content of "+f))
		os.Chtimes(filepath.Join(pub, f), old, old)
	}
	syncOnce := func() *Client {
		srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cl, err := StartClient(ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cl.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		return cl
	}
	syncOnce()
	os.Remove(filepath.Join(pub, "gone.txt"))
	os.RemoveAll(filepath.Join(pub, "d"))
	cl := syncOnce()
	if n := cl.Stats().Deleted.Load(); n != 3 { // gone.txt, d/gone2.txt and the directory d
		t.Errorf("deleted %d files and directories, want 3", n)
	}
	if n := cl.Stats().Files.Load(); n != 0 {
		t.Errorf("second sync fetched %d files, want 0 (keep.txt is cached)", n)
	}
	for _, f := range []string{"gone.txt", "d/gone2.txt", "d"} {
		if _, err := os.Stat(filepath.Join(in, f)); !os.IsNotExist(err) {
			t.Errorf("%s still in the inbox (err %v)", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(in, "keep.txt")); err != nil {
		t.Error(err)
	}
}

// ZeroMQ-level PLAIN: the right login syncs, a wrong one fails at once
// with a clear error instead of redialing for ever.
func TestZMTPPlain(t *testing.T) {
	pub := t.TempDir()
	writeFile(t, filepath.Join(pub, "a.txt"), []byte("a"))
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "a.txt"), old, old)
	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0",
		Transport: transport.Options{PlainServer: transport.NewPasswords(map[string]string{"alice": "s3cret"})}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"s3cret", true}, {"wrong", false}} {
		in := t.TempDir()
		cl, err := StartClient(ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true,
			Transport: transport.Options{PlainClient: &transport.PlainCredentials{Username: "alice", Password: tc.pass}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = cl.Wait(ctx)
		cancel()
		cl.Close()
		_, statErr := os.Stat(filepath.Join(in, "a.txt"))
		if tc.ok && (err != nil || statErr != nil) {
			t.Errorf("password %q: err %v, file %v", tc.pass, err, statErr)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "authentication refused") || statErr == nil) {
			t.Errorf("password %q: err %v (want authentication refused), file present %v", tc.pass, err, statErr == nil)
		}
	}
}
