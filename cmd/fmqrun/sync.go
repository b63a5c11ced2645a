package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/internal/exclude"
	"github.com/fmq/fmq/internal/memlimit"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/transport"
)

func init() {
	register(&command{
		Name:    "sync",
		Usage:   "--connect ENDPOINT [--subscribe PATH]... --inbox DIR [--once]",
		Summary: "mirror subscribed paths into an inbox (keeps running unless --once)",
		Run:     runSync,
	})
}

// Exit codes of sync (and relay), documented in --help and the README.
const (
	exitOK          = 0 // in sync: every file transferred
	exitPartial     = 1 // some files were not transferred (see problems, refused, conflicts, server_errors)
	exitUsage       = 2 // bad command line or configuration
	exitInterrupted = 3 // --once interrupted (SIGINT, SIGTERM) before the end of the sync
	exitConnect     = 4 // cannot connect: unknown host or nothing answering when --timeout ends the retries
	exitRefused     = 5 // refused by the server: login (SRSLY), protocol or subscription (RTFM), ZeroMQ PLAIN
	exitTimeout     = 6 // --timeout elapsed before the sync completed
	exitFailed      = 7 // local failure: the inbox cannot be opened or is in use by another client
)

const exitCodesHelp = `exit codes:
  0  in sync: every file transferred
  1  partial transfer: some files were not transferred (problems, refused, conflicts, server errors)
  2  usage error
  3  interrupted (SIGINT, SIGTERM) before --once finished (a live sync stopped so ends with 0)
  4  cannot connect: unknown host or nothing answering when --timeout ends the retries
  5  refused by the server (login, protocol, a subscription it will not serve, ZeroMQ PLAIN)
  6  --timeout elapsed before the sync completed
  7  local failure (the inbox cannot be opened, or another client is using it)
`

// maxListed bounds the per-file messages kept for the summary.
const maxListed = 100

// syncSummary is the --json line and the source of the text summary.
type syncSummary struct {
	Status       string   `json:"status"` // ok, partial, interrupted, cannot-connect, refused, timeout, failed
	ExitCode     int      `json:"exit_code"`
	Files        int64    `json:"files"`
	Deleted      int64    `json:"deleted"`
	Bytes        int64    `json:"bytes"`
	ResumedBytes int64    `json:"resumed_bytes"`
	Problems     int64    `json:"problems"`      // files that could not be stored here
	Refused      int64    `json:"refused"`       // unsafe or unsubscribed names the server sent
	Conflicts    int64    `json:"conflicts"`     // server files not installed over files fmq did not write
	ServerErrors int64    `json:"server_errors"` // files the server could not send
	Kept         int64    `json:"kept"`          // files fmq did not write, kept although the server has no such file
	Excluded     int64    `json:"excluded"`      // server files and deletes not applied: sync --exclude
	Links        int64    `json:"links"`         // symbolic links made or retargeted
	Dirs         int64    `json:"dirs"`          // directories the server announced (created, or found)
	Sessions     int      `json:"sessions"`
	ElapsedMS    int64    `json:"elapsed_ms"`
	FirstByteMS  int64    `json:"first_byte_ms"`
	CreditWindow int64    `json:"credit_window"`
	NoSynced     bool     `json:"no_synced_marker,omitempty"` // the server never sent the synced marker: --once waited for quiet
	Messages     []string `json:"messages,omitempty"`         // per-file problems, first 100
	Error        string   `json:"error,omitempty"`
}

type clientFlags struct {
	connect, inbox, login, passwordFile, machine string
	zmtpLogin, zmtpPasswordFile                  string
	curveServerKey, curveSecretFile              string
	subs, excludes                               multiFlag
	once, fsync, delete, numericIDs              bool
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.connect, "connect", "", "server endpoint, e.g. tcp://127.0.0.1:5670")
	fs.Var(&f.subs, "subscribe", "virtual path to mirror (repeatable; default /)")
	fs.StringVar(&f.inbox, "inbox", "", "directory to mirror into (created if missing)")
	fs.StringVar(&f.login, "login", "", "PLAIN login, when the server requires authentication")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the PLAIN password (or set FMQ_PASSWORD)")
	fs.StringVar(&f.zmtpLogin, "zmtp-login", "", "ZeroMQ (ZMTP) PLAIN login, when the server requires it at connection time")
	fs.StringVar(&f.zmtpPasswordFile, "zmtp-password-file", "", "file holding the ZMTP PLAIN password")
	fs.StringVar(&f.curveServerKey, "curve-server-key", "", "encrypt with ZeroMQ CURVE: the server's public key (40 Z85 characters, or its NAME.pub file)")
	fs.StringVar(&f.curveSecretFile, "curve-secret-file", "", "with CURVE, our own secret key file (fmqrun keygen; default: a fresh key pair per run)")
	fs.StringVar(&f.machine, "machine", "", "client machine file (default: the embedded fmq_client.toml)")
	fs.BoolVar(&f.delete, "delete", false, "exact mirror: also delete and overwrite files fmq did not write, when the server deletes or sends them (never outside the subscriptions)")
	fs.Var(&f.excludes, "exclude", "neither write nor delete inbox files matching this pattern (repeatable; the syntax of serve --exclude, from the inbox: \"*.tmp\", \"/local/\", \".git/\")")
	fs.BoolVar(&f.numericIDs, "numeric-ids", false, "give files the server's owner and group ids as they are (rsync --numeric-ids), not this machine's ids for the server's user and group names; owners are set only when running as root, groups when root or a member")
	fs.BoolVar(&f.fsync, "fsync", false, "flush each received file to disk before renaming it into place (durable across power loss; slower)")
}

// config builds a host.ClientConfig from flags over the config file.
func (f *clientFlags) config(fs *flag.FlagSet, cf *commonFlags, cfg *Config, log *slog.Logger) (host.ClientConfig, error) {
	given := setFlags(fs)
	subs := []string(f.subs)
	if len(subs) == 0 {
		subs = cfg.Client.Subscribe
	}
	settings, err := cf.overrides(cfg.Client.Settings)
	if err != nil {
		return host.ClientConfig{}, err
	}
	cc := host.ClientConfig{
		Machine:    pick(given["machine"], f.machine, cfg.Client.Machine, ""),
		Connect:    pick(given["connect"], f.connect, cfg.Client.Connect, ""),
		Subscribe:  subs,
		Inbox:      pick(given["inbox"], f.inbox, cfg.Client.Inbox, ""),
		Settings:   settings,
		Login:      pick(given["login"], f.login, cfg.Client.Login, ""),
		Logger:     log,
		Trace:      cf.trace,
		Fsync:      f.fsync || cfg.Client.Fsync,
		Delete:     f.delete || cfg.Client.Delete,
		NumericIDs: f.numericIDs || cfg.Client.NumericIDs,
		Exclude:    append([]string(nil), f.excludes...),
	}
	if len(cc.Exclude) == 0 {
		cc.Exclude = cfg.Client.Exclude
	}
	if _, err := exclude.Compile(cc.Exclude); err != nil {
		return cc, err
	}
	if cc.Connect == "" || cc.Inbox == "" {
		return cc, errors.New("--connect and --inbox are required")
	}
	if err := checkConnect(cc.Connect); err != nil {
		return cc, err
	}
	if pf := pick(given["password-file"], f.passwordFile, cfg.Client.PasswordFile, ""); pf != "" {
		pw, err := readSecret(pf)
		if err != nil {
			return cc, err
		}
		cc.Password = pw
	} else {
		cc.Password = os.Getenv("FMQ_PASSWORD")
	}
	if zl := pick(given["zmtp-login"], f.zmtpLogin, cfg.Client.ZMTPLogin, ""); zl != "" {
		pw := ""
		if pf := pick(given["zmtp-password-file"], f.zmtpPasswordFile, cfg.Client.ZMTPPasswordFile, ""); pf != "" {
			var err error
			if pw, err = readSecret(pf); err != nil {
				return cc, err
			}
		}
		cc.Transport.PlainClient = &transport.PlainCredentials{Username: zl, Password: pw}
	}
	curve, err := clientCurve(pick(given["curve-server-key"], f.curveServerKey, cfg.Client.CurveServerKey, ""),
		pick(given["curve-secret-file"], f.curveSecretFile, cfg.Client.CurveSecret, ""))
	if err != nil {
		return cc, err
	}
	if curve != nil && cc.Transport.PlainClient != nil {
		return cc, errors.New("--zmtp-login and --curve-server-key cannot be combined (a ZeroMQ connection has one mechanism); with CURVE, use --login for FileMQ logins")
	}
	cc.Transport.CurveClient = curve
	return cc, nil
}

func runSync(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "sync")
	fs.SetOutput(env.Stderr)
	var cf commonFlags
	cf.register(fs)
	var f clientFlags
	f.register(fs)
	fs.BoolVar(&f.once, "once", false, "exit once the tree is in sync (see the exit codes below)")
	timeout := fs.Duration("timeout", 0, "with --once: give up after this long (exit 4 if never connected, else 6)")
	jsonOut := fs.Bool("json", false, "print the summary as one JSON line on stdout")
	progress := fs.String("progress", "auto", "progress bar: auto (on a terminal), always, never")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fmqrun sync --connect ENDPOINT [--subscribe PATH]... --inbox DIR [flags]\n\n"+
			"Mirrors subscribed paths into DIR; keeps running and applying changes unless --once.\n"+
			"Ctrl-C leaves politely (KTHXBAI) and keeps a partial file resumable.\n"+
			"Files fmq did not write, or wrote for another server, are never deleted or overwritten\n"+
			"unless --delete is given (and never outside the subscriptions).\n"+
			"Mode, mtime, owner and group are kept as rsync -a keeps them (owners only as root).\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\n"+exitCodesHelp)
	}
	if rest, err := parseInterspersed(fs, args); err != nil || len(rest) > 0 {
		if err != nil {
			return flagExit(err)
		}
		fmt.Fprintf(env.Stderr, "fmqrun sync: unexpected arguments %q\n", rest)
		return 2
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun sync:", err)
		return 2
	}
	log, err := cf.logger(env.Stderr, cfg)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun sync:", err)
		return 2
	}
	stopProfile, err := cf.profile()
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun sync:", err)
		return 1
	}
	defer stopProfile()
	cc, err := f.config(fs, &cf, cfg, log)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun sync:", err)
		return 2
	}
	cc.Once = f.once || cfg.Client.Once
	if *timeout < 0 || (*timeout > 0 && !cc.Once) {
		fmt.Fprintln(env.Stderr, "fmqrun sync: --timeout needs --once and a positive duration")
		return exitUsage
	}
	cc.WireTo = cf.wireTo(cc.Connect)
	defer setClientMemoryLimit(cc.Settings, log).Stop()
	sum, err := syncRun(ctx, env, cc, *progress, *timeout, log)
	if *jsonOut {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(env.Stdout, string(b))
	} else {
		printSummary(env.Stderr, "fmqrun sync", sum)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun sync:", err)
	}
	return sum.ExitCode
}

// printSummary writes the text summary: counts, then what went wrong.
func printSummary(w io.Writer, who string, sum syncSummary) {
	fmt.Fprintf(w, "%s: %s: %d files (%s) received, %d deleted, %s resumed, %d problems, %d refused, %d conflicts, %d server errors, %d kept, in %s over %d session(s)\n",
		who, sum.Status, sum.Files, humanBytes(sum.Bytes), sum.Deleted, humanBytes(sum.ResumedBytes), sum.Problems, sum.Refused,
		sum.Conflicts, sum.ServerErrors, sum.Kept, time.Duration(sum.ElapsedMS)*time.Millisecond, sum.Sessions)
	if sum.Excluded > 0 {
		fmt.Fprintf(w, "  %d server files and deletes not applied: excluded (--exclude)\n", sum.Excluded)
	}
	if sum.Links > 0 {
		fmt.Fprintf(w, "  %d symbolic links made\n", sum.Links)
	}
	for _, m := range sum.Messages {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if n := sum.Problems + sum.Refused + sum.Conflicts + sum.ServerErrors - int64(len(sum.Messages)); n > 0 && len(sum.Messages) == maxListed {
		fmt.Fprintf(w, "  ... and more (see the log)\n")
	}
}

// outcome decides the status and exit code of a finished sync.
func outcome(sum *syncSummary, err error, once, interrupted, timedOut, connected bool) {
	bad := sum.Problems + sum.Refused + sum.Conflicts + sum.ServerErrors
	switch {
	case errors.Is(err, host.ErrRefused):
		sum.Status, sum.ExitCode = "refused", exitRefused
	case errors.Is(err, host.ErrCannotConnect), timedOut && !connected:
		sum.Status, sum.ExitCode = "cannot-connect", exitConnect
	case timedOut:
		sum.Status, sum.ExitCode = "timeout", exitTimeout
	case interrupted && once:
		sum.Status, sum.ExitCode = "interrupted", exitInterrupted
	case err != nil && !errors.Is(err, host.ErrPartial):
		sum.Status, sum.ExitCode = "failed", exitFailed
	case err != nil, bad > 0:
		sum.Status, sum.ExitCode = "partial", exitPartial
	default:
		sum.Status, sum.ExitCode = "ok", exitOK
	}
}

// syncRun runs a client until it is done (--once), interrupted or refused.
// The summary's Status and ExitCode tell how it ended.
func syncRun(ctx context.Context, env *Env, cc host.ClientConfig, progress string, timeout time.Duration, log *slog.Logger) (syncSummary, error) {
	start := time.Now()
	var msgMu sync.Mutex
	var msgs []string
	cc.OnNote = func(n interp.Notification) {
		switch n.Name {
		case actions.NoteProblem, actions.NoteRefused, actions.NoteConflict, actions.NoteError:
			msgMu.Lock()
			if len(msgs) < maxListed {
				msgs = append(msgs, fmt.Sprintf("%s: %v", n.Name, n.Value))
			}
			msgMu.Unlock()
		}
	}
	cl, err := host.StartClient(cc)
	if err != nil {
		sum := syncSummary{Error: err.Error()}
		outcome(&sum, err, cc.Once, false, false, false)
		return sum, err
	}
	if cc.Machine != "" {
		// Like serve: SIGHUP or a change of the file reloads it; the next
		// session (after a reconnect) runs the new machine.
		stop, err := watchReload(ctx, log, cl.Engine(), cc.Machine)
		if err != nil {
			log.Warn("reload on file change disabled (SIGHUP still reloads)", "err", err)
		}
		defer stop()
	}
	// Said once reloads are watched: a change made after this line is seen.
	m := cl.Engine().Machine()
	log.Info("syncing", "connect", cc.Connect, "machine", m.File, "hash", m.Hash)
	bar := newBar(env.Stderr, progress)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	procs := newProcsFollower()
	defer procs.stop()
	var procsTick <-chan time.Time
	if procs != nil {
		t := time.NewTicker(procsEvery)
		defer t.Stop()
		procsTick = t.C
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	interrupted, timedOut := false, false
loop:
	for {
		select {
		case <-cl.Done():
			break loop
		case <-deadline:
			timedOut = true
			log.Warn("--timeout elapsed: leaving (KTHXBAI), partial file kept", "timeout", timeout)
			cl.Stop()
			select {
			case <-cl.Done():
			case <-time.After(3 * time.Second):
			}
			break loop
		case <-ctx.Done():
			if !interrupted {
				interrupted = true
				log.Info("interrupted: leaving (KTHXBAI), partial file kept")
				cl.Stop()
			}
			select { // a server that never answers must not keep us: Close below cuts it
			case <-cl.Done():
			case <-time.After(3 * time.Second):
			}
			break loop
		case <-tick.C:
			bar.update(cl.Stats())
		case <-procsTick:
			st := cl.Stats()
			procs.update(st.Files.Load(), st.Bytes.Load())
		}
	}
	bar.update(cl.Stats())
	bar.finish()
	cerr := cl.Close()
	st := cl.Stats()
	sum := syncSummary{
		Files: st.Files.Load(), Deleted: st.Deleted.Load(), Bytes: st.Bytes.Load(),
		ResumedBytes: st.Resumed.Load(), Problems: st.Problems.Load(), Refused: st.Refused.Load(),
		Conflicts: st.Conflicts.Load(), ServerErrors: st.Errors.Load(), Kept: st.Kept.Load(),
		Excluded: st.Excluded.Load(), Links: st.Links.Load(), Dirs: st.Dirs.Load(), Sessions: cl.Sessions(), ElapsedMS: time.Since(start).Milliseconds(), CreditWindow: st.Window.Load(),
		NoSynced: cl.NoSyncedMarker(),
	}
	msgMu.Lock()
	sum.Messages = append([]string(nil), msgs...)
	msgMu.Unlock()
	if fb := st.FirstByte.Load(); fb > 0 {
		sum.FirstByteMS = time.Unix(0, fb).Sub(start).Milliseconds()
	}
	if cerr == nil && cc.Once && !interrupted && !timedOut {
		select {
		case <-cl.Synced():
		default: // the machine ended without a sync and without saying why
			cerr = errors.New("the client ended before the sync completed (see the log)")
		}
	}
	if cerr != nil {
		sum.Error = cerr.Error()
	}
	outcome(&sum, cerr, cc.Once, interrupted, timedOut, cl.Connected())
	return sum, cerr
}

// bar is the terminal progress bar; silent unless stderr is a terminal.
type bar struct {
	pb *progressbar.ProgressBar
}

func newBar(w io.Writer, mode string) *bar {
	on := mode == "always"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			on = true
		}
	}
	if !on {
		return &bar{}
	}
	pb := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetDescription("syncing"),
		progressbar.OptionFullWidth(),
	)
	pb.Set64(0) // start the bar's clock now: its rate and ETA count from the start of the sync
	return &bar{pb: pb}
}

func (b *bar) update(st *actions.ClientStats) {
	if b.pb == nil {
		return
	}
	got := st.Bytes.Load()
	if total := st.BacklogAt.Load() + st.Backlog.Load(); total > 0 && total >= got {
		b.pb.ChangeMax64(total)
	}
	desc := fmt.Sprintf("%d files", st.Files.Load())
	if cur := st.Current.Load(); cur != nil {
		desc += " " + *cur
	}
	b.pb.Describe(desc)
	b.pb.Set64(got)
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
		fmt.Fprintln(os.Stderr)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// setClientMemoryLimit fits the Go collector to a client: what it holds
// is bounded by the credit window (chunks in flight) plus fixed buffers.
// Chunk frames come in pooled buffers (transport/tickets.go: one collection
// per GiB received instead of ~300), but small frames are still fresh
// garbage (zmq4 allocates them), and the pooled chunks in flight are live
// heap: at 8 MiB + 1 x window the collector ran continuously again (1.15
// against 0.67 CPU-s/GiB, and GOGC=100 0.72, same run: bench/RESULTS.md,
// "Client receive path"). The collector runs when the heap reaches a soft memory limit of 8 MiB plus
// twice the window (16.4 MB for the default window), not whenever it
// doubles (GOGC off): with a live heap of a few MB, GOGC=100 collected
// about 300 times per GiB received, and the collections with the sweeping,
// scavenging and zeroing they cause were about a third of the client's CPU
// (issue 14, bench/RESULTS.md). Three times the window cost no less CPU
// (1.16 against 1.12 CPU-s/GiB, same run) but broke the memory target
// (peak RSS 2 GiB / 20 MiB file 1.30, against 1.11-1.22 here); once the
// window (12.2 MB) doubled the client's CPU. The limit never stays below twice the live
// heap (internal/memlimit follows it after every collection), so a client
// with a large live set (a cache of a million files) is collected as under
// GOGC=100 instead of pinning the collector at the limit. GOMEMLIMIT or
// GOGC in the environment: the runtime's own settings are kept (nil).
func setClientMemoryLimit(settings map[string]string, log *slog.Logger) *memlimit.Follower {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return nil
	}
	window := int64(4_000_000) // machines/fmq_client.toml default
	if v, err := strconv.ParseInt(settings["window"], 10, 64); err == nil && v > 0 {
		window = v
	}
	limit := clientMemoryLimit(window)
	log.Debug("soft memory limit, GOGC off", "bytes", limit)
	return memlimit.Start(limit)
}

// clientMemoryLimit is the client's soft memory limit for a credit window.
func clientMemoryLimit(window int64) int64 { return 8<<20 + 2*window }

// checkConnect validates a --connect endpoint: tcp://HOST:PORT.
func checkConnect(ep string) error {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return fmt.Errorf("--connect %q: want tcp://HOST:PORT", ep)
	}
	h, port, err := net.SplitHostPort(rest)
	if err != nil {
		return fmt.Errorf("--connect %q: want tcp://HOST:PORT (%v)", ep, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--connect %q: port %q is not a number from 1 to 65535", ep, port)
	}
	if h == "" || h == "*" {
		return fmt.Errorf("--connect %q: no host (want tcp://HOST:PORT, e.g. tcp://127.0.0.1:5670)", ep)
	}
	return nil
}

// checkBind validates a --bind endpoint: tcp://HOST:PORT, where HOST may
// be * (every interface) and PORT may be 0 or * (any free port). An empty
// one is an error, not "every interface".
func checkBind(ep string) error {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return fmt.Errorf("--bind %q: want tcp://HOST:PORT (e.g. tcp://127.0.0.1:5670, or tcp://*:5670 for every interface)", ep)
	}
	h, port, err := net.SplitHostPort(rest)
	if err != nil || h == "" {
		return fmt.Errorf("--bind %q: want tcp://HOST:PORT (e.g. tcp://127.0.0.1:5670, or tcp://*:5670 for every interface)", ep)
	}
	if n, err := strconv.Atoi(port); port != "*" && (err != nil || n < 0 || n > 65535) {
		return fmt.Errorf("--bind %q: port %q is not a number from 0 to 65535 (or *)", ep, port)
	}
	return nil
}
