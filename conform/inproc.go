package conform

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
)

// RunInProcess runs a script against fmq's own server (client-role
// scripts) or client (server-role scripts), started in this process with
// the script's settings, accounts, mounts and fixtures. Only the filemq
// protocol has an in-process system under test.
func RunInProcess(ctx context.Context, s *Script, opt Options) *Result {
	t0 := time.Now()
	res := runInProcess(ctx, s, opt)
	res.Path, res.Elapsed = s.Path, time.Since(t0)
	return res
}

func runInProcess(ctx context.Context, s *Script, opt Options) *Result {
	if s.Skip != "" {
		return run(ctx, s, opt)
	}
	if s.Proto.Name() != "filemq" {
		return skipped("no in-process system under test for protocol %s", s.Proto.Name())
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.PublishDir = ""
	if opt.Work == "" {
		dir, err := os.MkdirTemp("", "fmq-conform-")
		if err != nil {
			return &Result{Status: Fail, Err: err}
		}
		defer os.RemoveAll(dir)
		opt.Work = dir
	}
	sutWire := func(l string) {}
	if opt.Transcript != nil {
		// the system under test's goroutines write to it too
		opt.Transcript = &lockedWriter{w: opt.Transcript}
		tr := opt.Transcript
		sutWire = func(l string) { fmt.Fprintf(tr, "    | sut %s\n", l) }
	}
	if s.Role == codec.FromClient {
		return inprocServer(ctx, s, opt, sutWire)
	}
	return inprocClient(ctx, s, opt, sutWire)
}

func inprocServer(ctx context.Context, s *Script, opt Options, wire func(string)) *Result {
	var mounts []publish.Mount
	for _, m := range s.Mounts {
		dir := filepath.Join(opt.Work, filepath.FromSlash(m.Dir))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return &Result{Status: Fail, Err: err}
		}
		mounts = append(mounts, publish.Mount{Dir: dir, Alias: m.Alias})
	}
	// Fixtures first: the server's first scan publishes them.
	ss := &session{s: s, opt: &opt}
	if err := ss.writeFixtures(); err != nil {
		return &Result{Status: Fail, Err: err}
	}
	cfg := host.ServerConfig{
		Publish:  mounts,
		Bind:     "tcp://127.0.0.1:0",
		Settings: s.Server,
		Logger:   opt.Logger,
		Wire:     wire,
		Rescan:   time.Second,
	}
	if len(s.Accounts) > 0 {
		var b strings.Builder
		for _, a := range s.Accounts {
			fmt.Fprintf(&b, "%s:%s\n", a.Login, a.Password)
		}
		pw := filepath.Join(opt.Work, ".passwords")
		if err := os.WriteFile(pw, []byte(b.String()), 0o600); err != nil {
			return &Result{Status: Fail, Err: err}
		}
		cfg.Passwords = pw
	}
	srv, err := host.StartServer(cfg)
	if err != nil {
		return &Result{Status: Fail, Err: fmt.Errorf("%s: in-process server: %w", s.Path, err)}
	}
	opt.Target = srv.Endpoint()
	opt.started = func(string) error { return nil }
	opt.sutWire = wire
	res := run(ctx, s, opt)
	if err := srv.Close(); err != nil && res.Status == Pass {
		res.Status, res.Err = Fail, fmt.Errorf("%s: in-process server failed: %w", s.Path, err)
	}
	return res
}

func inprocClient(ctx context.Context, s *Script, opt Options, wire func(string)) *Result {
	inbox := filepath.Join(opt.Work, "inbox")
	opt.Listen, opt.Inbox = "tcp://127.0.0.1:0", inbox
	// Sections "inbox/..." are what the client holds before it starts.
	for _, f := range s.Files {
		if rel, ok := strings.CutPrefix(f.Name, "inbox/"); ok {
			if !filepath.IsLocal(filepath.FromSlash(rel)) {
				return &Result{Status: Fail, Err: fmt.Errorf("%s:%d: section %q leaves the inbox", s.Path, f.Line, f.Name)}
			}
			if err := writeOld(filepath.Join(inbox, filepath.FromSlash(rel)), f.Data); err != nil {
				return &Result{Status: Fail, Err: err}
			}
		}
	}
	var cl *host.Client
	opt.started = func(ep string) error {
		var err error
		cl, err = host.StartClient(host.ClientConfig{
			Connect:   ep,
			Inbox:     inbox,
			Subscribe: s.Client.Subscribe,
			Settings:  s.Client.Settings,
			Login:     s.Client.Login,
			Password:  s.Client.Password,
			Logger:    opt.Logger,
			Wire:      wire,
		})
		if err != nil {
			return fmt.Errorf("%s: in-process client: %w", s.Path, err)
		}
		return nil
	}
	res := run(ctx, s, opt)
	if cl != nil {
		cl.Close() // its error is the client's verdict on the script's server, not a test failure
	}
	return res
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
