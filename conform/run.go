package conform

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/transport"
)

// Options says what a script runs against.
type Options struct {
	// Target is the endpoint of the server a client-role script talks to.
	Target string
	// Listen is the endpoint a server-role script binds; the client under
	// test connects to it.
	Listen string
	// Work is the directory fixtures are written to ("" = a temporary
	// directory, removed afterwards). The script's mounts (default "pub")
	// are directories in it.
	Work string
	// PublishDir, if set, receives the fixtures of the script's first mount
	// (default "pub/...") instead of Work/pub: the directory an external
	// server publishes as its root. The runner empties it before each script
	// and refuses a non-empty directory without its marker file.
	PublishDir string
	// FixtureDelay is waited after writing fixtures or after a write/rm
	// step, to let an external server notice them.
	FixtureDelay time.Duration
	// Inbox is the inbox of the client under test (server-role scripts);
	// "" skips inbox steps.
	Inbox string
	// AssumeConfig runs scripts that set server settings or accounts
	// against a Target (the operator configured the server to match).
	AssumeConfig bool
	// Transcript receives every step and message as it happens.
	Transcript io.Writer
	// Logger receives the transport's (and in-process system's) logs.
	// nil = discarded.
	Logger *slog.Logger

	// started is called once the script's socket is up (in-process: starts
	// the system under test against it).
	started func(endpoint string) error
	// sutWire receives the system under test's own wire trace (in-process).
	sutWire func(string)
}

// Status is the outcome of a script.
type Status uint8

const (
	Pass     Status = iota + 1
	Fail            // an expectation failed, or the script is malformed
	Skip            // "skip", or the script needs what this run cannot give
	KnownBug        // failed after a "bug" line: the defect is still there
	BugFixed        // passed although marked "bug": remove the bug line
)

func (s Status) String() string {
	return map[Status]string{Pass: "PASS", Fail: "FAIL", Skip: "SKIP", KnownBug: "BUG", BugFixed: "BUGFIXED"}[s]
}

// Result is the outcome of one script.
type Result struct {
	Path    string
	Status  Status
	Err     error  // Fail/KnownBug: the failing expectation; Skip: why
	Bug     string // the bug line in force ("path:line: text")
	Elapsed time.Duration
	Skipped int // steps skipped (inbox steps without an inbox)
}

func (r *Result) String() string {
	s := fmt.Sprintf("%-8s %s (%s)", r.Status, r.Path, r.Elapsed.Round(time.Millisecond))
	switch r.Status {
	case Fail, Skip:
		if r.Err != nil {
			s += "\n    " + strings.ReplaceAll(r.Err.Error(), "\n", "\n    ")
		}
	case KnownBug:
		s += "\n    " + r.Bug + "\n    " + r.Err.Error()
	case BugFixed:
		s += "\n    passed, but marked " + r.Bug + ": remove the bug line"
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf("\n    (%d step(s) skipped: no inbox to check)", r.Skipped)
	}
	return s
}

// Failed reports whether the result should fail a test run.
func (r *Result) Failed() bool { return r.Status == Fail || r.Status == BugFixed }

// StepError is a failed step.
type StepError struct {
	Path string
	Line int
	Msg  string
}

func (e *StepError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// Run runs a script against opt.Target (client-role scripts) or on
// opt.Listen (server-role scripts).
func Run(ctx context.Context, s *Script, opt Options) *Result {
	t0 := time.Now()
	res := run(ctx, s, opt)
	res.Path, res.Elapsed = s.Path, time.Since(t0)
	return res
}

func skipped(format string, args ...any) *Result {
	return &Result{Status: Skip, Err: fmt.Errorf(format, args...)}
}

func run(ctx context.Context, s *Script, opt Options) *Result {
	if s.Skip != "" {
		return skipped("%s:%d: skip %s", s.Path, s.SkipLine, s.Skip)
	}
	external := opt.started == nil
	if s.Role == codec.FromClient && opt.Target == "" {
		return skipped("a client-role script needs a server: --target ENDPOINT")
	}
	if s.Role == codec.FromServer && opt.Listen == "" {
		return skipped("a server-role script needs a client: --listen ENDPOINT")
	}
	if external && s.Role == codec.FromClient {
		if s.NeedsServerConfig() && !opt.AssumeConfig {
			return skipped("sets server settings or accounts that only the in-process server honours (--assume-config to run it anyway)")
		}
		if s.hasFixtures() && opt.PublishDir == "" {
			return skipped("publishes fixtures: give --publish-fixtures DIR, the directory the target publishes as /")
		}
		if len(s.Mounts) > 1 && !opt.AssumeConfig {
			return skipped("publishes several mounts (in-process only; --assume-config to run it anyway)")
		}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Work == "" {
		dir, err := os.MkdirTemp("", "fmq-conform-")
		if err != nil {
			return &Result{Status: Fail, Err: err}
		}
		defer os.RemoveAll(dir)
		opt.Work = dir
	}
	ss := &session{s: s, opt: &opt, wake: make(chan struct{}, 1), timeout: s.Timeout}
	if s.Role == codec.FromClient && external {
		if err := ss.writeFixtures(); err != nil {
			return &Result{Status: Fail, Err: err}
		}
	}
	if err := ss.open(); err != nil {
		return &Result{Status: Fail, Err: err}
	}
	defer ss.close()
	if opt.started != nil {
		if err := opt.started(ss.endpoint); err != nil {
			return &Result{Status: Fail, Err: err}
		}
	}
	err := ss.steps(ctx)
	res := &Result{Status: Pass, Err: err, Skipped: ss.skippedSteps}
	if ss.bug != nil {
		res.Bug = fmt.Sprintf("%s:%d: bug %s", s.Path, ss.bug.Line, ss.bug.Note)
	}
	switch {
	case err != nil && ss.bug != nil:
		res.Status = KnownBug
	case err != nil:
		res.Status = Fail
	case ss.bug != nil:
		res.Status = BugFixed
	}
	return res
}

func (s *Script) hasFixtures() bool {
	for _, st := range s.Steps {
		if st.Kind == StepWrite || st.Kind == StepRemove {
			return true
		}
	}
	for _, f := range s.Files {
		if _, ok := s.mountPath(f.Name); ok {
			return true
		}
	}
	return false
}

// mountPath maps a section or write path ("pub/a.txt") to its mount index
// and the path inside the mount.
func (s *Script) mountPath(name string) (struct {
	mount int
	rel   string
}, bool) {
	for i, m := range s.Mounts {
		if rest, ok := strings.CutPrefix(name, m.Dir+"/"); ok && rest != "" {
			return struct {
				mount int
				rel   string
			}{i, rest}, true
		}
	}
	return struct {
		mount int
		rel   string
	}{}, false
}

// marker is the file that makes a --publish-fixtures directory ours.
const dirMarker = ".fmq-conform"

// session is one run of a script.
type session struct {
	s            *Script
	opt          *Options
	timeout      time.Duration
	bug          *Step
	skippedSteps int
	endpoint     string

	dealer *transport.Dealer
	router *transport.Router
	gen    int // dealer generation (reconnect)

	mu       sync.Mutex
	queue    []event
	closes   int  // connection ends not yet consumed by a closed step
	dead     bool // the dealer's connection is lost (final)
	peer     string
	peerGone bool            // the peer's connection ended; the next new identity is adopted
	others   []transport.Msg // frames from another identity, until the peer is gone
	done     chan struct{}
	pumps    sync.WaitGroup
	wake     chan struct{}
	trMu     sync.Mutex
}

type event struct {
	body []byte
	at   time.Time
}

func (ss *session) mountDir(i int) string {
	if i == 0 && ss.opt.PublishDir != "" {
		return ss.opt.PublishDir
	}
	return filepath.Join(ss.opt.Work, filepath.FromSlash(ss.s.Mounts[i].Dir))
}

// fixturePath is where a section or write path lives on disk.
func (ss *session) fixturePath(name string) (string, error) {
	mp, ok := ss.s.mountPath(name)
	if !ok {
		return "", fmt.Errorf("%q is not under a published directory (%s)", name, ss.mountNames())
	}
	if !filepath.IsLocal(filepath.FromSlash(mp.rel)) {
		return "", fmt.Errorf("%q leaves its published directory", name)
	}
	return filepath.Join(ss.mountDir(mp.mount), filepath.FromSlash(mp.rel)), nil
}

func (ss *session) mountNames() string {
	var n []string
	for _, m := range ss.s.Mounts {
		n = append(n, m.Dir+"/")
	}
	return strings.Join(n, ", ")
}

func (ss *session) writeFixtures() error {
	if d := ss.opt.PublishDir; d != "" {
		if err := prepareDir(d); err != nil {
			return err
		}
	}
	for i := range ss.s.Mounts {
		if err := os.MkdirAll(ss.mountDir(i), 0o755); err != nil {
			return err
		}
	}
	wrote := false
	for _, f := range ss.s.Files {
		if _, ok := ss.s.mountPath(f.Name); !ok {
			continue
		}
		p, err := ss.fixturePath(f.Name)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", ss.s.Path, f.Line, err)
		}
		if err := writeOld(p, f.Data); err != nil {
			return err
		}
		wrote = true
	}
	if wrote && ss.opt.FixtureDelay > 0 {
		time.Sleep(ss.opt.FixtureDelay)
	}
	return nil
}

// prepareDir empties a --publish-fixtures directory, which must be empty or
// carry the marker file of an earlier run.
func prepareDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		ents = nil
	} else if err != nil {
		return err
	}
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, dirMarker)); err != nil {
			return fmt.Errorf("publish directory %s is not empty and has no %s marker: refusing to empty it", dir, dirMarker)
		}
	}
	for _, e := range ents {
		if e.Name() == dirMarker {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, dirMarker), []byte("written by fmqrun conform; emptied before each script\n"), 0o644)
}

// writeOld writes a file atomically with a modification time an hour ago,
// so a publisher's stability window does not hold it back.
func writeOld(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), ".conform-tmp-"+filepath.Base(p))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (ss *session) topt() transport.Options { return transport.Options{Logger: ss.opt.Logger} }

func (ss *session) open() error {
	ss.done = make(chan struct{})
	if ss.s.Role == codec.FromClient {
		return ss.dial()
	}
	r, err := transport.Listen(ss.opt.Listen, ss.topt())
	if err != nil {
		return fmt.Errorf("listen %s: %w", ss.opt.Listen, err)
	}
	ss.router, ss.endpoint = r, r.Endpoint()
	ss.note("listening on %s", ss.endpoint)
	ss.pumps.Add(1)
	go func() {
		defer ss.pumps.Done()
		for {
			select {
			case m, ok := <-r.Recv():
				if !ok {
					return
				}
				ss.fromRouter(m)
			case g := <-r.Gone():
				ss.mu.Lock()
				mine := g == ss.peer
				var next []transport.Msg
				if mine {
					ss.closes++
					ss.peerGone = true
					next, ss.others = ss.others, nil
				}
				ss.mu.Unlock()
				if mine {
					ss.note("client connection closed")
					ss.poke()
					// A reconnected client may have spoken before the old
					// connection was reported gone.
					for _, m := range next {
						ss.fromRouter(m)
					}
				}
			case <-ss.done:
				return
			}
		}
	}()
	return nil
}

// fromRouter queues a frame from the client under test. The first identity
// that speaks is adopted, and after it disconnects the next new one; frames
// from another identity meanwhile are held until the current one is gone.
func (ss *session) fromRouter(m transport.Msg) {
	ss.mu.Lock()
	adopted := ss.peer != m.Peer && (ss.peer == "" || ss.peerGone)
	if adopted {
		ss.peer, ss.peerGone = m.Peer, false
	}
	mine := ss.peer == m.Peer
	if !mine {
		if len(ss.others) < 1024 {
			ss.others = append(ss.others, m)
		}
	}
	ss.mu.Unlock()
	if adopted {
		ss.note("client %q connected", m.Peer)
	}
	if mine {
		ss.push(m.Body)
	}
}

func (ss *session) dial() error {
	d, err := transport.Dial(ss.opt.Target, ss.topt())
	if err != nil {
		return fmt.Errorf("connect %s: %w", ss.opt.Target, err)
	}
	ss.mu.Lock()
	ss.gen++
	gen := ss.gen
	ss.dealer, ss.dead = d, false
	ss.mu.Unlock()
	ss.endpoint = ss.opt.Target
	ss.pumps.Add(1)
	go func() {
		defer ss.pumps.Done()
		for m := range d.Recv() {
			ss.push(m.Body)
		}
		ss.mu.Lock()
		if ss.gen == gen {
			ss.dead = true
			ss.closes++
		}
		ss.mu.Unlock()
		ss.poke()
	}()
	return nil
}

func (ss *session) push(body []byte) {
	ss.mu.Lock()
	ss.queue = append(ss.queue, event{body: body, at: time.Now()})
	ss.mu.Unlock()
	ss.poke()
}

func (ss *session) poke() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

func (ss *session) close() {
	close(ss.done)
	if ss.dealer != nil {
		ss.dealer.Close()
	}
	if ss.router != nil {
		ss.router.Close()
	}
	ss.pumps.Wait()
}

func (ss *session) send(body []byte) error {
	if ss.router != nil {
		ss.mu.Lock()
		peer := ss.peer
		ss.mu.Unlock()
		if peer == "" {
			return errors.New("no client has connected and spoken yet: expect its first message before sending")
		}
		return ss.router.Send(peer, bytes.Clone(body))
	}
	return ss.dealer.Send(bytes.Clone(body))
}

// note writes a transcript line.
func (ss *session) note(format string, args ...any) {
	if ss.opt.Transcript == nil {
		return
	}
	ss.trMu.Lock()
	defer ss.trMu.Unlock()
	fmt.Fprintf(ss.opt.Transcript, format+"\n", args...)
}

func (ss *session) fail(st *Step, format string, args ...any) error {
	return &StepError{Path: ss.s.Path, Line: st.Line, Msg: fmt.Sprintf(format, args...)}
}

// wait blocks until something arrives, the deadline passes (false) or ctx ends.
func (ss *session) wait(ctx context.Context, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ss.wake:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (ss *session) window(st *Step) time.Duration {
	if st.Within > 0 {
		return st.Within
	}
	return ss.timeout
}

func (ss *session) steps(ctx context.Context) error {
	for i := range ss.s.Steps {
		st := &ss.s.Steps[i]
		if err := ctx.Err(); err != nil {
			return ss.fail(st, "%v", err)
		}
		var err error
		switch st.Kind {
		case StepComment:
			ss.note("%s:%d: # %s", ss.s.Path, st.Line, st.Note)
		case StepBug:
			ss.bug = st
			ss.note("%s:%d: bug %s", ss.s.Path, st.Line, st.Note)
		case StepTimeout:
			ss.timeout = st.Dur
		case StepSleep:
			select {
			case <-time.After(st.Dur):
			case <-ctx.Done():
			}
		case StepSend:
			err = ss.doSend(st)
		case StepExpect:
			err = ss.expect(ctx, st)
		case StepNone:
			err = ss.none(ctx, st)
		case StepClosed:
			err = ss.closed(ctx, st)
		case StepReconnect:
			err = ss.reconnect(st)
		case StepDrain:
			ss.mu.Lock()
			q := ss.queue
			ss.queue = nil
			ss.mu.Unlock()
			for _, ev := range q {
				ss.note("%s:%d: drained %s", ss.s.Path, st.Line, ss.describe(ev.body, ss.other()))
			}
		case StepInbox:
			err = ss.inbox(ctx, st)
		case StepWrite, StepRemove:
			err = ss.change(st)
		}
		if err != nil {
			ss.note("%v", err)
			return err
		}
	}
	return nil
}

func (ss *session) describe(body []byte, dir codec.Direction) string {
	letter := "C"
	if dir == codec.FromServer {
		letter = "S"
	}
	m, err := ss.s.Proto.Decode(body, nil)
	if err != nil {
		h := hex.EncodeToString(body)
		if len(h) > 64 {
			h = h[:64] + "..."
		}
		return fmt.Sprintf("%s: malformed (%v) %d bytes: %s", letter, err, len(body), h)
	}
	return interp.FormatMessage(letter, m)
}

func (ss *session) doSend(st *Step) error {
	ss.note("%s:%d: > %s", ss.s.Path, st.Line, ss.describe(st.Frame, st.Dir))
	if err := ss.send(st.Frame); err != nil {
		return ss.fail(st, "send %s: %v", st.Text, err)
	}
	return nil
}

func (ss *session) other() codec.Direction {
	if ss.s.Role == codec.FromClient {
		return codec.FromServer
	}
	return codec.FromClient
}

func ms(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Millisecond).String()
}

func (ss *session) expect(ctx context.Context, st *Step) error {
	win := ss.window(st)
	t0 := time.Now()
	deadline := t0.Add(win)
	for {
		ss.mu.Lock()
		if len(ss.queue) > 0 {
			ev := ss.queue[0]
			ss.queue = ss.queue[1:]
			ss.mu.Unlock()
			got := ss.describe(ev.body, st.Dir)
			ss.note("%s:%d: < %s (+%s)", ss.s.Path, st.Line, got, ms(ev.at.Sub(t0)))
			if why := ss.mismatch(st, ev.body); why != "" {
				return ss.fail(st, "want %s; got %s after %s (%s)", ss.want(st, win), got, ms(ev.at.Sub(t0)), why)
			}
			return nil
		}
		dead := ss.dead
		ss.mu.Unlock()
		if dead {
			return ss.fail(st, "want %s; got connection closed after %s", ss.want(st, win), ms(time.Since(t0)))
		}
		if !ss.wait(ctx, deadline) && time.Now().After(deadline) || ctx.Err() != nil {
			ss.mu.Lock()
			n := len(ss.queue)
			ss.mu.Unlock()
			if n > 0 {
				continue
			}
			return ss.fail(st, "want %s; got nothing", ss.want(st, win))
		}
	}
}

// want is an expectation as written, with its window.
func (ss *session) want(st *Step, win time.Duration) string {
	if st.Within > 0 {
		return st.Text
	}
	return fmt.Sprintf("%s within %s", st.Text, win)
}

func (ss *session) none(ctx context.Context, st *Step) error {
	win := ss.window(st)
	t0 := time.Now()
	deadline := t0.Add(win)
	seen := 0
	for {
		ss.mu.Lock()
		for ; seen < len(ss.queue); seen++ {
			ev := ss.queue[seen]
			if ss.mismatch(st, ev.body) == "" {
				ss.mu.Unlock()
				got := ss.describe(ev.body, st.Dir)
				return ss.fail(st, "want %s; got %s after %s", st.Text, got, ms(ev.at.Sub(t0)))
			}
		}
		ss.mu.Unlock()
		if !ss.wait(ctx, deadline) && (time.Now().After(deadline) || ctx.Err() != nil) {
			ss.mu.Lock()
			more := seen < len(ss.queue)
			ss.mu.Unlock()
			if more {
				continue
			}
			ss.note("%s:%d: %s: ok", ss.s.Path, st.Line, st.Text)
			return nil
		}
	}
}

func (ss *session) closed(ctx context.Context, st *Step) error {
	win := ss.window(st)
	t0 := time.Now()
	deadline := t0.Add(win)
	for {
		ss.mu.Lock()
		if ss.closes > 0 {
			if !st.Neg {
				ss.closes--
			}
			ss.mu.Unlock()
			if st.Neg {
				return ss.fail(st, "want %s; got the connection closed after %s", st.Text, ms(time.Since(t0)))
			}
			ss.note("%s:%d: closed (+%s)", ss.s.Path, st.Line, ms(time.Since(t0)))
			return nil
		}
		ss.mu.Unlock()
		if !ss.wait(ctx, deadline) && (time.Now().After(deadline) || ctx.Err() != nil) {
			if st.Neg {
				ss.note("%s:%d: %s: ok", ss.s.Path, st.Line, st.Text)
				return nil
			}
			return ss.fail(st, "want the connection closed within %s; it is still open", win)
		}
	}
}

func (ss *session) reconnect(st *Step) error {
	if ss.dealer == nil {
		return ss.fail(st, "reconnect is for client-role scripts")
	}
	old := ss.dealer
	ss.mu.Lock()
	ss.gen++ // the old pump must not report this close
	ss.queue = nil
	ss.mu.Unlock()
	old.Close()
	if err := ss.dial(); err != nil {
		return ss.fail(st, "%v", err)
	}
	ss.note("%s:%d: reconnected", ss.s.Path, st.Line)
	return nil
}

// mismatch returns why a frame does not match an expectation ("" = it matches).
func (ss *session) mismatch(st *Step, body []byte) string {
	m, err := ss.s.Proto.Decode(body, nil)
	if err != nil {
		if st.Name == "" && st.Kind == StepNone {
			return "" // anything at all breaks a silence
		}
		return "malformed: " + err.Error()
	}
	if st.Name == "" {
		return ""
	}
	if m.Info().Name != st.Name {
		return "want " + st.Name
	}
	for i := range st.Match {
		if why := st.Match[i].check(m); why != "" {
			return why
		}
	}
	return ""
}

// check returns why a message fails the matcher ("" = it passes).
func (mt *Matcher) check(m codec.Message) string {
	v, ok := m.Get(mt.Field)
	if !ok {
		return "no field " + mt.Field
	}
	if mt.HasKey {
		h, _ := v.(map[string]string)
		hv, ok := h[mt.Key]
		if !ok {
			return fmt.Sprintf("%s has no key %q", mt.Field, mt.Key)
		}
		if mt.Re != nil {
			if !mt.Re.MatchString(hv) {
				return fmt.Sprintf("%s.%s is %q, want match of %s", mt.Field, mt.Key, hv, mt.Re)
			}
			return ""
		}
		if hv != mt.Want.(string) {
			return fmt.Sprintf("%s.%s is %q, want %q", mt.Field, mt.Key, hv, mt.Want)
		}
		return ""
	}
	if mt.Len {
		n := -1
		switch v := v.(type) {
		case []byte:
			n = len(v)
		case string:
			n = len(v)
		}
		if n != mt.N {
			return fmt.Sprintf("%s has %d bytes, want %d", mt.Field, n, mt.N)
		}
		return ""
	}
	if mt.Re != nil {
		t := fieldText(v)
		if !mt.Re.MatchString(t) {
			return fmt.Sprintf("%s is %s, want match of %s", mt.Field, show(t), mt.Re)
		}
		return ""
	}
	if !equal(v, mt.Want) {
		return fmt.Sprintf("%s is %s, want %s", mt.Field, showValue(v), showValue(mt.Want))
	}
	return ""
}

func showValue(v any) string {
	switch v.(type) {
	case string, []byte:
		return show(fieldText(v))
	}
	return fieldText(v)
}

func show(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return strconv.Quote(s)
}

// fieldText is a field's text for regexp matching: numbers in decimal,
// strings and chunks as their bytes, hashes and lists in the trace form.
func fieldText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k) + "=" + strconv.Quote(v[k]))
		}
		b.WriteByte('}')
		return b.String()
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ",") + "]"
	}
	return fmt.Sprint(v)
}

func equal(got, want any) bool {
	switch w := want.(type) {
	case []byte:
		g, _ := got.([]byte)
		return bytes.Equal(g, w)
	case map[string]string:
		g, _ := got.(map[string]string)
		if len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || gv != v {
				return false
			}
		}
		return true
	case []string:
		g, _ := got.([]string)
		if len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i] != w[i] {
				return false
			}
		}
		return true
	}
	return got == want
}

func (ss *session) inbox(ctx context.Context, st *Step) error {
	if ss.opt.Inbox == "" {
		ss.skippedSteps++
		ss.note("%s:%d: %s: skipped (no inbox)", ss.s.Path, st.Line, st.Text)
		return nil
	}
	if filepath.IsAbs(st.Path) {
		return ss.fail(st, "%s: paths are relative to the inbox", st.Path)
	}
	base := ss.opt.Inbox
	if strings.HasPrefix(st.Op, "outside ") {
		base = filepath.Dir(filepath.Clean(base))
	}
	p := filepath.Join(base, filepath.FromSlash(st.Path))
	win := ss.window(st)
	deadline := time.Now().Add(win)
	for {
		data, err := os.ReadFile(p)
		switch st.Op {
		case "absent", "outside absent":
			if _, lerr := os.Lstat(p); lerr == nil {
				return ss.fail(st, "want %s absent; it exists (%d bytes)", p, len(data))
			}
			ss.note("%s:%d: %s: ok", ss.s.Path, st.Line, st.Text)
			return nil
		case "exists":
			if err == nil {
				ss.note("%s:%d: %s: ok", ss.s.Path, st.Line, st.Text)
				return nil
			}
		case "cmp":
			if err == nil && bytes.Equal(data, st.Data) {
				ss.note("%s:%d: %s: ok", ss.s.Path, st.Line, st.Text)
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return ss.fail(st, "want %s within %s; %v", st.Text, win, err)
			}
			return ss.fail(st, "want %s within %s; it holds %d bytes (%s), want %d", st.Text, win, len(data), show(string(data)), len(st.Data))
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

func (ss *session) change(st *Step) error {
	p, err := ss.fixturePath(st.Path)
	if err != nil {
		return ss.fail(st, "%v", err)
	}
	if st.Kind == StepWrite {
		err = writeOld(p, st.Data)
	} else {
		err = os.Remove(p)
	}
	if err != nil {
		return ss.fail(st, "%v", err)
	}
	ss.note("%s:%d: %s", ss.s.Path, st.Line, st.Text)
	if ss.opt.FixtureDelay > 0 {
		time.Sleep(ss.opt.FixtureDelay)
	}
	return nil
}
