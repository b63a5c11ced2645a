package actions

import "testing"

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
