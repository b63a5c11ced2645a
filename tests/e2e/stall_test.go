package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/transport"
)

// TestStalledClient: raw peers subscribe, grant credit and then never read
// again. Clients syncing at the same time finish in normal time, the server
// cuts the stalled peers (write queue overflow or write timeout) and stays
// healthy for clients that come later.
func TestStalledClient(t *testing.T) {
	pub := t.TempDir()
	for i := range 24 {
		writeFile(t, pub, fmt.Sprintf("d%d/f%02d.bin", i%3, i), content(uint64(300+i), 512<<10))
	}
	want := treeSums(t, pub)
	// A small write queue and write timeout make the server notice the
	// stalled peers within the test's time (the defaults are 32 MiB, 10 s).
	srv := startServer(t, pub, "", func(c *host.ServerConfig) {
		c.Transport = transport.Options{WriteQueue: 2 << 20, WriteTimeout: 2 * time.Second}
	})

	// Baseline: one client alone.
	start := time.Now()
	base := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: t.TempDir(), Once: true})
	waitClient(t, base, 30*time.Second, "baseline client")
	baseline := time.Since(start)

	// Stalled peers: one grants far more credit than the write queue and
	// the socket buffers hold (it overflows at once), one a little more
	// than the socket buffers take (the rest waits in the queue: the writes
	// stall until the write timeout, or it overflows too, depending on how
	// far the kernel grows the send buffer).
	greedy := rawDial(t, srv.Endpoint(), "stalled-greedy")
	greedy.subscribe("/")
	nom := filemq.NewNom()
	nom.Credit = 1 << 40
	greedy.send(nom)
	modest := rawDial(t, srv.Endpoint(), "stalled-modest")
	modest.subscribe("/")
	nom.Credit = 5 << 20
	modest.send(nom)

	// Normal clients while the stalled peers hold their sessions.
	start = time.Now()
	var wg sync.WaitGroup
	elapsed := make([]time.Duration, 3)
	inboxes := make([]string, 3)
	clients := make([]*host.Client, 3)
	for i := range clients {
		inboxes[i] = t.TempDir()
		clients[i] = startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: inboxes[i], Once: true})
	}
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-c.Done()
			elapsed[i] = time.Since(start)
		}()
	}
	for i, c := range clients {
		waitClient(t, c, 60*time.Second, fmt.Sprintf("client %d beside the stalled peers", i))
	}
	wg.Wait()
	for i, in := range inboxes {
		if d := diffSums(want, treeSums(t, in)); d != "" {
			t.Errorf("client %d: inbox differs: %s", i, d)
		}
	}
	t.Logf("baseline %v; with stalled peers: %v", baseline, elapsed)
	for i, e := range elapsed {
		// three clients at once against one alone: allow 3x plus slack
		if limit := 3*baseline + 5*time.Second; e > limit {
			t.Errorf("client %d took %v beside the stalled peers, over %v (baseline %v)", i, e, limit, baseline)
		}
	}

	// The server cuts the greedy peer at once. The modest one is cut by the
	// write timeout (or an overflow) when the socket buffers cannot take
	// its 5 MiB: certain when the kernel's send buffer is at most 4 MiB
	// (the Linux default); with larger buffers it may just idle.
	wantCuts := 1
	if m := sendBufferMax(); m > 0 && m <= 4<<20 {
		wantCuts = 2
	}
	eventually(t, 20*time.Second, "stalled peers cut", func() string {
		d := srv.Transport().Stats().Drops
		if int(d[transport.ReasonWriteOverflow]+d[transport.ReasonWriteTimeout]) < wantCuts {
			return fmt.Sprintf("want %d cut, drops %v, sessions %v", wantCuts, d, srv.Engine().Peers())
		}
		return ""
	})
	t.Logf("server drops: %v; sessions left: %v", srv.Transport().Stats().Drops, srv.Engine().Peers())

	// Still healthy: a later client syncs, and the engine is alive.
	late := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: t.TempDir(), Once: true})
	waitClient(t, late, 30*time.Second, "client after the stall")
	if err := srv.Err(); err != nil {
		t.Fatalf("server: %v", err)
	}
}

// sendBufferMax is the kernel's largest TCP send buffer (Linux), 0 if unknown.
func sendBufferMax() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0
	}
	n, _ := strconv.Atoi(f[2])
	return n
}
