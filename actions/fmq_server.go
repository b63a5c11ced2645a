package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/inbox"
	"github.com/fmq/fmq/internal/chunksum"
	"github.com/fmq/fmq/internal/vpath"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"
)

// FileMQ server actions, called by machines/fmq_server.toml. Each client's
// session runs one input at a time, sessions run in parallel; each client
// has an FMQServerPeer (its subscriptions, credit, queue and the file being
// sent) and all share one FMQServer (the published tree, the accounts,
// pooled chunk buffers, the bound on concurrent hashing).

// CHEEZBURGER operations (spec/filemq.md).
const (
	OpCreate uint8 = 1 // create or update: content follows
	OpDelete uint8 = 2 // the file is gone
	OpSynced uint8 = 3 // extension: the initial resync of a subscription is complete
	OpError  uint8 = 4 // extension: a file the server cannot send; header ERROR says why
	OpMeta   uint8 = 5 // extension: a skipped file's metadata (headers MODE, MTIME)
	OpLink   uint8 = 6 // extension: a symbolic link (header LINK: its target)
	OpDir    uint8 = 7 // extension: a directory (header MODE)
)

// Cache values of links and directories (spec/filemq.md 7.3): what a
// client that takes them (LINKS=1, DIRS=1) holds.
const (
	CacheLinkPrefix = "LINK:" // + the link's target
	// CacheLinkTimed + the link's own mtime (ns) + ":" + its target.
	CacheLinkTimed = "LINK@"
	CacheDir       = "DIR" // + ":" and the mode it was given, if any
)

// Checker verifies PLAIN credentials (transport.PasswordFile implements it).
type Checker interface {
	Check(login, password string) bool
}

// FMQServer is what every client of one server shares. Sessions run
// concurrently (spec/machines.md section 11): what is here is safe for
// concurrent use (the tree locks itself, the accounts are read-only).
type FMQServer struct {
	Tree     *publish.Tree
	Accounts Checker   // nil: no authentication (OHAI-OK at once, as the C server)
	bufs     sync.Pool // *chunk, beyond the few kept in free
	lent     sync.Map  // *chunk by its first byte, while lent (Handover)
	freeMu   sync.Mutex
	free     []*chunk // idle chunk buffers kept across collections (keptChunks)
	// heavy bounds the resyncs (file hashing) running at once, so that
	// they leave cores to the sessions' dispatches: half the cores, at least one.
	heavy chan struct{}
	// Backlog, when set, tells how many bytes wait to be written to a
	// client (transport.Router.Queued): content is held back while it is
	// over backlogHigh, and resumes (send-more) once it drained below
	// backlogLow, so a client with a huge window on a slow link waits
	// instead of overflowing its write queue.
	Backlog func(peer string) int
	// WaitBacklog, when set (with Backlog), returns once peer's backlog is
	// under below, or ctx ends: the connection signals it as it drains
	// (transport.Router.WaitQueued), so a held-back session resumes at once
	// instead of polling Backlog.
	WaitBacklog func(ctx context.Context, peer string, below int) error
	// SendFiles, when set, lets a session send a chunk of a large file to a
	// client that checks chunk digests (CHUNK-DIGEST) as a file section: the
	// chunk's digest comes from the version's table (publish.Reader.
	// ChunkDigest), the chunk is not read, the message's chunk is a
	// placeholder of zeros, and the sender, which must call TakeSection
	// for every split send, writes it from the file's pages. Set it only
	// with such a sender, without a wire trace of the frames (it would show
	// the placeholder) and without CURVE (which reads the chunk anyway).
	SendFiles bool
	sections  sync.Map // peer -> *pendingSection: the section of the chunk being sent
}

// pendingSection is a chunk sent as a file section, from step until the
// sender takes it (TakeSection) or the session lets it go (release).
type pendingSection struct {
	sec *publish.Section
	ph  *byte // the first byte of the chunk's placeholder
}

// sectionMin is the smallest chunk sent as a file section: well above the
// engine's threshold for split sends (64 KiB), under which the message,
// placeholder included, is encoded as a whole and TakeSection never sees it.
const sectionMin = 256 << 10

// sectionBacklog is backlogHigh for a chunk sent as a file section: a
// queued section holds no buffer (only the file, open anyway), so more of
// them may wait, and the connection's writer goes from one to the next
// without waiting for the session to queue it.
const sectionBacklog = 4 << 20

// placeholders holds zeros, the content of a message whose chunk is a file
// section (never written: the sender writes the section in its place; a
// placeholder sent by mistake fails the client's chunk digest check).
var placeholders atomic.Pointer[[]byte]

func placeholder(n int) []byte {
	if p := placeholders.Load(); p != nil && len(*p) >= n {
		return (*p)[:n]
	}
	b := make([]byte, max(n, 1<<20))
	placeholders.Store(&b)
	return b[:n]
}

// TakeSection returns the file section that tail stands for, when tail is
// the placeholder of the chunk peer's session is sending (SendFiles); the
// caller sends the section in its place and releases it. nil: tail is
// content to send as is.
func (s *FMQServer) TakeSection(peer string, tail []byte) *publish.Section {
	if len(tail) == 0 {
		return nil
	}
	v, ok := s.sections.Load(peer)
	if !ok {
		return nil
	}
	ps := v.(*pendingSection)
	if ps.ph != &tail[0] || int64(len(tail)) != ps.sec.N || !s.sections.CompareAndDelete(peer, v) {
		return nil
	}
	return ps.sec
}

// Write backlog bounds of a client's connection (see FMQServer.Backlog). A
// chunk is sent while the connection's queue is empty or holds at most
// backlogHigh bytes with it; otherwise the session waits until the queue
// is under backlogLow (or low enough for the chunk). With 1 MB chunks at
// most one waits in the queue: what the server holds per client does not
// grow with the length of a transfer (issue 8's memory target; the kernel's
// socket buffer, not the queue, keeps the link busy meanwhile). It was
// 4 MiB: a client that fell behind for a moment left four chunks queued
// (copies, or buffers handed over), and the collector's goal doubled with
// them.
const (
	backlogHigh = 1 << 20
	backlogLow  = 512 << 10
)

// waitDrained returns once peer's write backlog is under below (or ctx
// ends); it runs off the dispatch path. Without WaitBacklog, it polls.
func (s *FMQServer) waitDrained(ctx context.Context, peer string, below int) {
	if s.WaitBacklog != nil {
		s.WaitBacklog(ctx, peer, below) // an error (peer gone): the next send says so
		return
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.Backlog(peer) >= below {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NewFMQServer returns the shared server state for a published tree.
func NewFMQServer(tree *publish.Tree, accounts Checker) *FMQServer {
	return &FMQServer{Tree: tree, Accounts: accounts, heavy: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
}

// chunk is a pooled chunk buffer with a count of its holders: the session
// that read it, until the machine sent it, and a transport it was handed
// over to (Handover), until it is written. The last one gives it back.
type chunk struct {
	b    []byte
	refs atomic.Int32
}

// chunkBuf lends a chunk buffer of n bytes to a session; putBuf gives its
// reference back once the chunk is sent.
func (s *FMQServer) chunkBuf(n int) *chunk {
	var c *chunk
	s.freeMu.Lock()
	if k := len(s.free); k > 0 {
		c, s.free[k-1] = s.free[k-1], nil
		s.free = s.free[:k-1]
	}
	s.freeMu.Unlock()
	if c == nil {
		c, _ = s.bufs.Get().(*chunk)
	}
	if c == nil || cap(c.b) < n {
		c = &chunk{b: make([]byte, max(n, 1))}
	}
	c.b = c.b[:n]
	c.refs.Store(1)
	s.lent.Store(&c.b[:1][0], c)
	return c
}

func (s *FMQServer) putBuf(c *chunk) {
	if c.refs.Add(-1) == 0 {
		s.lent.Delete(&c.b[:1][0])
		s.freeMu.Lock()
		if len(s.free) < keptChunks {
			s.free = append(s.free, c)
			c = nil
		}
		s.freeMu.Unlock()
		if c != nil {
			s.bufs.Put(c)
		}
	}
}

// keptChunks is the number of idle chunk buffers the server keeps across
// garbage collections: a transfer's steady state (one chunk being read, one
// waiting in the connection's queue) never allocates one. More (clients
// served at once) come from and go back to a sync.Pool, which collections
// empty. A sync.Pool alone kept one buffer per processor, and the one put
// back by a connection's writer on one processor was not found by the
// session reading on another: a long transfer allocated a fresh 1 MB
// buffer every few chunks and the collector's goal grew with them.
const keptChunks = 2

// Handover takes a reference to the chunk buffer that tail (a chunk being
// sent) starts, for a sender that writes it after Send returns instead of
// copying it; it returns the release to call once it is written, or nil
// when tail is not a chunk buffer of this server's.
func (s *FMQServer) Handover(tail []byte) (release func()) {
	if len(tail) == 0 {
		return nil
	}
	v, ok := s.lent.Load(&tail[0])
	if !ok {
		return nil
	}
	c := v.(*chunk)
	c.refs.Add(1)
	return func() { s.putBuf(c) }
}

// job is one pending operation for a client.
type job struct {
	op     uint8
	vpath  string
	offset int64  // first byte to send (resume)
	size   int64  // size when queued (for the BACKLOG header)
	gen    uint64 // the peer's enqueue generation when queued
	dead   bool   // superseded by a later change
	reason string
	hdr    map[string]string // OpMeta's headers
}

func (j *job) remaining() int64 { return max(j.size-j.offset, 0) }

// FMQServerPeer is what the server keeps for one client. Guards read its
// exported fields (peer.AuthRequired, peer.Credit).
type FMQServerPeer struct {
	AuthRequired bool
	Login        string
	InlineEOF    bool     // the client asked for eof on the last data chunk (INLINE-EOF=1)
	ChunkDigest  bool     // the client asked for a digest on every chunk (CHUNK-DIGEST=XXH3-128)
	Errors       bool     // the client asked to be told of files we cannot send (ERRORS=1)
	Meta         bool     // the client asked for the metadata of files the resync skips (META=1)
	Origin       bool     // the client asked for the ORIGIN header (ORIGIN=1)
	Links        bool     // the client takes symbolic links as links (LINKS=1)
	Dirs         bool     // the client takes directories (DIRS=1)
	Subs         []string // subscribed path prefixes
	Credit       int64    // content bytes the client still allows
	Sequence     uint64   // sequence of the next CHEEZBURGER
	Files        int64    // files completed
	Bytes        int64    // content bytes sent
	// Next is the CHEEZBURGER the machine sends next (next chunk raises
	// chunk when it is ready): peer.Next.sequence, .operation, .filename,
	// .offset, .eof, .headers, .chunk (lent from a pool until sent).
	Next filemq.Cheezburger

	srv     *FMQServer
	queue   []*job
	pending map[string]*job // live create/delete job by path
	backlog int64           // content bytes of the live queued creates
	cur     *publish.Reader
	curOff  int64
	curSize int64
	first   bool // the next chunk is the file's first in this transfer
	hdr     map[string]string
	dead    int    // superseded jobs still in queue (compacted when they dominate)
	gen     uint64 // counts enqueues: a resync result never overrides newer news
	more    bool   // a send-more continuation is queued
	spent   int64  // this dispatch's share used (dispatch_bytes)
	msgs    int    // messages this dispatch
	fl      flight // the message prepared, not yet sent
	oneFile bool   // next chunk stops at a file's end (next chunk of one file)
	// chunk_size and dispatch_bytes, as next chunk read them at the start
	// of the dispatch
	chunkMax, budget int64
	// resyncs: the one RESYNC computed off the dispatch path (busy), and
	// the ones waiting behind it, at most one per subscription.
	busy     bool
	waiting  []*resyncReq
	resynced []string // subscriptions whose RESYNC was asked for, in order
}

// resyncReq is an ICANHAZ with RESYNC=1, worked out off the dispatch path:
// the published tree against the client's cache (digests, prefix hashes).
type resyncReq struct {
	sub   string
	cache map[string]string
	// covered are the subscriptions resynced before this one: a file they
	// match is theirs to send, so overlapping subscriptions send it once.
	covered []string
	synced  bool   // queue the synced marker once the resync is queued
	meta    bool   // the client asked for the metadata of skipped files (META=1)
	links   bool   // ... links as links (LINKS=1)
	dirs    bool   // ... directories (DIRS=1)
	errors  bool   // ... reports of what cannot be sent (ERRORS=1)
	gen     uint64 // p.gen when the request was taken
}

// resyncResult is what the resync work found.
type resyncResult struct {
	req                    *resyncReq
	jobs                   []job
	skipped, resumed, gone int
}

// Close frees the file being sent; the engine calls it when the instance ends.
func (p *FMQServerPeer) Close() error {
	if p.srv != nil {
		p.release()
	}
	if p.cur != nil {
		err := p.cur.Close()
		p.cur = nil
		return err
	}
	return nil
}

// fmqServerActions are the server machine's actions.
var fmqServerActions = interp.Actions{
	"prepare challenge": {Fn: prepareChallenge, Fills: []string{"ORLY"},
		Doc: "Fill ORLY with the mechanisms we accept (PLAIN) and an empty challenge."},
	"check credentials": {Fn: checkCredentials, Raises: []string{"denied"},
		Accepts: []string{"YARLY"}, Fills: []string{"SRSLY"},
		Doc: "Check YARLY's PLAIN response against the accounts; raise denied (SRSLY filled) when wrong."},
	"store subscription": {Fn: storeSubscription, Raises: []string{"bad-path", "resynced"},
		Accepts: []string{"ICANHAZ"}, Fills: []string{"RTFM"},
		Reads: []interp.SettingUse{
			{Name: "max_subscriptions", Type: interp.SettingInt, Min: interp.Int64(1), Why: "a client needs one subscription"},
			{Name: "max_cache_entries", Type: interp.SettingInt, Min: interp.Int64(0)}},
		Doc: "Add ICANHAZ's path to the subscriptions (at most max_subscriptions: beyond, bad-path with RTFM filled); with RESYNC=1 compare the existing tree with the cache (at most max_cache_entries) off the dispatch path (digests, prefix hashes) and raise resynced with the result; with SYNCED=1 queue the synced marker (after the resync, when there is one). A bad path raises bad-path with RTFM filled."},
	"queue resync": {Fn: queueResync, Raises: []string{"resynced"}, Accepts: []string{"resynced"},
		Doc: "Queue what a resync found (resynced's value): the tree minus what the client has, resuming partial files, deleting what went away; never over newer changes. Then start the next waiting resync."},
	"store credit": {Fn: storeCredit, Accepts: []string{"NOM"},
		Doc: "Add NOM's credit to what the client allows."},
	"queue changes": {Fn: queueChanges, Accepts: []string{"changed"},
		Doc: "Queue the published changes (the broadcast value) that match the client's subscriptions."},
	"deliver chunks": {Fn: sendChunks, Sends: []string{"CHEEZBURGER"}, Raises: []string{"send-more"},
		Reads: deliverReads,
		Doc:   "Send queued work while credit lasts: deletes and markers cost nothing, content is cut at the credit boundary and at chunk_size. One dispatch sends at most dispatch_bytes; the rest follows on send-more, behind the client's other input. A file is opened only when there is credit to send from it."},
	"deliver one file": {Fn: deliverOneFile, Sends: []string{"CHEEZBURGER"}, Raises: []string{"send-more", "file-sent"},
		Reads: deliverReads,
		Doc:   "As deliver chunks, but stop when a file's last chunk is sent and raise file-sent: the machine decides whether the next file goes (quotas in TOML). Deletes and markers do not count as files."},
	"next chunk": {Fn: nextChunk, Raises: []string{EventChunk, "send-more"},
		Reads: deliverReads,
		Doc:   "The machine sends the chunks: prepare the next CHEEZBURGER of the queued work in peer.Next (sequence, operation, filename, offset, eof, headers: SIZE, BACKLOG, SHA1, the chunk digest, ERROR, MODE/MTIME; chunk, lent until sent) and raise chunk; bound to chunk, first account for the one the machine just sent. The limits are deliver chunks': deletes and markers cost nothing, content is cut at the credit boundary and at chunk_size, one dispatch prepares at most dispatch_bytes (the rest on send-more), a file is opened only when there is credit to send from it. Nothing raised: nothing to send now (no credit, no work, or waiting on send-more)."},
	"next chunk of one file": {Fn: nextChunkOneFile, Raises: []string{EventChunk, "send-more", "file-sent"},
		Reads: deliverReads,
		Doc:   "As next chunk, but once a file's last chunk is sent raise file-sent instead of preparing more: the machine decides whether the next file goes (quotas in TOML). Deletes and markers do not count as files."},
	"explain malformed": {Fn: explainMalformed, Fills: []string{"RTFM"},
		Doc: "Fill RTFM with the decode error of the malformed frame."},
	"explain unexpected": {Fn: explainUnexpected, Raises: []string{"peer-error"}, Fills: []string{"RTFM"},
		Doc: "Fill RTFM with the unexpected command and state; raise peer-error instead when the client sent RTFM or SRSLY (an error is never answered with an error)."},
	"log departure": {Fn: logDeparture, Doc: "Log what the client received before it left."},
}

// deliverReads are the settings the delivery actions read.
var deliverReads = []interp.SettingUse{{Name: "chunk_size", Type: interp.SettingInt, Min: interp.Int64(1), Max: interp.Int64(MaxChunkSize),
	Why: "a CHEEZBURGER must fit the client's frame limit"},
	{Name: "dispatch_bytes", Type: interp.SettingInt, Min: interp.Int64(1), Why: "each dispatch must send something"}}

// MaxChunkSize is the largest chunk_size: a CHEEZBURGER carrying it (plus
// its path and headers, up to 64 KiB) fits the transport's default frame
// limit, which fmq clients apply.
const MaxChunkSize = transport.DefaultMaxFrame - 64<<10

func serverState(ctx *interp.Ctx) *FMQServerPeer {
	p, _ := ctx.Peer().(*FMQServerPeer)
	return p
}

func init() {
	Register(filemq.ProtocolName, interp.RoleServer, &interp.Library{
		Actions:  fmqServerActions,
		PeerType: (*FMQServerPeer)(nil),
		NewPeer:  func(string) any { return NewFMQServerPeer(nil) },
	})
}

// NewFMQServerPeer is the per-client factory; a host passes it as
// interp.Options.NewPeer bound to its FMQServer.
func NewFMQServerPeer(s *FMQServer) *FMQServerPeer {
	p := &FMQServerPeer{srv: s, pending: map[string]*job{}}
	if s != nil && s.Accounts != nil {
		p.AuthRequired = true
	}
	return p
}

func prepareChallenge(ctx *interp.Ctx) error {
	m := ctx.Out("ORLY").(*filemq.Orly)
	m.Mechanisms = append(m.Mechanisms[:0], "PLAIN")
	m.Challenge = nil
	return nil
}

func deny(ctx *interp.Ctx, reason string) error {
	ctx.Out("SRSLY").(*filemq.Srsly).Reason = reason
	return &interp.Exception{Event: "denied", Err: errors.New(reason)}
}

func checkCredentials(ctx *interp.Ctx) error {
	p := serverState(ctx)
	m, ok := ctx.Msg().(*filemq.Yarly)
	if !ok || p == nil || p.srv == nil || p.srv.Accounts == nil {
		return deny(ctx, "authentication not available")
	}
	if m.Mechanism != "PLAIN" {
		return deny(ctx, "unsupported mechanism "+strconv.Quote(m.Mechanism))
	}
	// RFC 4616: [authzid] NUL authcid NUL passwd
	parts := strings.Split(string(m.Response), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return deny(ctx, "malformed PLAIN response")
	}
	if !p.srv.Accounts.Check(parts[1], parts[2]) {
		ctx.Log().Warn("authentication failed", "login", parts[1])
		return deny(ctx, "invalid credentials")
	}
	p.Login = parts[1]
	ctx.Log().Info("authenticated", "login", p.Login)
	return nil
}

// CheckVirtualPath validates a subscription path (internal/vpath's rules).
func CheckVirtualPath(p string) error { return vpath.Check(p) }

func storeSubscription(ctx *interp.Ctx) error {
	p := serverState(ctx)
	m := ctx.Msg().(*filemq.Icanhaz)
	if err := CheckVirtualPath(m.Path); err != nil {
		ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason("ICANHAZ: " + err.Error())
		return &interp.Exception{Event: "bad-path", Err: err}
	}
	if err := p.refuseOwnInbox(m.Options["INBOX"]); err != nil {
		ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason("ICANHAZ: " + err.Error())
		return &interp.Exception{Event: "bad-path", Err: err}
	}
	sub := m.Path
	known := false
	for _, s := range p.Subs {
		known = known || s == sub
	}
	if !known {
		if limit := ctx.Int("max_subscriptions"); limit > 0 && int64(len(p.Subs)) >= limit {
			err := fmt.Errorf("too many subscriptions (max_subscriptions is %d)", limit)
			ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason("ICANHAZ: " + err.Error())
			return &interp.Exception{Event: "bad-path", Err: err}
		}
		p.Subs = append(p.Subs, sub)
	}
	if m.Options["META"] == "1" {
		p.Meta = true
	}
	if m.Options["ORIGIN"] == "1" {
		p.Origin = true
	}
	if m.Options["LINKS"] == "1" {
		p.Links = true
	}
	if m.Options["DIRS"] == "1" {
		p.Dirs = true
	}
	if limit := ctx.Int("max_cache_entries"); limit > 0 && int64(len(m.Cache)) > limit {
		err := fmt.Errorf("cache of %d entries (max_cache_entries is %d)", len(m.Cache), limit)
		ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason("ICANHAZ: " + err.Error())
		return &interp.Exception{Event: "bad-path", Err: err}
	}
	if m.Options["INLINE-EOF"] == "1" {
		p.InlineEOF = true
	}
	if m.Options[chunksum.Option] == chunksum.Algorithm {
		p.ChunkDigest = true
	}
	if m.Options["ERRORS"] == "1" {
		p.Errors = true
		if p.srv != nil {
			for _, pr := range p.srv.Tree.Unpublishable(sub) {
				p.queueError(pr.VPath, pr.Reason)
			}
		}
	}
	synced := m.Options["SYNCED"] == "1"
	if m.Options["RESYNC"] == "1" && p.srv != nil {
		// The cache map now belongs to the request (the decoder makes a
		// new one for the next ICANHAZ): no copy on the dispatch path.
		req := &resyncReq{sub: sub, cache: m.Cache, synced: synced, meta: p.Meta, links: p.Links, dirs: p.Dirs, errors: p.Errors, gen: p.gen}
		m.Cache = nil
		for _, s := range p.resynced {
			if s != sub {
				req.covered = append(req.covered, s)
			}
		}
		if !slices.Contains(p.resynced, sub) {
			p.resynced = append(p.resynced, sub)
		}
		p.startResync(ctx, req)
		return nil
	}
	if synced {
		p.queueMarker(sub)
	}
	return nil
}

// refuseOwnInbox refuses a client whose inbox (its id, ICANHAZ option
// INBOX) this server publishes, contains or lies in: it would mirror the
// tree into itself.
func (p *FMQServerPeer) refuseOwnInbox(id string) error {
	if id == "" || p.srv == nil || p.srv.Tree == nil {
		return nil
	}
	if where, ok := p.srv.Tree.InboxOverlap(id); ok {
		return fmt.Errorf("your inbox overlaps what this server publishes (%s); choose an inbox outside the published directories", where)
	}
	return nil
}

// queueMarker queues the synced marker of sub, once.
func (p *FMQServerPeer) queueMarker(sub string) {
	for _, j := range p.queue {
		if j.op == OpSynced && j.vpath == sub && !j.dead {
			return
		}
	}
	p.queue = append(p.queue, &job{op: OpSynced, vpath: sub})
}

// startResync runs req off the dispatch path, or keeps it (replacing an
// older request for the same subscription) until the one running is done.
func (p *FMQServerPeer) startResync(ctx *interp.Ctx, req *resyncReq) {
	if p.busy {
		for i, w := range p.waiting {
			if w.sub == req.sub {
				req.synced = req.synced || w.synced
				p.waiting[i] = req
				return
			}
		}
		p.waiting = append(p.waiting, req)
		return
	}
	p.busy = true
	tree, heavy := p.srv.Tree, p.srv.heavy
	log := ctx.Log()
	ctx.Go("resynced", func(c context.Context) (any, error) {
		if heavy != nil {
			select {
			case heavy <- struct{}{}:
				defer func() { <-heavy }()
			case <-c.Done():
				return &resyncResult{req: req}, nil
			}
		}
		return computeResync(c, tree, req, log), nil
	})
}

// computeResync decides, for every published file under req.sub, what the
// client needs given its cache; it runs off the dispatch path.
func computeResync(c context.Context, tree *publish.Tree, req *resyncReq, log *slog.Logger) *resyncResult {
	res := &resyncResult{req: req}
	abs := make(map[string]string, len(req.cache))
	for k, v := range req.cache {
		if !strings.HasPrefix(k, "/") {
			k = path.Join(req.sub, k)
		}
		abs[k] = v
	}
	for _, e := range tree.Match(req.sub) {
		if c.Err() != nil {
			return res
		}
		if coveredBy(req.covered, e.VPath) {
			continue
		}
		var off int64
		if cv, ok := abs[e.VPath]; ok {
			skip, o, err := tree.Decide(e.VPath, cv)
			if err != nil {
				log.Debug("cache entry ignored", "path", e.VPath, "err", err)
			}
			if skip {
				res.skipped++
				if req.meta { // same content: the mode or mtime may still differ
					res.jobs = append(res.jobs, job{op: OpMeta, vpath: e.VPath, hdr: publish.MetaHeaders(e.Mode, e.ModTime, e.UID, e.GID)})
				}
				continue
			}
			if o > 0 {
				res.resumed++
			}
			off = o
		}
		res.jobs = append(res.jobs, job{op: OpCreate, vpath: e.VPath, offset: off, size: e.Size})
	}
	if req.dirs {
		for _, d := range tree.Dirs(req.sub) {
			if coveredBy(req.covered, d.VPath) {
				continue
			}
			j := dirJob(d)
			if v := abs[d.VPath]; v == CacheDir || v == CacheDir+":"+j.hdr["MODE"] || v == CacheDir+":"+j.hdr["MODE"]+"@"+j.hdr["MTIME"] {
				res.skipped++
				continue
			}
			res.jobs = append(res.jobs, j)
		}
	}
	for _, l := range tree.Links(req.sub) {
		if coveredBy(req.covered, l.VPath) {
			continue
		}
		j, ok := linkJob(req.sub, l, req.links)
		switch {
		case !ok:
		case j.op == OpLink && (abs[l.VPath] == CacheLinkPrefix+l.Target || abs[l.VPath] == CacheLinkTimed+j.hdr["MTIME"]+":"+l.Target):
			res.skipped++
		case j.op == OpLink || req.errors:
			res.jobs = append(res.jobs, j)
		}
	}
	// A directory before what it holds: files, links and directories in
	// the order of their paths.
	slices.SortStableFunc(res.jobs, func(a, b job) int { return strings.Compare(a.vpath, b.vpath) })
	// The cache names files the client holds that are no longer published
	// (deleted while it was away), or published as another kind (a
	// directory now a link): delete them too, so the mirror is exact,
	// deepest first (a directory after what it held). A path that changed
	// kind is deleted before everything else, so that it is free for its
	// new self; the others after the rest, as before kinds.
	keys := make([]string, 0, len(abs))
	for k := range abs {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	var kinds map[string]bool // paths that changed kind
	for _, k := range keys {
		if publish.Matches(req.sub, k) && tree.Published(k) && kindChanged(tree, k, abs[k]) {
			if kinds == nil {
				kinds = map[string]bool{}
			}
			kinds[k] = true
		}
	}
	var first []job // deletes of what changed kind and of what it held
	for _, k := range keys {
		if !publish.Matches(req.sub, k) || coveredBy(req.covered, k) || CheckVirtualPath(inbox.Unhide(k)) != nil { // hidden files are files too
			continue
		}
		switch {
		case kinds[k] || (kinds != nil && !tree.Published(k) && under(kinds, k)):
			first = append(first, job{op: OpDelete, vpath: k})
		case !tree.Published(k):
			res.jobs = append(res.jobs, job{op: OpDelete, vpath: k})
		default:
			continue
		}
		res.gone++
	}
	res.jobs = append(first, res.jobs...)
	return res
}

// under reports whether one of vpath's parents is in set.
func under(set map[string]bool, vpath string) bool {
	for d := path.Dir(vpath); d != "/" && d != "."; d = path.Dir(d) {
		if set[d] {
			return true
		}
	}
	return false
}

// kindChanged reports a cache entry (k, its value v) for a path the tree
// publishes as another kind than the client holds: a directory or link
// where it has a file, a file or link where it has a directory, ...
func kindChanged(tree *publish.Tree, k, v string) bool {
	_, isDir := tree.LookupDir(k)
	_, isLink := tree.LookupLink(k)
	switch {
	case v == CacheDir || strings.HasPrefix(v, CacheDir+":"):
		return !isDir
	case strings.HasPrefix(v, CacheLinkPrefix), strings.HasPrefix(v, CacheLinkTimed):
		return !isLink
	}
	return isDir || isLink
}

// dirJob is the operation 7 of a directory: MODE, MTIME and the owner's
// headers, as for a file.
func dirJob(d publish.Dir) job {
	return job{op: OpDir, vpath: d.VPath, hdr: publish.MetaHeaders(d.Mode, time.Unix(0, d.MTime), d.UID, d.GID)}
}

// linkJob is what a client subscribed to sub gets for link l: the link
// (operation 6) when it takes links and the target stays inside sub, else
// a report (operation 4); ok is false when there is nothing to say.
func linkJob(sub string, l publish.Link, takesLinks bool) (j job, ok bool) {
	switch {
	case !takesLinks:
		return job{op: OpError, vpath: l.VPath, reason: "it is a symbolic link, and this client does not take links (not followed)"}, true
	case !publish.Matches(sub, l.TargetVPath):
		return job{op: OpError, vpath: l.VPath, reason: "it is a symbolic link leading outside the subscription " + sub + " (not followed)"}, true
	}
	hdr := publish.MetaHeaders(0, time.Unix(0, l.MTime), l.UID, l.GID) // the link's own
	delete(hdr, "MODE")                                                // a link has no mode of its own
	hdr["LINK"] = l.Target
	return job{op: OpLink, vpath: l.VPath, hdr: hdr}, true
}

func coveredBy(subs []string, vpath string) bool {
	for _, s := range subs {
		if publish.Matches(s, vpath) {
			return true
		}
	}
	return false
}

func queueResync(ctx *interp.Ctx) error {
	p := serverState(ctx)
	res, ok := ctx.Value().(*resyncResult)
	if !ok {
		return fmt.Errorf("queue resync: value is %T, want a resync result", ctx.Value())
	}
	p.busy = false
	queued := 0
	before := p.gen // jobs queued from here on are this resync's own
	for i := range res.jobs {
		j := &res.jobs[i]
		if old := p.pending[j.vpath]; old != nil && old.gen > res.req.gen && old.gen <= before {
			continue // a change queued since the request is newer news
		}
		switch j.op {
		case OpMeta:
			p.queue = append(p.queue, &job{op: OpMeta, vpath: j.vpath, hdr: j.hdr})
			continue
		case OpError:
			p.queueError(j.vpath, j.reason)
			continue
		}
		p.enqueueJob(&job{op: j.op, vpath: j.vpath, offset: j.offset, size: j.size, hdr: j.hdr})
		queued++
	}
	if res.req.synced {
		p.queueMarker(res.req.sub)
	}
	ctx.Log().Info("subscribed", "path", res.req.sub, "queued", queued, "skipped", res.skipped, "resumed", res.resumed, "deleted", res.gone)
	if len(p.waiting) > 0 {
		next := p.waiting[0]
		p.waiting = p.waiting[1:]
		next.gen = p.gen
		p.startResync(ctx, next)
	}
	return nil
}

// queueError tells a client that asked for it (ERRORS=1) about a file we
// cannot send (operation 4, header ERROR). The report goes before the
// first synced marker still queued: a read failure is found when the
// file's turn comes, after its subscription's marker was queued, and a
// client that leaves at the marker (sync --once) would never see it.
func (p *FMQServerPeer) queueError(vpath, reason string) {
	if !p.Errors {
		return
	}
	j := &job{op: OpError, vpath: vpath, reason: reason}
	for i, q := range p.queue {
		if q != nil && q.op == OpSynced && !q.dead {
			p.queue = slices.Insert(p.queue, i, j)
			return
		}
	}
	p.queue = append(p.queue, j)
}

// cannotSend words a read failure for the client.
func cannotSend(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return "the server cannot read it: permission denied"
	}
	return "the server cannot read it: " + err.Error()
}

// enqueue adds a create or delete, superseding pending work on the same
// path and aborting it when it is the file being sent.
func (p *FMQServerPeer) enqueue(op uint8, vpath string, off, size int64) {
	p.enqueueJob(&job{op: op, vpath: vpath, offset: off, size: size})
}

// enqueueJob is enqueue for a prepared job (a link's or directory's
// carries headers).
func (p *FMQServerPeer) enqueueJob(j *job) {
	p.gen++
	j.gen = p.gen
	op, vpath := j.op, j.vpath
	if old := p.pending[vpath]; old != nil && (old.op != OpDelete || op == OpDelete) {
		// Superseded. A delete followed by something else stays: the
		// path may have changed kind (a directory replaced by a link),
		// and the old one must go first.
		old.dead = true
		p.dead++
		p.backlog -= old.remaining()
	}
	if p.cur != nil && p.cur.VPath() == vpath {
		p.cur.Close()
		p.cur = nil
	}
	if op == OpCreate {
		p.backlog += j.remaining()
	}
	p.pending[vpath] = j
	p.queue = append(p.queue, j)
	if p.dead > 64 && p.dead > len(p.queue)/2 {
		p.compact()
	}
}

// compact drops superseded jobs from the queue, so that repeated changes
// or subscriptions do not accumulate.
func (p *FMQServerPeer) compact() {
	live := p.queue[:0]
	for _, j := range p.queue {
		if !j.dead {
			live = append(live, j)
		}
	}
	clear(p.queue[len(live):])
	p.queue = live
	if cap(p.queue) > 2*len(p.queue)+64 {
		p.queue = append([]*job(nil), p.queue...)
	}
	p.dead = 0
}

func (p *FMQServerPeer) subscribed(vpath string) bool {
	for _, s := range p.Subs {
		if publish.Matches(s, vpath) {
			return true
		}
	}
	return false
}

func storeCredit(ctx *interp.Ctx) error {
	p := serverState(ctx)
	m := ctx.Msg().(*filemq.Nom)
	c := int64(m.Credit)
	if c < 0 || p.Credit+c < p.Credit { // over int64: cap instead of wrapping
		p.Credit = 1<<63 - 1
		return nil
	}
	p.Credit += c
	return nil
}

func queueChanges(ctx *interp.Ctx) error {
	p := serverState(ctx)
	changes, ok := ctx.Value().([]publish.Change)
	if !ok {
		return fmt.Errorf("queue changes: value is %T, want []publish.Change", ctx.Value())
	}
	for _, c := range changes {
		if !p.subscribed(c.VPath) {
			continue
		}
		if c.Op == publish.Reported {
			p.queueError(c.VPath, c.Reason)
			continue
		}
		switch c.Kind {
		case publish.KindDir:
			if !p.Dirs {
				continue
			}
			if c.Op == publish.Deleted {
				p.enqueue(OpDelete, c.VPath, 0, 0)
			} else {
				j := dirJob(publish.Dir{VPath: c.VPath, Mode: c.Mode, MTime: c.ModTime.UnixNano(), UID: c.UID, GID: c.GID})
				p.enqueueJob(&j)
			}
			continue
		case publish.KindLink:
			if c.Op == publish.Deleted {
				if p.Links {
					p.enqueue(OpDelete, c.VPath, 0, 0)
				}
				continue
			}
			p.queueLink(publish.Link{VPath: c.VPath, Target: c.Target, TargetVPath: c.TargetVPath,
				MTime: c.ModTime.UnixNano(), UID: c.UID, GID: c.GID})
			continue
		}
		if c.Op == publish.Deleted {
			p.enqueue(OpDelete, c.VPath, 0, 0)
		} else {
			p.enqueue(OpCreate, c.VPath, 0, c.Size)
		}
	}
	return nil
}

// queueLink queues a new or retargeted link: the link when its target
// stays inside a subscription that holds it, else a report (and a delete
// of the copy the client may hold of its previous target).
func (p *FMQServerPeer) queueLink(l publish.Link) {
	var report job
	for _, s := range p.Subs {
		if !publish.Matches(s, l.VPath) {
			continue
		}
		j, _ := linkJob(s, l, p.Links)
		if j.op == OpLink {
			p.enqueueJob(&j)
			return
		}
		report = j
	}
	if p.Links {
		p.enqueue(OpDelete, l.VPath, 0, 0)
	}
	p.queueError(report.vpath, report.reason)
}

// sendChunks is the flow-control loop. It never sends more content than
// the credit, never waits for credit to reach a whole chunk, and never
// re-sends a chunk (the C reference's fault).
func sendChunks(ctx *interp.Ctx) error { return deliver(ctx, false) }

// deliverOneFile delivers until one file is complete, then raises
// file-sent (the machine calls it again for the next file).
func deliverOneFile(ctx *interp.Ctx) error { return deliver(ctx, true) }

func deliver(ctx *interp.Ctx, oneFile bool) error {
	p := serverState(ctx)
	if p.srv == nil {
		return nil
	}
	chunkMax, budget := deliverLimits(ctx)
	p.startDispatch(ctx)
	out := ctx.Out("CHEEZBURGER").(*filemq.Cheezburger)
	for {
		ok, err := p.step(ctx, out, chunkMax, budget)
		if err != nil || !ok {
			return err
		}
		out.Sequence = p.Sequence
		err = ctx.Send(out)
		out.Chunk = nil
		p.release()
		if err != nil {
			return err
		}
		if p.sent() && oneFile {
			ctx.Raise("file-sent")
			return nil
		}
	}
}

// nextChunk is deliver with the machine sending: it prepares the next
// CHEEZBURGER within credit (peer.Next) and raises chunk; the machine
// sends it and calls nextChunk again on chunk, which accounts for the
// sent one and prepares the next.
func nextChunk(ctx *interp.Ctx) error { return offer(ctx, false) }

// nextChunkOneFile is nextChunk stopping at a file's end with file-sent.
func nextChunkOneFile(ctx *interp.Ctx) error { return offer(ctx, true) }

func offer(ctx *interp.Ctx, oneFile bool) error {
	p := serverState(ctx)
	if p.srv == nil {
		return nil
	}
	if ctx.Event() == EventChunk {
		// The machine sent p.Next.
		p.Next.Chunk = nil
		p.release()
		if p.sent() && p.oneFile {
			ctx.Raise("file-sent")
			return nil
		}
	} else {
		p.startDispatch(ctx)
		p.oneFile = oneFile
		p.chunkMax, p.budget = deliverLimits(ctx) // read once per dispatch, not per chunk
	}
	ok, err := p.step(ctx, &p.Next, p.chunkMax, p.budget)
	if err != nil || !ok {
		return err
	}
	p.Next.Sequence = p.Sequence
	ctx.Raise(EventChunk)
	return nil
}

// EventChunk is the internal event nextChunk raises: peer.Next is ready.
const EventChunk = "chunk"

// maxMsgsPerDispatch bounds the CHEEZBURGERs of one dispatch (each is an
// internal event of the machine, under its max_steps); the rest follows on
// send-more.
const maxMsgsPerDispatch = 4096

func deliverLimits(ctx *interp.Ctx) (chunkMax, budget int64) {
	chunkMax = ctx.Int("chunk_size")
	if chunkMax <= 0 {
		chunkMax = 1_000_000
	}
	budget = ctx.Int("dispatch_bytes")
	if budget <= 0 {
		budget = 4 << 20
	}
	return chunkMax, budget
}

// startDispatch begins a dispatch's share of the work.
func (p *FMQServerPeer) startDispatch(ctx *interp.Ctx) {
	if ctx.Event() == "send-more" {
		p.more = false
	}
	p.spent, p.msgs = 0, 0
}

// release returns the chunk buffer of the message just sent (or failed),
// and lets go of its file section unless the sender took it.
func (p *FMQServerPeer) release() {
	if p.fl.bp != nil {
		p.srv.putBuf(p.fl.bp)
		p.fl.bp = nil
	}
	if ps := p.fl.sec; ps != nil {
		p.fl.sec = nil
		if p.srv.sections.CompareAndDelete(p.fl.peer, ps) {
			ps.sec.Release()
		}
	}
}

// sent accounts for the message step prepared, now sent; it reports a
// file's last chunk.
func (p *FMQServerPeer) sent() (fileDone bool) {
	p.Sequence++
	fl := p.fl
	p.fl = flight{}
	if !fl.content {
		return false
	}
	p.Credit -= fl.got
	p.Bytes += fl.got
	p.curOff += fl.got
	if fl.eof {
		p.Files++
		p.cur.Close()
		p.cur = nil
		return true
	}
	return false
}

// flight is the message step prepared, until it is sent.
type flight struct {
	bp      *chunk          // the chunk's buffer (from FMQServer's pool)
	sec     *pendingSection // or the chunk's file section (SendFiles)
	peer    string          // the peer sec is registered for
	got     int64           // content bytes
	eof     bool
	content bool
}

// step prepares the next message into out, within the dispatch's budget,
// the credit and the connection's backlog; false when there is none now.
func (p *FMQServerPeer) step(ctx *interp.Ctx, out *filemq.Cheezburger, chunkMax, budget int64) (bool, error) {
	for {
		if p.spent >= budget || p.msgs >= maxMsgsPerDispatch {
			// This dispatch did its share: the rest follows behind the
			// client's other input (and other sessions get the cores).
			if !p.more {
				p.more = true
				ctx.Later("send-more", nil)
			}
			return false, nil
		}
		if p.cur == nil {
			if len(p.queue) == 0 {
				p.queue = p.queue[:0]
				return false, nil
			}
			j := p.queue[0]
			if j.op == OpCreate && !j.dead && j.remaining() > 0 && p.Credit <= 0 {
				return false, nil // open the file only when there is credit to send from it
			}
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if j.dead {
				p.dead--
				continue
			}
			if p.pending[j.vpath] == j {
				delete(p.pending, j.vpath)
			}
			if j.op == OpCreate {
				p.backlog -= j.remaining()
			}
			switch j.op {
			case OpDelete, OpSynced, OpError, OpMeta, OpLink, OpDir:
				out.Reset()
				out.Operation, out.Filename, out.EOF = j.op, j.vpath, 1
				if j.op == OpError {
					out.Headers = map[string]string{"ERROR": truncReason(j.reason)}
				}
				if j.op == OpMeta || j.op == OpLink || j.op == OpDir {
					out.Headers = j.hdr
				}
				if p.Origin && (j.op == OpDelete || j.op == OpMeta || j.op == OpLink) {
					if out.Headers == nil {
						out.Headers = make(map[string]string, 1)
					}
					out.Headers["ORIGIN"] = p.origin(j.vpath)
				}
				p.spent += 256 // a bounded number of these per dispatch too
				p.msgs++
				p.fl = flight{}
				return true, nil
			}
			r, err := p.srv.Tree.OpenAt(j.vpath, j.offset)
			if err != nil {
				// Gone or unreadable since it was queued: a delete change follows if it is gone.
				ctx.Log().Warn("cannot open published file", "path", j.vpath, "err", err)
				if !errors.Is(err, publish.ErrNotFound) && !errors.Is(err, publish.ErrChanged) {
					p.queueError(j.vpath, cannotSend(err))
				}
				continue
			}
			p.cur, p.curOff, p.curSize, p.first = r, j.offset, r.Size(), true
		}
		size := p.curSize
		n := min(int64(chunkMax), size-p.curOff, p.Credit)
		if n <= 0 && size > p.curOff {
			return false, nil // wait for credit
		}
		var (
			dig  chunksum.Digest
			have bool // dig is the chunk's digest, from the version's table
		)
		if p.ChunkDigest {
			dig, have = p.cur.ChunkDigest(p.curOff, n)
		}
		section := have && p.srv.SendFiles && n >= sectionMin
		high := backlogHigh
		if section {
			high = sectionBacklog
		}
		if q := p.queued(ctx); q > 0 && q+int(n) > high {
			// The connection holds enough already: wait off the dispatch
			// path for it to drain (enough for this chunk), then go on
			// (send-more).
			if !p.more {
				p.more = true
				peer := ctx.PeerID()
				below := max(1, min(backlogLow, high-int(n)+1))
				ctx.Go("send-more", func(c context.Context) (any, error) { p.srv.waitDrained(c, peer, below); return nil, nil })
			}
			return false, nil
		}
		var (
			bp  *chunk
			ps  *pendingSection
			buf []byte
			got int
			eof bool
			err error
		)
		if section {
			// Sent from the file: the client checks it against dig, which
			// describes the version the change check below vouches for.
			var sec *publish.Section
			sec, eof, err = p.cur.Section(p.curOff, n)
			if err == nil {
				buf, got = placeholder(int(n)), int(n)
				ps = &pendingSection{sec: sec, ph: &buf[0]}
				p.srv.sections.Store(ctx.PeerID(), ps)
			} else if errors.Is(err, publish.ErrNoSection) {
				err = nil
			}
		}
		if ps == nil && err == nil {
			bp = p.srv.chunkBuf(int(n))
			buf = bp.b
			got, eof, err = p.cur.ReadChunk(buf, p.curOff)
		}
		if eof && got > 0 && !p.InlineEOF {
			eof = false // C style: the file ends with a zero-length eof chunk, sent next
		}
		var eofHdr map[string]string
		if eof && err == nil {
			// SHA1 and SIZE; a large file's digest may still be being
			// computed in the background (publish.Reader.Digest).
			eofHdr, err = p.cur.Headers()
		}
		if err != nil {
			if bp != nil {
				p.srv.putBuf(bp)
			}
			if ps != nil {
				p.srv.sections.CompareAndDelete(ctx.PeerID(), ps)
				ps.sec.Release()
			}
			vpath := p.cur.VPath()
			p.cur.Close()
			p.cur = nil
			if errors.Is(err, publish.ErrChanged) {
				// Changed while being sent: start it again from 0 (the client
				// truncates its partial on a create at offset 0).
				ctx.Log().Info("file changed while sending; restarting it", "path", vpath)
				j := &job{op: OpCreate, vpath: vpath, size: p.curSize}
				p.backlog += j.remaining()
				p.pending[vpath] = j
				p.queue = append([]*job{j}, p.queue...)
				continue
			}
			ctx.Log().Warn("read failed; file skipped", "path", vpath, "err", err)
			p.queueError(vpath, cannotSend(err))
			continue
		}
		out.Reset()
		out.Operation, out.Filename, out.Offset = OpCreate, p.cur.VPath(), uint64(p.curOff)
		out.Chunk = buf[:got]
		if eof || p.first || p.ChunkDigest {
			// SHA1 and SIZE on the last chunk (verification); SIZE and
			// BACKLOG (bytes still queued for this client: progress, ETA)
			// on the first.
			h := p.hdr
			if eof {
				h = eofHdr
			}
			if h == nil {
				h = make(map[string]string, 3)
				p.hdr = h
			}
			h["SIZE"] = strconv.FormatInt(size, 10)
			if p.first {
				h["BACKLOG"] = strconv.FormatInt(p.backlog+size-p.curOff, 10)
			} else {
				delete(h, "BACKLOG")
			}
			if p.ChunkDigest {
				if !have {
					dig = chunksum.Of(buf[:got])
				}
				h[chunksum.Header] = dig.String()
			}
			if p.Origin && (eof || p.first) {
				h["ORIGIN"] = p.origin(p.cur.VPath())
			} else {
				delete(h, "ORIGIN")
			}
			out.Headers = h
			out.EOF = b2u(eof)
		}
		p.first = false
		p.spent += int64(got) + 256
		p.msgs++
		p.fl = flight{bp: bp, got: int64(got), eof: eof, content: true}
		if ps != nil {
			p.fl.sec, p.fl.peer = ps, ctx.PeerID()
		}
		return true, nil
	}
}

// origin is the ORIGIN header of vpath: the identity of the published
// directory it belongs to (publish.Tree.Origin).
func (p *FMQServerPeer) origin(vpath string) string {
	if p.srv == nil || p.srv.Tree == nil {
		return ""
	}
	return p.srv.Tree.Origin(vpath)
}

func truncReason(s string) string {
	if len(s) > 255 {
		return s[:252] + "..."
	}
	return s
}

func explainMalformed(ctx *interp.Ctx) error {
	reason := "malformed command"
	if err := ctx.Err(); err != nil {
		reason = err.Error()
	}
	ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason(reason)
	return nil
}

func explainUnexpected(ctx *interp.Ctx) error {
	switch m := ctx.Msg().(type) {
	case *filemq.Rtfm:
		return &interp.Exception{Event: "peer-error", Err: fmt.Errorf("client sent RTFM: %s", m.Reason)}
	case *filemq.Srsly:
		return &interp.Exception{Event: "peer-error", Err: fmt.Errorf("client sent SRSLY: %s", m.Reason)}
	}
	ctx.Out("RTFM").(*filemq.Rtfm).Reason = truncReason(fmt.Sprintf("unexpected %s in state %s", ctx.Event(), ctx.State()))
	return nil
}

func logDeparture(ctx *interp.Ctx) error {
	p := serverState(ctx)
	if err := ctx.Err(); err != nil {
		// An action failed: most often a send to a client whose connection
		// was just cut (the transport's Gone follows).
		ctx.Log().Warn("session ended by a failure", "err", err, "files", p.Files, "bytes", p.Bytes)
		return nil
	}
	ctx.Log().Info("client left", "event", ctx.Event(), "files", p.Files, "bytes", p.Bytes)
	return nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// queued is the number of bytes waiting in the client's write queue (0
// without FMQServer.Backlog).
func (p *FMQServerPeer) queued(ctx *interp.Ctx) int {
	if b := p.srv.Backlog; b != nil {
		return b(ctx.PeerID())
	}
	return 0
}
