package faults

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
)

// startServer runs an in-process server publishing pub as "/".
func startServer(t testing.TB, pub string, settings map[string]string) *host.Server {
	t.Helper()
	return startServerWire(t, pub, settings, nil)
}

// startServerWire is startServer with a wire hook (ServerConfig.Wire).
func startServerWire(t testing.TB, pub string, settings map[string]string, wire func(string)) *host.Server {
	t.Helper()
	srv, err := host.StartServer(host.ServerConfig{
		Publish:  []publish.Mount{{Dir: pub, Alias: "/"}},
		Bind:     "tcp://127.0.0.1:0",
		Settings: settings,
		Settle:   50 * time.Millisecond,
		Logger:   quiet,
		Wire:     wire,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return srv
}

// sendGate holds the server before it sends the CHEEZBURGER that would
// take what it sent since arm past the limit, until disarm: a client
// cannot run past a kill point, however fast the machine.
type sendGate struct {
	mu      sync.Mutex
	armed   bool
	sent    int64
	limit   int64
	held    chan struct{} // gets a value when the server holds
	release chan struct{}
}

var chunkLen = regexp.MustCompile(`chunk=<(\d+) bytes>`)

func (g *sendGate) arm(limit int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.sent, g.limit = true, 0, limit
	g.held, g.release = make(chan struct{}, 1), make(chan struct{})
}

func (g *sendGate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.armed {
		g.armed = false
		close(g.release)
	}
}

// wire is the server's wire hook (called before each send).
func (g *sendGate) wire(line string) {
	if !strings.HasPrefix(line, "S: CHEEZBURGER ") {
		return
	}
	m := chunkLen.FindStringSubmatch(line)
	if m == nil {
		return
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	g.mu.Lock()
	if !g.armed {
		g.mu.Unlock()
		return
	}
	hold := g.sent+max(n, 1) >= g.limit
	g.sent += n
	held, release := g.held, g.release
	g.mu.Unlock()
	if hold {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	}
}

// killPoint is the inbox as a SIGKILL left it.
type killPoint struct {
	n        int
	mode     string // "bytes>=N" or "after D"
	complete int64  // bytes in complete files
	partial  int64  // bytes in partial files
	files    int
	snap     string // copy of the inbox
}

// TestKillClientMidSync kills fmqrun sync with SIGKILL at 20 seeded points
// of a multi-file sync and restarts it each time. At every kill point each
// visible file must be absent or byte-identical to the published one, and
// each partial a prefix of it; while the client runs, no visible file may
// have another size than the published one. The run after the last kill
// must complete the tree and transfer exactly what was missing, resuming
// the partials. Each kill point's inbox is also copied and completed on its
// own, so that "transfers what was missing" is checked after every kill.
func TestKillClientMidSync(t *testing.T) {
	const (
		seed  = 0xfa17
		kills = 20
	)
	pub := t.TempDir()
	tr := makeTree(t, pub, seed, 12, 100_000, 1_200_000)
	total := tr.total()
	gate := &sendGate{}
	srv := startServerWire(t, pub, map[string]string{"chunk_size": "16384"}, gate.wire)
	defer gate.disarm()
	ep := srv.Endpoint()
	work := t.TempDir()
	in := filepath.Join(work, "inbox")
	throttle := []string{"--set", "window=65536", "--set", "slice=16384"}

	rng := rand.New(rand.NewPCG(seed, 1))
	fracs := make([]float64, kills)
	for i := range fracs {
		fracs[i] = 0.02 + 0.93*rng.Float64()
	}
	sort.Float64s(fracs)

	t0 := time.Now()
	var points []killPoint
	for k := range kills {
		st, err := scanInbox(in)
		if err != nil && k > 0 {
			t.Fatal(err)
		}
		before := st.completeSum + st.partialSum
		kp := killPoint{n: k + 1}
		target := max(int64(fracs[k]*float64(total)), before+1)
		var delay time.Duration
		if k%5 == 0 {
			// Every fifth point is a short delay after start: during
			// startup, the handshake and the resync against the cache.
			delay = time.Duration(rng.IntN(25)) * time.Millisecond
			kp.mode = fmt.Sprintf("after %v", delay)
		} else {
			kp.mode = fmt.Sprintf("bytes>=%d", target)
		}
		// The server holds at the chunk that reaches the target (in delay
		// mode, at the first chunk: the client lives until the delay).
		if delay > 0 || k%5 == 0 {
			gate.arm(1)
		} else {
			gate.arm(target - before)
		}
		p := start(t, syncArgs(ep, in, throttle...)...)
		began := time.Now()
		deadline := began.Add(60 * time.Second)
		for {
			if p.Exited() {
				t.Fatalf("kill point %d (%s): the client finished first (%v); stderr:\n%s", kp.n, kp.mode, p.Err(), tail(p.Stderr.String()))
			}
			st, err := scanInbox(in)
			if err == nil {
				for rel, size := range st.complete {
					if want, ok := tr[rel]; !ok || int64(len(want)) != size {
						t.Errorf("while syncing: visible %q has %d bytes, published %d", rel, size, len(want))
					}
				}
			}
			if delay > 0 || k%5 == 0 {
				if time.Since(began) >= delay {
					break
				}
			} else if len(gate.held) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill point %d (%s): no progress within 60s (at %d bytes); stderr:\n%s", kp.n, kp.mode, st.completeSum+st.partialSum, tail(p.Stderr.String()))
			}
			time.Sleep(200 * time.Microsecond)
		}
		p.Kill()
		gate.disarm()
		st = checkInbox(t, in, tr)
		kp.complete, kp.partial, kp.files = st.completeSum, st.partialSum, len(st.complete)
		kp.snap = filepath.Join(work, fmt.Sprintf("snap%02d", kp.n))
		copyDir(t, in, kp.snap)
		points = append(points, kp)
		t.Logf("kill %2d %-16s files %2d/%d  complete %s  partial %s  missing %s", kp.n, kp.mode, kp.files, len(tr),
			fmtBytes(kp.complete), fmtBytes(kp.partial), fmtBytes(total-kp.complete-kp.partial))
		if t.Failed() {
			t.FailNow()
		}
	}
	killPhase := time.Since(t0)

	// The run after the last kill completes the tree; so does a run from
	// each kill point's copy. Each must transfer exactly what was missing
	// and resume exactly the partials.
	t1 := time.Now()
	finish := func(t *testing.T, inbox string, kp killPoint, extra ...string) {
		p := start(t, syncArgs(ep, inbox, extra...)...)
		s, err := p.wait(t, 90*time.Second)
		if err != nil {
			t.Fatalf("sync after kill %d: %v\n%s", kp.n, err, tail(p.Stderr.String()))
		}
		missing := total - kp.complete - kp.partial
		if s.Bytes != missing || s.ResumedBytes != kp.partial || s.Problems != 0 {
			t.Errorf("after kill %d: transferred %d bytes, resumed %d, problems %d; missing was %d, partials held %d",
				kp.n, s.Bytes, s.ResumedBytes, s.Problems, missing, kp.partial)
		}
		sameTree(t, inbox, tr)
	}
	t.Run("last", func(t *testing.T) { finish(t, in, points[len(points)-1], throttle...) })
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, kp := range points[:len(points)-1] {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("from-kill-%02d", kp.n), func(t *testing.T) { finish(t, kp.snap, kp) })
		}()
	}
	wg.Wait()
	t.Logf("%d kills over %s in %v; %d completions (exact bytes, exact resume) in %v",
		kills, fmtBytes(total), killPhase.Round(time.Millisecond), len(points), time.Since(t1).Round(time.Millisecond))
}
