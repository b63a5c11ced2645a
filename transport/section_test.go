package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sectionFile writes n stamped bytes to a new file and opens it.
func sectionFile(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	content := stamped(7, 7, n)
	path := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, content
}

// readFrame reads one single-frame message from a raw peer.
func (p *rawPeer) readFrame(t *testing.T) []byte {
	t.Helper()
	flags, err := p.br.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	var size uint64
	if flags&flagLong != 0 {
		var b [8]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			t.Fatal(err)
		}
		size = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := p.br.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		size = uint64(b)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(p.br, body); err != nil {
		t.Fatal(err)
	}
	return body
}

// releaseCounter counts the releases of each of n sends.
type releaseCounter struct {
	mu sync.Mutex
	n  []int
}

func (rc *releaseCounter) fn(i int) func() {
	return func() {
		rc.mu.Lock()
		rc.n[i]++
		rc.mu.Unlock()
	}
}

// wait fails unless every send is released exactly once within d.
func (rc *releaseCounter) wait(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; runtime.Gosched() {
		rc.mu.Lock()
		missing := -1
		for i, k := range rc.n {
			if k > 1 {
				rc.mu.Unlock()
				t.Fatalf("send %d released %d times", i, k)
			}
			if k == 0 && missing < 0 {
				missing = i
			}
		}
		rc.mu.Unlock()
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("send %d never released", missing)
		}
	}
}

// TestSendSection: file sections interleaved with byte messages (Send,
// SendSplit, SendSplitOwned) reach the peer in order, each message whole
// and byte-exact, while the peer reads nothing at first (sections wait in
// the queue behind bytes and bytes behind sections); each section is
// released exactly once, after it was written.
func TestSendSection(t *testing.T) {
	r := listen(t, Options{WriteQueue: 64 << 20})
	p := knownPeer(t, r, "p")
	f, content := sectionFile(t, 3<<20)
	type span struct{ off, n int64 }
	spans := []span{{0, 1 << 20}, {1 << 20, 1}, {5, 0}, {(1 << 20) + 1, 300 << 10}, {3<<20 - 1000, 1000}, {100, smallWrite}}
	const n = 40
	rc := &releaseCounter{n: make([]int, n)}
	var want [][]byte
	for i := 0; i < n; i++ {
		head := []byte(fmt.Sprintf("head %d:", i))
		var err error
		switch i % 4 {
		case 0, 2:
			s := spans[(i/2)%len(spans)]
			want = append(want, append(append([]byte(nil), head...), content[s.off:s.off+s.n]...))
			err = r.SendSection("p", head, Section{File: f, Off: s.off, N: s.n, Release: rc.fn(i)})
		case 1:
			b := stamped(i, i, 200<<10)
			want = append(want, b)
			err = r.Send("p", b)
			rc.fn(i)()
		case 3:
			tail := stamped(i, i, 600<<10)
			want = append(want, append(append([]byte(nil), head...), tail...))
			err = r.SendSplitOwned("p", head, tail, rc.fn(i))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if r.Queued("p") == 0 {
		t.Error("nothing queued although the peer reads nothing")
	}
	p.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := 0; i < n; i++ {
		if body := p.readFrame(t); !bytes.Equal(body, want[i]) {
			t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(body), len(want[i]))
		}
	}
	rc.wait(t, 10*time.Second)
	if q := r.Queued("p"); q != 0 {
		t.Errorf("%d bytes still counted as queued after every message arrived", q)
	}
	if st := r.Stats(); st.Sections != n/2 || st.SectionsShort != 0 {
		t.Errorf("stats: %d sections (%d short), want %d (0)", st.Sections, st.SectionsShort, n/2)
	}
}

// A file that is shorter than its section when the section is written
// (truncated after it was queued) gives zeros in its place: the frame
// stays whole and the next message follows intact.
func TestSendSectionShortFile(t *testing.T) {
	r := listen(t, Options{WriteQueue: 64 << 20})
	p := knownPeer(t, r, "p")
	f, content := sectionFile(t, 1<<20)
	// Something the peer does not read yet, so that the section waits.
	if err := r.Send("p", make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	rc := &releaseCounter{n: make([]int, 1)}
	if err := r.SendSection("p", []byte("h"), Section{File: f, Off: 0, N: 1 << 20, Release: rc.fn(0)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.Name(), 1000); err != nil {
		t.Fatal(err)
	}
	if err := r.Send("p", []byte("after")); err != nil {
		t.Fatal(err)
	}
	p.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b := p.readFrame(t); len(b) != 8<<20 {
		t.Fatalf("first message of %d bytes", len(b))
	}
	body := p.readFrame(t)
	if len(body) != 1+1<<20 || body[0] != 'h' {
		t.Fatalf("section message of %d bytes", len(body))
	}
	// What the file still held (some prefix of its 1000 bytes), then zeros.
	k := 0
	for k < 1000 && body[1+k] == content[k] {
		k++
	}
	if rest := body[1+k:]; !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Fatalf("the section is not the file's first %d bytes followed by zeros", k)
	}
	if b := p.readFrame(t); string(b) != "after" {
		t.Fatalf("next message %q", b)
	}
	rc.wait(t, 10*time.Second)
	if st := r.Stats(); st.Sections != 1 || st.SectionsShort != 1 {
		t.Errorf("stats: %d sections (%d short), want 1 (1)", st.Sections, st.SectionsShort)
	}
}

// Sections still queued when the connection is cut are released, each
// once, and their files can be closed; a section refused (unknown or cut
// peer, closed router) is released too.
func TestSendSectionReleasedOnCut(t *testing.T) {
	r := listen(t, Options{WriteQueue: 64 << 20})
	knownPeer(t, r, "cut")
	f, _ := sectionFile(t, 1<<20)
	var released atomic.Int64
	sent := 0
	for ; r.Queued("cut") < 8<<20; sent++ {
		if sent == 200 {
			t.Fatalf("queue at %d bytes after %d sends", r.Queued("cut"), sent)
		}
		once := new(atomic.Int32)
		if err := r.SendSection("cut", []byte("h"), Section{File: f, N: 1 << 20, Release: func() {
			if once.Add(1) > 1 {
				t.Error("a section released twice")
			}
			released.Add(1)
		}}); err != nil {
			t.Fatal(err)
		}
	}
	r.Disconnect("cut")
	for deadline := time.Now().Add(10 * time.Second); released.Load() < int64(sent); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sections released after the cut", released.Load(), sent)
		}
	}
	for _, peer := range []string{"cut", "nobody"} {
		if err := r.SendSection(peer, []byte("h"), Section{File: f, N: 10, Release: func() { released.Add(1) }}); err == nil {
			t.Fatalf("a section sent to %q", peer)
		}
	}
	r.Close()
	if err := r.SendSection("cut", []byte("h"), Section{File: f, N: 10, Release: func() { released.Add(1) }}); err == nil {
		t.Fatal("a section sent on a closed router")
	}
	if got := released.Load(); got != int64(sent)+3 {
		t.Fatalf("%d releases, want %d", got, sent+3)
	}
}

// Under CURVE a section is read and boxed like any other message.
func TestSendSectionCurve(t *testing.T) {
	srvKeys, cliKeys := curvePair(t)
	r := listen(t, Options{CurveServer: &CurveServer{Keys: srvKeys}})
	d := dial(t, r.Endpoint(), Options{Identity: "c", CurveClient: &CurveClient{ServerKey: srvKeys.Public, Keys: cliKeys}})
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	recvMsg(t, r.Recv(), 5*time.Second)
	f, content := sectionFile(t, 2<<20)
	rc := &releaseCounter{n: make([]int, 3)}
	for i := 0; i < 3; i++ {
		if err := r.SendSection("c", []byte{byte(i)}, Section{File: f, Off: int64(i) * 1000, N: 1 << 20, Release: rc.fn(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		m := recvMsg(t, d.Recv(), 10*time.Second)
		want := append([]byte{byte(i)}, content[i*1000:i*1000+1<<20]...)
		if !bytes.Equal(m.Body, want) {
			t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(m.Body), len(want))
		}
	}
	rc.wait(t, 10*time.Second)
	if st := r.Stats(); st.Sections != 0 {
		t.Errorf("%d sections sent from the file under CURVE", st.Sections)
	}
}
