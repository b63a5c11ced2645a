package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/publish"
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

	srv, err := StartServer(ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0"})
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
	for _, f := range []string{"hello.txt", "sub/b.bin", "sub/deep/big.bin", "empty"} {
		a, _ := os.ReadFile(filepath.Join(pub, f))
		b, err := os.ReadFile(filepath.Join(in, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: differs (err %v)", f, err)
		}
	}
}
