package main

import (
	"os"
	"runtime"
)

// procsFollower fits the client's GOMAXPROCS to what it receives. A stream
// of small files is serial work on the engine's goroutine (create, write,
// set times, rename: system calls, one file after the other), and with
// more than one P every frame's hand-over between the receiving goroutines
// and the engine wakes another thread: on 2 cores, 10,000 x 4 KiB files
// took 0.40 s and 0.41 CPU-s with 2 Ps, 0.36 s and 0.31 CPU-s with 1
// (bench/RESULTS.md, "Client per-file cost"). Large files keep every P:
// hashing and decryption overlap the writes. The follower looks at the
// files and bytes received since its last look: many files averaging under
// smallFile bytes take it to one P, bytes in larger files (or in a file
// still coming) back to all. GOMAXPROCS in the environment: left alone.
type procsFollower struct {
	full         int // GOMAXPROCS at the start
	one          bool
	files, bytes int64
	set          func(int) int // runtime.GOMAXPROCS (tests replace it)
}

const (
	procsEvery = 50e6     // ns between looks (a time.Duration)
	smallFile  = 64 << 10 // average received file size below which one P serves
	smallBurst = 20       // files since the last look, at least, to count as a stream
)

// newProcsFollower returns nil when there is nothing to fit: GOMAXPROCS
// set in the environment, or one P already.
func newProcsFollower() *procsFollower {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	full := runtime.GOMAXPROCS(0)
	if full <= 1 {
		return nil
	}
	return &procsFollower{full: full, set: runtime.GOMAXPROCS}
}

// update takes the client's counters (files finished, bytes received).
func (p *procsFollower) update(files, bytes int64) {
	if p == nil {
		return
	}
	df, db := files-p.files, bytes-p.bytes
	p.files, p.bytes = files, bytes
	switch {
	case df >= smallBurst && db/df < smallFile:
		if !p.one {
			p.set(1)
			p.one = true
		}
	case db > 0 && (df == 0 || db/df >= smallFile):
		if p.one {
			p.set(p.full)
			p.one = false
		}
	}
}

// stop gives back every P.
func (p *procsFollower) stop() {
	if p != nil && p.one {
		p.set(p.full)
		p.one = false
	}
}
