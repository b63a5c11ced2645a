package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/transport"
)

// fakeServer is a scripted FileMQ server built by hand on transport.Listen:
// it opens peerings and acknowledges subscriptions like a real server, and
// on a session's first NOM sends whatever script sends.
type fakeServer struct {
	t        testing.TB
	r        *transport.Router
	script   func(s *fakeSession)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions int
}

// fakeSession is one client session of a fakeServer.
type fakeSession struct {
	srv  *fakeServer
	peer string
	seq  uint64
	subs []*filemq.Icanhaz
}

func startFakeServer(t testing.TB, script func(s *fakeSession)) *fakeServer {
	t.Helper()
	r, err := transport.Listen("tcp://127.0.0.1:0", transport.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeServer{t: t, r: r, script: script, cancel: cancel}
	f.wg.Add(1)
	go f.serve(ctx)
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) Endpoint() string { return f.r.Endpoint() }

func (f *fakeServer) close() {
	f.cancel()
	f.r.Close()
	f.wg.Wait()
}

func (f *fakeServer) Sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions
}

func (f *fakeServer) serve(ctx context.Context) {
	defer f.wg.Done()
	sessions := map[string]*fakeSession{}
	for {
		select {
		case <-ctx.Done():
			return
		case peer := <-f.r.Gone():
			delete(sessions, peer)
		case msg, ok := <-f.r.Recv():
			if !ok {
				return
			}
			m, err := filemq.Decode(msg.Body, nil)
			if err != nil {
				continue
			}
			s := sessions[msg.Peer]
			switch m := m.(type) {
			case *filemq.Ohai:
				s = &fakeSession{srv: f, peer: msg.Peer}
				sessions[msg.Peer] = s
				f.mu.Lock()
				f.sessions++
				f.mu.Unlock()
				s.send(filemq.NewOhaiOk())
			case *filemq.Icanhaz:
				if s != nil {
					s.subs = append(s.subs, m)
					s.send(filemq.NewIcanhazOk())
				}
			case *filemq.Nom:
				if s != nil && s.seq == 0 {
					f.script(s)
				}
			case *filemq.Hugz:
				if s != nil {
					s.send(filemq.NewHugzOk())
				}
			}
		}
	}
}

func (s *fakeSession) send(m codec.Message) {
	b, err := m.Append(nil)
	if err != nil {
		s.srv.t.Errorf("fake server: encode %s: %v", m.Info().Name, err)
		return
	}
	if err := s.srv.r.Send(s.peer, b); err != nil {
		s.srv.t.Logf("fake server: send %s: %v", m.Info().Name, err)
	}
}

// chunk sends one CHEEZBURGER.
func (s *fakeSession) chunk(op uint8, name string, off int64, eof bool, hdr map[string]string, data []byte) {
	m := filemq.NewCheezburger()
	m.Sequence, m.Operation, m.Filename, m.Offset = s.seq, op, name, uint64(off)
	if eof {
		m.EOF = 1
	}
	m.Headers, m.Chunk = hdr, data
	s.seq++
	s.send(m)
}

// file sends a whole file in pieces of at most n bytes, SIZE and SHA1 on
// the last (INLINE-EOF style).
func (s *fakeSession) file(name string, data []byte, n int) {
	sum := sha1.Sum(data)
	hdr := map[string]string{"SIZE": strconv.Itoa(len(data)), "SHA1": strings.ToUpper(hex.EncodeToString(sum[:]))}
	if len(data) == 0 {
		s.chunk(1, name, 0, true, hdr, nil)
		return
	}
	for off := 0; off < len(data); off += n {
		end := min(off+n, len(data))
		last := end == len(data)
		var h map[string]string
		if last {
			h = hdr
		}
		s.chunk(1, name, int64(off), last, h, data[off:end])
	}
}

// synced sends the synced marker for every subscription.
func (s *fakeSession) synced() {
	for _, sub := range s.subs {
		s.chunk(3, sub.Path, 0, true, nil, nil)
	}
}
