package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/internal/testutil"
)

// Issue 11: "against the C server, --once never exits (it waits for a
// SYNCED marker the C server never sends)". A server that answers the
// subscriptions, sends what it has and then falls silent is done: --once
// ends, with a warning, and says so.
func TestOnceWithoutSyncedMarker(t *testing.T) {
	srv := startFakeServer(t, func(s *fakeSession) {
		s.file("/a.txt", []byte("alpha"), 2)
		s.file("/d/b.txt", []byte("beta"), 10)
		// no synced marker, as the C server
	})
	in := t.TempDir()
	var logs testutil.LockedBuffer
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Once: true, Quiet: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v\n%s", err, logs.String())
	}
	if !c.NoSyncedMarker() || !strings.Contains(logs.String(), "does not send the synced marker") {
		t.Errorf("no word about the missing marker:\n%s", logs.String())
	}
	for rel, want := range map[string]string{"a.txt": "alpha", "d/b.txt": "beta"} {
		if b, err := os.ReadFile(filepath.Join(in, rel)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", rel, b, err)
		}
	}
}

// Issue 11: "an out-of-sequence stream from a broken server logs 4.2
// million warnings (505 MB) in 22 s without disconnecting". The first
// sequence break ends the session; the client reconnects with a growing
// pause, logging once per session.
func TestOutOfSequenceEndsSession(t *testing.T) {
	srv := startFakeServer(t, func(s *fakeSession) {
		for range 2000 {
			s.seq = 5 // every chunk claims sequence 5
			s.chunk(1, "/x.bin", 0, false, nil, []byte("junk"))
		}
	})
	var logs testutil.LockedBuffer
	c := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	deadline := time.Now().Add(30 * time.Second)
	for srv.Sessions() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the client did not reconnect: %d sessions\n%s", srv.Sessions(), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	text := logs.String()
	violations := strings.Count(text, "protocol violation by the server")
	if violations == 0 || violations > 2*srv.Sessions()+2 {
		t.Errorf("%d protocol-violation lines for %d sessions", violations, srv.Sessions())
	}
	if len(text) > 64<<10 {
		t.Errorf("%d bytes of log for %d sessions", len(text), srv.Sessions())
	}
	if !strings.Contains(text, "reconnecting") || !strings.Contains(text, "in=500ms") {
		t.Errorf("no growing pause between sessions:\n%s", text)
	}
}
