package main

import "testing"

// The follower takes the client to one P for a stream of small files and
// back to all of them for large ones; idle looks change nothing, and stop
// gives every P back.
func TestProcsFollower(t *testing.T) {
	cur := 4
	var calls []int
	p := &procsFollower{full: 4, set: func(n int) int { old := cur; cur = n; calls = append(calls, n); return old }}
	steps := []struct {
		files, bytes int64
		want         int
	}{
		{0, 0, 4},                                         // nothing yet
		{10, 10 * 4096, 4},                                // too few files to call it a stream
		{100, 100 * 4096, 1},                              // 90 small files: one P
		{200, 200 * 4096, 1},                              // still small
		{200, 200 * 4096, 1},                              // idle: no change
		{200, 200*4096 + 8<<20, 4},                        // a large file coming (no file finished): all Ps
		{230, 200*4096 + 8<<20 + 30*(1<<20), 4},           // 30 files of 1 MiB: large, all Ps
		{330, 200*4096 + 8<<20 + 30*(1<<20) + 100*100, 1}, // 100 tiny files
	}
	for i, s := range steps {
		p.update(s.files, s.bytes)
		if cur != s.want {
			t.Fatalf("step %d (%d files, %d bytes): GOMAXPROCS %d, want %d", i, s.files, s.bytes, cur, s.want)
		}
	}
	p.stop()
	if cur != 4 {
		t.Fatalf("after stop: GOMAXPROCS %d, want 4", cur)
	}
	if want := []int{1, 4, 1, 4}; len(calls) != len(want) {
		t.Fatalf("set calls %v, want %v (only on a change)", calls, want)
	}
	var nilp *procsFollower
	nilp.update(1, 2) // no follower (GOMAXPROCS in the environment): nothing happens
	nilp.stop()
}
