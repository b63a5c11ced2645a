package actions

import (
	"runtime"
	"testing"
)

// A read failure found when a file's turn comes is reported before the
// synced marker already queued: a client that leaves at the marker (sync
// --once) would otherwise never hear of it (the tests/faults flake of
// TestUnreadableFileReachesClient).
func TestErrorReportBeforeSyncedMarker(t *testing.T) {
	p := &FMQServerPeer{Errors: true}
	p.queue = []*job{{op: OpCreate, vpath: "/b"}, {op: OpSynced, vpath: "/", dead: true}, {op: OpSynced, vpath: "/"}, {op: OpCreate, vpath: "/c"}}
	p.queueError("/a", "the server cannot read it: permission denied")
	var got []uint8
	for _, j := range p.queue {
		got = append(got, j.op)
	}
	want := []uint8{OpCreate, OpSynced, OpError, OpSynced, OpCreate}
	if len(got) != len(want) {
		t.Fatalf("queue %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("queue %v, want %v", got, want)
		}
	}
	// With no marker queued it goes last; without ERRORS=1, nowhere.
	p.queue = []*job{{op: OpCreate, vpath: "/b"}}
	p.queueError("/a", "x")
	if len(p.queue) != 2 || p.queue[1].op != OpError {
		t.Fatalf("no marker: %d jobs", len(p.queue))
	}
	q := &FMQServerPeer{}
	if q.queueError("/a", "x"); len(q.queue) != 0 {
		t.Fatal("an error queued for a client that did not ask")
	}
}

// A chunk buffer handed over to a sender (Handover) goes back to the pool
// only when both its holders let go, the session and the sender, in either
// order; a slice that is no chunk buffer of the server is not taken.
func TestChunkHandover(t *testing.T) {
	s := NewFMQServer(nil, nil)
	lent := func(c *chunk) bool { _, ok := s.lent.Load(&c.b[:1][0]); return ok }
	for _, senderFirst := range []bool{false, true} {
		c := s.chunkBuf(1000)
		release := s.Handover(c.b[:700])
		if release == nil {
			t.Fatal("a lent chunk buffer was not taken")
		}
		if senderFirst {
			release()
		} else {
			s.putBuf(c)
		}
		if !lent(c) || c.refs.Load() != 1 {
			t.Fatalf("after one holder let go: lent %v, refs %d", lent(c), c.refs.Load())
		}
		if senderFirst {
			s.putBuf(c)
		} else {
			release()
		}
		if lent(c) || c.refs.Load() != 0 {
			t.Fatalf("after both let go: lent %v, refs %d", lent(c), c.refs.Load())
		}
	}
	if s.Handover(make([]byte, 10)) != nil || s.Handover(nil) != nil {
		t.Fatal("a slice that is no chunk buffer was taken")
	}
	empty := s.chunkBuf(0) // an empty file's eof chunk
	s.putBuf(empty)
	if lent(empty) {
		t.Fatal("an empty chunk stayed lent")
	}
}

// A transfer's chunk buffers survive garbage collections: the two kept
// idle come back (a sync.Pool alone gave a fresh 1 MB buffer after a
// collection, or when put back on another processor), more go to the pool,
// and a buffer handed over returns only when its last holder lets go.
func TestChunkBuffersKeptAcrossCollections(t *testing.T) {
	s := NewFMQServer(nil, nil)
	a, b, c := s.chunkBuf(1_000_000), s.chunkBuf(1_000_000), s.chunkBuf(1_000_000)
	release := s.Handover(a.b[:10])
	if release == nil {
		t.Fatal("Handover does not know a lent chunk buffer")
	}
	s.putBuf(a) // the session is done; the transport still holds it
	s.putBuf(b)
	s.putBuf(c)
	if len(s.free) != 2 || s.free[0] != b || s.free[1] != c {
		t.Fatalf("free list %p, want b %p and c %p (a is still handed over)", s.free, b, c)
	}
	release()
	if len(s.free) != 2 {
		t.Fatalf("%d idle buffers kept, want %d", len(s.free), keptChunks)
	}
	runtime.GC()
	runtime.GC()
	got := map[*chunk]bool{s.chunkBuf(500_000): true, s.chunkBuf(1_000_000): true}
	if !got[b] || !got[c] {
		t.Fatal("the kept chunk buffers did not come back after two collections")
	}
}
