package actions

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/internal/chunksum"
	"github.com/fmq/fmq/internal/exclude"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/publish"
)

// FileMQ client actions, called by machines/fmq_client.toml. The client
// mirrors its subscriptions into an inbox: every file goes to a hidden
// partial, is verified (SIZE, SHA1) and renamed into place; server paths
// are checked before anything touches the disk.

// Notifications the client sends to its host (ctx.Notify names).
const (
	NoteSynced   = "synced"   // every subscription's initial resync is done
	NoteFile     = "file"     // a file was received (value: path)
	NoteDeleted  = "deleted"  // a file was deleted (value: path)
	NoteRefused  = "refused"  // the server sent something we refused (value: error)
	NoteProblem  = "problem"  // a file could not be stored (value: error)
	NoteKept     = "kept"     // a server delete left a file fmq did not write (value: error)
	NoteConflict = "conflict" // a server file was not installed over one fmq did not write (value: error)
	NoteError    = "error"    // the server could not send a file (value: error)
	NoteLost     = "lost"     // the server went away (value: reason)
	NoteDenied   = "denied"   // SRSLY: access refused (value: reason)
	NoteRejected = "rejected" // RTFM: the server says we broke the protocol (value: reason)
)

// ClientStats are counters the host reads from other goroutines.
type ClientStats struct {
	Files     atomic.Int64 // files completed
	Deleted   atomic.Int64
	Bytes     atomic.Int64 // content bytes received
	Resumed   atomic.Int64 // bytes not transferred thanks to resume (offsets of resumed files)
	Problems  atomic.Int64 // files that could not be stored
	Refused   atomic.Int64 // chunks/files refused as unsafe or unsubscribed
	Kept      atomic.Int64 // server deletes of files fmq did not write, not applied
	Conflicts atomic.Int64 // server files not installed over files fmq did not write
	Errors    atomic.Int64 // files the server said it could not send (operation 4)
	Excluded  atomic.Int64 // files the server sent or deleted that --exclude keeps us from touching
	Links     atomic.Int64 // symbolic links made or retargeted (operation 6)
	Dirs      atomic.Int64 // directories the server announced that we created (operation 7)
	AckedAt   atomic.Int64 // unix nanos when every ICANHAZ of the session was answered, 0 before
	LastChunk atomic.Int64 // unix nanos of the last CHEEZBURGER
	Synced    atomic.Bool  // the server sent the synced marker (extension) in this client's life
	FMQServer atomic.Bool  // the server speaks fmq's extensions (progress headers, synced marker)
	Backlog   atomic.Int64 // bytes the server said it still had queued (BACKLOG header) ...
	BacklogAt atomic.Int64 // ... when Bytes was this much: total ≈ BacklogAt + Backlog
	FirstByte atomic.Int64 // unix nanos of the first content byte, 0 until then
	Window    atomic.Int64 // the credit window granted (settings.window)
	Current   atomic.Pointer[string]
}

// FMQClientPeer is the client's state. The host fills the configuration
// fields before starting the engine.
type FMQClientPeer struct {
	Inbox    *inbox.Inbox
	Subs     []string
	Login    string // PLAIN credentials, used when the server asks (ORLY)
	Password string
	Stats    *ClientStats
	// Exclude names the inbox paths (relative to the inbox) the client
	// neither writes nor deletes (fmqrun sync --exclude); nil: none.
	Exclude *exclude.Matcher

	// Per connection.
	Outstanding int64  // credit granted and not yet used
	NextSeq     uint64 // expected CHEEZBURGER sequence
	Acked       int    // ICANHAZ-OK received
	Synced      map[string]bool
	cur         *inbox.Partial
	skip        string // file whose remaining chunks are ignored (refused)
}

// NewFMQClientPeer returns a client state for an inbox and subscriptions.
func NewFMQClientPeer(ib *inbox.Inbox, subs []string) *FMQClientPeer {
	return &FMQClientPeer{Inbox: ib, Subs: subs, Stats: &ClientStats{}, Synced: map[string]bool{}}
}

// Close keeps the partial file resumable; the engine calls it at the end.
func (p *FMQClientPeer) Close() error {
	p.keepPartial()
	return nil
}

func (p *FMQClientPeer) keepPartial() {
	if p.cur != nil {
		p.cur.Abort(true)
		p.cur = nil
	}
}

func init() {
	Register(filemq.ProtocolName, interp.RoleClient, &interp.Library{
		Actions:  fmqClientActions,
		PeerType: (*FMQClientPeer)(nil),
		NewPeer:  func(string) any { return NewFMQClientPeer(nil, nil) },
	})
}

// fmqClientActions are the client machine's actions.
var fmqClientActions = interp.Actions{
	"reset session": {Fn: resetSession,
		Doc: "Forget the connection's credit, sequence and acknowledgements; keep any partial file resumable."},
	"answer challenge": {Fn: answerChallenge, Raises: []string{"no-credentials"},
		Accepts: []string{"ORLY"}, Fills: []string{"YARLY"},
		Doc: "Fill YARLY with PLAIN and our credentials, if the server offers PLAIN and we have some."},
	"subscribe": {Fn: subscribe, Sends: []string{"ICANHAZ"},
		Doc: "Send one ICANHAZ per subscription with RESYNC=1, SYNCED=1, INLINE-EOF=1, ERRORS=1, META=1, LINKS=1, DIRS=1, CHUNK-DIGEST=XXH3-128 and the inbox's digest cache (partials as prefix digests, to resume)."},
	"grant credit": {Fn: grantCredit, Sends: []string{"NOM"},
		Reads: []interp.SettingUse{
			{Name: "window", Type: interp.SettingInt, Min: interp.Int64(1), Why: "with no credit the server never sends"},
			{Name: "slice", Type: interp.SettingInt, Min: interp.Int64(0)},
		},
		Doc: "Top the server's credit up to settings.window once it has fallen by settings.slice (machines may write this policy in TOML instead: see fmq_client.toml)."},
	"list subscriptions": {Fn: listSubscriptions, Raises: []string{"subscription"},
		Doc: "Raise subscription once per subscribed path, its value a Subscription (Path, Cache: the inbox's digests under it, partials as prefix digests; Inbox: the inbox's id): the machine sends the ICANHAZ."},
	"note acknowledged": {Fn: noteAcknowledged, Accepts: []string{"ICANHAZ-OK"},
		Reads: []interp.SettingUse{{Name: "window", Type: interp.SettingInt, Min: interp.Int64(1), Why: "with no credit the server never sends"}},
		Doc:   "Count an ICANHAZ-OK (every subscription acknowledged: the time is noted) and report the credit window."},
	"store chunk": {Fn: storeChunk, Raises: []string{"synced", "lost"}, Accepts: []string{"CHEEZBURGER"},
		Doc: "Apply a CHEEZBURGER to the inbox: create/append, verify and rename at eof, delete (only what fmq installed, unless an exact mirror), make a symbolic link (its target inside the subscription) or a directory, note a subscription synced or a file the server cannot send; refuse unsafe or unsubscribed paths; end the session (lost) on a sequence break."},
	"report synced":  {Fn: reportSynced, Doc: "Tell the host every subscription is in sync."},
	"report lost":    {Fn: reportLost, Doc: "Tell the host the server is gone (it redials)."},
	"report refusal": {Fn: reportRefusal, Doc: "Tell the host the server refused us (SRSLY) or our protocol (RTFM)."},
	"keep partial": {Fn: func(ctx *interp.Ctx) error { clientState(ctx).keepPartial(); return nil },
		Doc: "Close the file being received, keeping it resumable."},
}

func clientState(ctx *interp.Ctx) *FMQClientPeer {
	p, _ := ctx.Peer().(*FMQClientPeer)
	return p
}

func resetSession(ctx *interp.Ctx) error {
	p := clientState(ctx)
	p.keepPartial()
	p.Outstanding, p.NextSeq, p.Acked, p.skip = 0, 0, 0, ""
	p.Synced = map[string]bool{}
	p.Stats.AckedAt.Store(0)
	return nil
}

func answerChallenge(ctx *interp.Ctx) error {
	p := clientState(ctx)
	m := ctx.Msg().(*filemq.Orly)
	plain := false
	for _, mech := range m.Mechanisms {
		plain = plain || mech == "PLAIN"
	}
	if !plain || p.Login == "" {
		return &interp.Exception{Event: "no-credentials", Err: fmt.Errorf("server asks for %v; we have no credentials for it", m.Mechanisms)}
	}
	y := ctx.Out("YARLY").(*filemq.Yarly)
	y.Mechanism = "PLAIN"
	y.Response = append(append(append(y.Response[:0], 0), p.Login...), 0)
	y.Response = append(y.Response, p.Password...)
	return nil
}

func subscribe(ctx *interp.Ctx) error {
	p := clientState(ctx)
	for _, sub := range p.Subs {
		m := filemq.NewIcanhaz()
		m.Path = sub
		m.Options = map[string]string{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1", "ERRORS": "1", "META": "1", "ORIGIN": "1",
			"LINKS": "1", "DIRS": "1", chunksum.Option: chunksum.Algorithm}
		if p.Inbox != nil {
			m.Cache = p.Inbox.CacheFor(sub)
			// Lets a server refuse to mirror its own published tree into
			// itself (spec/filemq.md, extensions).
			m.Options["INBOX"] = p.Inbox.ID()
		}
		if err := ctx.Send(m); err != nil {
			return err
		}
		ctx.Log().Info("subscribing", "path", sub, "cached", len(m.Cache))
	}
	return nil
}

// Subscription is the value of the subscription event: what an ICANHAZ
// for one subscribed path carries from the inbox (machines read
// value.Path, value.Cache, value.Inbox).
type Subscription struct {
	Path  string
	Cache map[string]string // file -> digest the inbox holds under Path
	Inbox string            // the inbox's id ("" without an inbox)
}

func listSubscriptions(ctx *interp.Ctx) error {
	p := clientState(ctx)
	for _, sub := range p.Subs {
		s := Subscription{Path: sub}
		if p.Inbox != nil {
			s.Cache = p.Inbox.CacheFor(sub)
			s.Inbox = p.Inbox.ID()
		}
		ctx.RaiseValue("subscription", s)
	}
	return nil
}

func noteAcknowledged(ctx *interp.Ctx) error {
	p := clientState(ctx)
	if p.Acked++; p.Acked == len(p.Subs) {
		p.Stats.AckedAt.Store(time.Now().UnixNano())
	}
	p.Stats.Window.Store(ctx.Int("window"))
	return nil
}

func grantCredit(ctx *interp.Ctx) error {
	p := clientState(ctx)
	if _, ok := ctx.Msg().(*filemq.IcanhazOk); ok {
		if p.Acked++; p.Acked == len(p.Subs) {
			p.Stats.AckedAt.Store(time.Now().UnixNano())
		}
	}
	window, slice := ctx.Int("window"), ctx.Int("slice")
	p.Stats.Window.Store(window)
	if window-p.Outstanding < slice && p.Outstanding > 0 {
		return nil
	}
	nom := ctx.Out("NOM").(*filemq.Nom)
	nom.Credit = uint64(window - p.Outstanding)
	nom.Sequence = p.NextSeq
	if nom.Credit == 0 {
		return nil
	}
	if err := ctx.Send(nom); err != nil {
		return err
	}
	p.Outstanding = window
	return nil
}

func (p *FMQClientPeer) note(ctx *interp.Ctx, name string, err error) {
	switch name {
	case NoteRefused:
		p.Stats.Refused.Add(1)
	case NoteProblem:
		p.Stats.Problems.Add(1)
	case NoteConflict:
		p.Stats.Conflicts.Add(1)
	case NoteError:
		p.Stats.Errors.Add(1)
	case NoteKept:
		p.Stats.Kept.Add(1)
		// One line per file at debug: an inbox full of the user's own
		// files would otherwise log them all at every sync; the host sums
		// them up once per sync.
		ctx.Log().Debug("kept a file fmq did not write", "err", err)
		ctx.Notify(name, err)
		return
	}
	ctx.Log().Warn(name, "err", err)
	ctx.Notify(name, err)
}

func (p *FMQClientPeer) subscribed(vpath string) bool {
	for _, s := range p.Subs {
		if publish.Matches(s, vpath) {
			return true
		}
	}
	return false
}

func storeChunk(ctx *interp.Ctx) error {
	p := clientState(ctx)
	m := ctx.Msg().(*filemq.Cheezburger)
	p.Outstanding -= int64(len(m.Chunk))
	p.Stats.LastChunk.Store(time.Now().UnixNano())
	if _, ok := m.Headers["BACKLOG"]; ok || m.Operation >= OpSynced {
		p.Stats.FMQServer.Store(true) // it will send the synced marker
	}
	if m.Sequence != p.NextSeq {
		// A broken server: end the session (the host redials with a
		// back-off) rather than warn about every chunk that follows.
		p.keepPartial()
		ctx.RaiseValue("lost", fmt.Sprintf("protocol violation by the server: CHEEZBURGER sequence %d, expected %d", m.Sequence, p.NextSeq))
		return nil
	}
	p.NextSeq = m.Sequence + 1
	if len(m.Chunk) > 0 && p.Stats.FirstByte.Load() == 0 {
		p.Stats.FirstByte.Store(time.Now().UnixNano())
	}
	switch m.Operation {
	case OpError:
		if !p.subscribed(m.Filename) {
			p.note(ctx, NoteRefused, fmt.Errorf("error report for %q, outside our subscriptions", m.Filename))
			return nil
		}
		p.note(ctx, NoteError, fmt.Errorf("the server could not send %q: %s", m.Filename, m.Headers["ERROR"]))
		return nil
	case OpMeta:
		if err := p.check(m.Filename); err != nil {
			p.note(ctx, NoteRefused, fmt.Errorf("metadata refused: %w", err))
			return nil
		}
		if p.Exclude.MatchPath(m.Filename) {
			return nil // not counted: nothing was sent for it but its mode and mtime
		}
		if changed, err := p.Inbox.SetMeta(m.Filename, m.Headers); err != nil {
			ctx.Log().Debug("metadata not applied", "path", m.Filename, "err", err)
		} else if changed {
			ctx.Log().Debug("metadata applied", "path", m.Filename)
		}
		return nil
	case OpSynced:
		p.Stats.Synced.Store(true)
		for _, s := range p.Subs {
			if s == m.Filename {
				p.Synced[s] = true
			}
		}
		// rsync sets a directory's times after what it holds: the
		// resync of this subscription is complete.
		p.Inbox.ApplyDirTimes()
		if len(p.Synced) == len(p.Subs) && p.cur == nil {
			ctx.Raise("synced")
		}
		return nil
	case OpDelete:
		return p.deleteFile(ctx, m.Filename, m.Headers["ORIGIN"])
	case OpLink:
		return p.makeLink(ctx, m.Filename, m.Headers)
	case OpDir:
		return p.makeDir(ctx, m.Filename, m.Headers)
	case OpCreate:
		return p.writeChunk(ctx, m)
	}
	p.note(ctx, NoteRefused, fmt.Errorf("CHEEZBURGER %q: unknown operation %d", m.Filename, m.Operation))
	return nil
}

func (p *FMQClientPeer) check(vpath string) error {
	if _, err := p.Inbox.Resolve(vpath); err != nil {
		return err
	}
	if !p.subscribed(vpath) {
		return fmt.Errorf("%q is outside our subscriptions %v", vpath, p.Subs)
	}
	return nil
}

// excluded reports (and counts, and logs at debug) a server file or
// delete that the client's --exclude patterns keep it from applying.
func (p *FMQClientPeer) excluded(ctx *interp.Ctx, vpath, what string) bool {
	if !p.Exclude.MatchPath(vpath) {
		return false
	}
	p.Stats.Excluded.Add(1)
	ctx.Log().Debug(what+" not applied: excluded", "path", vpath)
	return true
}

// deleteFile applies a server delete; origin is its ORIGIN header (the
// published directory it speaks for), "" from a server without.
func (p *FMQClientPeer) deleteFile(ctx *interp.Ctx, vpath, origin string) error {
	if err := p.check(vpath); err != nil {
		p.note(ctx, NoteRefused, fmt.Errorf("delete refused: %w", err))
		return nil
	}
	if p.excluded(ctx, vpath, "delete") {
		return nil
	}
	if p.cur != nil && p.cur.VPath() == vpath {
		p.cur.Abort(false)
		p.cur = nil
	}
	if err := p.Inbox.DeleteFrom(vpath, origin); err != nil {
		if errors.Is(err, inbox.ErrNotOwned) { // the user's: kept
			p.note(ctx, NoteKept, err)
		} else if errors.Is(err, inbox.ErrUnsafePath) { // through a link out of the inbox
			p.note(ctx, NoteRefused, fmt.Errorf("delete refused: %w", err))
		} else {
			p.note(ctx, NoteProblem, err)
		}
		return nil
	}
	p.Stats.Deleted.Add(1)
	ctx.Notify(NoteDeleted, vpath)
	return nil
}

// makeLink applies a server's symbolic link (operation 6): its target must
// stay inside a subscription holding the link, or it is refused.
func (p *FMQClientPeer) makeLink(ctx *interp.Ctx, vpath string, headers map[string]string) error {
	target := headers["LINK"]
	if err := p.check(vpath); err != nil {
		p.note(ctx, NoteRefused, fmt.Errorf("link refused: %w", err))
		return nil
	}
	tv, err := inbox.LinkTarget(vpath, target)
	inside := false
	for _, s := range p.Subs {
		inside = inside || (err == nil && publish.Matches(s, vpath) && publish.Matches(s, tv))
	}
	if err == nil && !inside {
		err = fmt.Errorf("%q is a link to %q, outside our subscriptions %v", vpath, target, p.Subs)
	}
	if err != nil {
		p.note(ctx, NoteRefused, fmt.Errorf("link refused: %w", err))
		return nil
	}
	if p.excluded(ctx, vpath, "link") {
		return nil
	}
	if err := p.Inbox.SetLinkMeta(vpath, target, headers["ORIGIN"], headers); err != nil {
		p.noteStoreError(ctx, "link", err)
		return nil
	}
	p.Stats.Links.Add(1)
	ctx.Log().Debug("link made", "path", vpath, "target", target)
	ctx.Notify(NoteFile, vpath)
	return nil
}

// makeDir applies a server's directory (operation 7).
func (p *FMQClientPeer) makeDir(ctx *interp.Ctx, vpath string, headers map[string]string) error {
	if err := p.check(vpath); err != nil {
		p.note(ctx, NoteRefused, fmt.Errorf("directory refused: %w", err))
		return nil
	}
	if p.Exclude.MatchPath(vpath) {
		return nil // not counted: nothing was sent for it
	}
	if err := p.Inbox.MakeDir(vpath, headers); err != nil {
		p.noteStoreError(ctx, "directory", err)
		return nil
	}
	p.Stats.Dirs.Add(1)
	return nil
}

// noteStoreError counts a failure to store what the server sent: the
// user's file in the way (conflict), a path through a link (refused), or
// a storage failure (problem).
func (p *FMQClientPeer) noteStoreError(ctx *interp.Ctx, what string, err error) {
	switch {
	case errors.Is(err, inbox.ErrNotOwned):
		p.note(ctx, NoteConflict, err)
	case errors.Is(err, inbox.ErrUnsafePath):
		p.note(ctx, NoteRefused, fmt.Errorf("%s refused: %w", what, err))
	default:
		p.note(ctx, NoteProblem, err)
	}
}

func (p *FMQClientPeer) writeChunk(ctx *interp.Ctx, m *filemq.Cheezburger) error {
	off := int64(m.Offset)
	if p.cur != nil && (p.cur.VPath() != m.Filename || off == 0) {
		// The server moved on (or restarts this file): keep what we have.
		p.keepPartial()
	}
	if p.cur == nil {
		if p.skip == m.Filename && off != 0 {
			return nil // rest of a refused file
		}
		p.skip = ""
		if err := p.check(m.Filename); err != nil {
			p.skip = m.Filename
			p.note(ctx, NoteRefused, fmt.Errorf("file refused: %w", err))
			return nil
		}
		if p.excluded(ctx, m.Filename, "file") {
			p.skip = m.Filename
			return nil
		}
		// Chunk digests (CHUNK-DIGEST): each chunk is checked on its own,
		// no whole-file SHA-1 is computed here. ORIGIN: the published
		// directory the file comes from (ownership, spec/filemq.md 7.3.1).
		// A file in one chunk (most small files): the inbox checks what is
		// in the way once, when it installs it.
		verified, origin := m.Headers[chunksum.Header] != "", m.Headers["ORIGIN"]
		var part *inbox.Partial
		var err error
		if off == 0 && m.EOF != 0 {
			part, err = p.Inbox.BeginWhole(m.Filename, verified, origin)
		} else {
			part, err = p.Inbox.BeginFrom(m.Filename, off, verified, origin)
		}
		if err != nil {
			p.skip = m.Filename
			p.noteStoreError(ctx, "file", err) // an unsafe path: through a link
			return nil
		}
		p.cur = part
		if off > 0 {
			p.Stats.Resumed.Add(off)
		}
		if b, err := strconv.ParseInt(m.Headers["BACKLOG"], 10, 64); err == nil {
			p.Stats.BacklogAt.Store(p.Stats.Bytes.Load())
			p.Stats.Backlog.Store(b)
		}
		name := m.Filename
		p.Stats.Current.Store(&name)
	}
	// The chunk aliases the frame of this message, which nobody modifies
	// until the frame is released: hand both over, so the inbox can hash
	// the chunk (whole-file SHA-1) while the next one is written, and gives
	// the frame back (to the transport's pool) once done with it.
	release := ctx.Hold()
	var err error
	if p.cur.Verified() {
		err = p.cur.WriteChunk(off, m.Chunk, m.Headers[chunksum.Header], release)
	} else {
		err = p.cur.WriteOwned(off, m.Chunk, release)
	}
	if err != nil {
		p.skip = m.Filename
		keep := !errors.Is(err, inbox.ErrOutOfOrder)
		p.cur.Abort(keep)
		p.cur = nil
		p.note(ctx, NoteProblem, err)
		return nil
	}
	p.Stats.Bytes.Add(int64(len(m.Chunk)))
	if m.EOF == 0 {
		return nil
	}
	part := p.cur
	p.cur = nil
	if err := part.Finish(m.Headers); err != nil {
		if errors.Is(err, inbox.ErrNotOwned) {
			p.note(ctx, NoteConflict, err)
			return nil
		}
		p.note(ctx, NoteProblem, err)
		return nil
	}
	p.Stats.Files.Add(1)
	ctx.Notify(NoteFile, m.Filename)
	return nil
}

func reportSynced(ctx *interp.Ctx) error {
	ctx.Notify(NoteSynced, nil)
	return nil
}

func reportLost(ctx *interp.Ctx) error {
	reason := ctx.Event()
	switch v := ctx.Value().(type) {
	case string: // raised with a value
		if v != "" {
			reason = v
		}
	case map[string]any: // the host's Call("lost", {"reason": ...})
		if r, ok := v["reason"].(string); ok && r != "" {
			reason = r
		}
	}
	ctx.Log().Warn("server lost", "why", reason)
	ctx.Notify(NoteLost, reason)
	return nil
}

func reportRefusal(ctx *interp.Ctx) error {
	switch m := ctx.Msg().(type) {
	case *filemq.Srsly:
		ctx.Notify(NoteDenied, m.Reason)
	case *filemq.Rtfm:
		ctx.Notify(NoteRejected, m.Reason)
	default: // we gave up ourselves (no-credentials): the value is the error
		if err := ctx.Err(); err != nil {
			ctx.Notify(NoteDenied, err)
		} else {
			ctx.Notify(NoteDenied, ctx.Event())
		}
	}
	return nil
}
