package publish

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fmq/fmq/inbox"
)

// coalesceWindow is how long events are collected before the affected
// directories are rescanned.
func (t *Tree) coalesceWindow() time.Duration {
	d := t.settle / 4
	if d < 5*time.Millisecond {
		d = 5 * time.Millisecond
	}
	if d > 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	return d
}

// Watch follows changes to the published directories until ctx is done, calling
// fn with each batch of changes (sorted by virtual path; never empty). It
// watches every directory with fsnotify (new directories are added as they
// appear), rescans everything every Options.Rescan as a safety net, and reports
// a new or modified file only once it has been stable for Options.Settle. A
// rename is reported as Deleted(old) + Created(new); deleting a directory
// reports every published file under it as Deleted. A name found that
// cannot be published (a link leading out, a name no client can store) is
// reported once, as Reported with its reason. The published index is
// updated before fn is called, so fn may call Snapshot, Digest or Open.
//
// Watch blocks: run it in its own goroutine. It returns nil once ctx is done,
// after everything it started has stopped; ErrClosed if the Tree is closed; or
// an error if it cannot start (ErrWatching if another Watch runs, or an
// fsnotify failure).
// Changes made between New (or the last Rescan) and Watch are reported by
// Watch's first pass. fn runs on the watcher goroutine: a slow fn delays the
// next batch (changes are coalesced meanwhile) but loses nothing.
func (t *Tree) Watch(ctx context.Context, fn func([]Change)) error {
	if fn == nil {
		return errors.New("publish: Watch needs a callback")
	}
	if !t.watching.CompareAndSwap(false, true) {
		return ErrWatching
	}
	defer t.watching.Store(false)
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	if t.isClosed() {
		return ErrClosed
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("publish: cannot start file-system watcher: %w", err)
	}
	s := t.sc
	s.w = w
	defer func() {
		s.w = nil
		w.Close() // waits for fsnotify's reader goroutine
	}()

	emit := func(ch []Change) {
		if len(ch) > 0 {
			fn(ch)
		}
	}
	// First pass: registers every watch and catches changes made since the
	// last scan (they go through the stability window).
	first, _ := s.full(time.Now(), false)
	if t.opt.testReady != nil {
		t.opt.testReady()
	}
	emit(first)

	var rescanC <-chan time.Time
	if t.rescan > 0 {
		tk := time.NewTicker(t.rescan)
		defer tk.Stop()
		rescanC = tk.C
	}
	coalesce := t.coalesceWindow()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	flushArmed := false
	fullPending := false
	dirty := make(map[*dirNode]bool)

	arm := func() {
		if !flushArmed {
			flush.Reset(coalesce)
			flushArmed = true
		}
	}
	resettle := func() {
		settle.Stop()
		if d, ok := s.deadline(); ok {
			wait := time.Until(d)
			if wait < time.Millisecond {
				wait = time.Millisecond
			}
			settle.Reset(wait)
		}
	}
	resettle()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.done:
			return ErrClosed
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("publish: file-system watcher stopped")
			}
			if !t.opt.testNoNotify && s.event(ev, dirty) {
				arm()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("publish: file-system watcher stopped")
			}
			t.log.Warn("publish: file-system watcher error; rescanning", "err", err)
			fullPending = true
			arm()
		case <-rescanC:
			fullPending = true
			arm()
		case <-flush.C:
			flushArmed = false
			now := time.Now()
			var ch []Change
			if fullPending {
				ch, _ = s.full(now, false)
				fullPending = false
			} else {
				nodes := make([]*dirNode, 0, len(dirty))
				for n := range dirty {
					nodes = append(nodes, n)
				}
				ch = s.process(nodes, now, false)
			}
			clear(dirty)
			resettle()
			emit(ch)
		case <-settle.C:
			ch := s.process(nil, time.Now(), false)
			resettle()
			emit(ch)
		}
	}
}

// event maps one fsnotify event to the directories to rescan. It reports
// whether anything was marked.
func (s *scanner) event(ev fsnotify.Event, dirty map[*dirNode]bool) bool {
	name := filepath.Clean(ev.Name)
	if base := filepath.Base(name); inbox.Reserved(base) && base != inboxMarker && base != inboxCache {
		return false // fmq's own files (an inbox marker makes its directory unpublished)
	}
	marked := false
	if n, ok := s.byFS[filepath.Dir(name)]; ok {
		dirty[n] = true
		marked = true
	}
	if n, ok := s.byFS[name]; ok {
		if n.parent != nil && ev.Has(fsnotify.Remove|fsnotify.Rename) {
			dirty[n.parent] = true
			marked = true
		}
	}
	return marked
}
