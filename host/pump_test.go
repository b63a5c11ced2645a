package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

// The client runs the hosting pump per connection: a proxy cuts the first
// connections while chunks are in flight (the client machine is held on
// its first chunk until the cut, so the connection's last frames are still
// queued when the loss is known), the client redials, and the sync ends
// complete. No frame of an old connection reaches the new session: after
// every OHAI the first server message is that session's OHAI-OK.
func TestClientReconnectNeverMixesConnections(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour)
	for i := range 3 {
		data := make([]byte, 1<<20)
		rand.Read(data)
		p := filepath.Join(pub, fmt.Sprintf("f%d.bin", i))
		writeFile(t, p, data)
		os.Chtimes(p, old, old)
	}
	srv := startTestServer(t, pub, map[string]string{"chunk_size": "16384"})
	defer srv.Close()

	const cuts, limit = 3, 400_000
	cut := make([]chan struct{}, cuts+1)
	for i := range cut {
		cut[i] = make(chan struct{})
	}
	var conns atomic.Int32
	down := func(dst io.Writer, src io.Reader) {
		k := int(conns.Add(1))
		if k > cuts {
			io.Copy(dst, src)
			return
		}
		io.CopyN(dst, src, limit)
		dst.(net.Conn).Close() // the client's side: cut mid-stream
		close(cut[k])
	}
	proxy := testutil.StartProxy(t, srv.Endpoint(), nil, down)

	var mu sync.Mutex
	var lines []string
	session, held := 0, 0
	wire := func(line string) { // on the client engine's goroutine
		mu.Lock()
		lines = append(lines, line)
		if strings.HasPrefix(line, "C: OHAI ") {
			session++
		}
		k := session
		hold := strings.HasPrefix(line, "S: CHEEZBURGER") && k <= cuts && held < k
		if hold {
			held = k
		}
		mu.Unlock()
		if hold {
			select {
			case <-cut[k]:
			case <-time.After(20 * time.Second):
				t.Errorf("connection %d was never cut", k)
			}
		}
	}
	cl, err := StartClient(ClientConfig{Connect: proxy.Endpoint, Inbox: in, Once: true, Wire: wire,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = cl.Wait(ctx)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := cl.Sessions(); n < cuts+1 {
		t.Errorf("%d sessions, want at least %d (one per cut connection and the last)", n, cuts+1)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, l := range lines {
		if !strings.HasPrefix(l, "C: OHAI ") {
			continue
		}
		for _, next := range lines[i+1:] {
			if strings.HasPrefix(next, "S: ") {
				if !strings.HasPrefix(next, "S: OHAI-OK") {
					t.Errorf("after OHAI #%d the client handled %q: a frame of the previous connection reached the new session", countOhai(lines[:i+1]), next)
				}
				break
			}
		}
	}
	for i := range 3 {
		name := fmt.Sprintf("f%d.bin", i)
		a, _ := os.ReadFile(filepath.Join(pub, name))
		b, err := os.ReadFile(filepath.Join(in, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs (err %v)", name, err)
		}
	}
}

func countOhai(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "C: OHAI ") {
			n++
		}
	}
	return n
}
