package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/transport"
)

func init() {
	register(&command{
		Name:    "run",
		Usage:   "FILE (--bind|--connect) ENDPOINT [flags]",
		Summary: "run any machine file over ZeroMQ (server: ROUTER, client: DEALER)",
		Run:     runRun,
	})
}

// syncWriter serialises writes from the engine and notification goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) line(l string) { _, _ = s.Write([]byte(l + "\n")) }

type runFlags struct {
	bind, connect, printEndpoint   string
	sets, calls                    multiFlag
	trace, wire, wireHex, noReload bool
	exitAfter                      time.Duration
}

func runRun(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "run")
	fs.SetOutput(env.Stderr)
	var f runFlags
	fs.StringVar(&f.bind, "bind", "", "server: bind a ROUTER to this endpoint (tcp://127.0.0.1:0 picks a port)")
	fs.StringVar(&f.connect, "connect", "", "client: connect a DEALER to this endpoint")
	fs.StringVar(&f.printEndpoint, "print-endpoint", "", "server: write the bound endpoint to this file once serving (reload watchers installed)")
	fs.Var(&f.sets, "set", "override a setting: NAME=VALUE (repeatable)")
	fs.Var(&f.calls, "call", "client: API call after start: EVENT[:ARG=VALUE,...] (repeatable)")
	fs.BoolVar(&f.trace, "trace", false, "log every event, guard, action and transition (slog, debug level, stderr)")
	fs.BoolVar(&f.wire, "wire", false, "print every message as a timestamped C:/S: line with its peer on stdout")
	fs.BoolVar(&f.wireHex, "wire-hex", false, "with --wire, also dump each frame in hex (first 256 bytes)")
	fs.BoolVar(&f.noReload, "no-reload", false, "server: do not reload the machine on SIGHUP or file change")
	fs.DurationVar(&f.exitAfter, "exit-after", 0, "stop after this long (0: run until interrupted, or until a client terminates)")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) != 1 || (f.bind == "") == (f.connect == "") {
		fmt.Fprintln(env.Stderr, "usage: fmqrun run FILE (--bind|--connect) ENDPOINT [flags]")
		return 2
	}
	settings := map[string]string{}
	for _, s := range f.sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			fmt.Fprintf(env.Stderr, "fmqrun: --set %q: want NAME=VALUE\n", s)
			return 2
		}
		settings[k] = v
	}
	out := &syncWriter{w: env.Stdout}
	level := slog.LevelInfo
	if f.trace {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(&syncWriter{w: env.Stderr}, &slog.HandlerOptions{Level: level, ReplaceAttr: userFacing}))
	m, err := loadMachine(files[0])
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	opts := interp.Options{Settings: settings, Logger: log, Trace: f.trace}
	if f.wire || f.wireHex {
		opts.WireTo = (&wireTracer{out: out, hex: f.wireHex, noPeer: f.connect}).trace
	}
	if f.exitAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.exitAfter)
		defer cancel()
	}
	switch {
	case m.Role == interp.RoleServer && f.bind != "":
		err = runServer(ctx, env, log, out, m, files[0], f, opts)
	case m.Role == interp.RoleClient && f.connect != "":
		err = runClient(ctx, log, out, m, f, opts)
	default:
		fmt.Fprintf(env.Stderr, "fmqrun: %s is a %s machine: use --%s\n", m.Name, m.Role, map[string]string{"server": "bind", "client": "connect"}[m.Role])
		return 2
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(env.Stderr, "fmqrun: %v\n", err)
		return 1
	}
	return 0
}

// printNotifications shows what actions report, one line each.
func printNotifications(ctx context.Context, e *interp.Engine, out *syncWriter, wg *sync.WaitGroup) {
	defer wg.Done()
	show := func(n interp.Notification) {
		peer := n.Peer
		if peer == "" {
			peer = "-"
		}
		out.line(fmt.Sprintf("notify %s %s %v", peer, n.Name, n.Value))
	}
	for {
		select {
		case n := <-e.Notifications():
			show(n)
		case <-ctx.Done():
			for {
				select {
				case n := <-e.Notifications():
					show(n)
				default:
					return
				}
			}
		}
	}
}

func runServer(ctx context.Context, env *Env, log *slog.Logger, out *syncWriter, m *interp.Machine, file string, f runFlags, opts interp.Options) error {
	r, err := transport.Listen(f.bind, transport.Options{Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()
	opts.Sender = r // Router.Send copies what it must queue; the engine reuses its buffer
	e, err := interp.NewServer(m, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); host.Pump(ctx, r, e) }()
	go printNotifications(ctx, e, out, &wg)
	if !f.noReload {
		stopReload, err := watchReload(ctx, log, e, file)
		if err != nil {
			log.Warn("reload on file change disabled", "err", err)
		}
		defer stopReload()
	}
	// Ready: the endpoint is written once SIGHUP and file changes reload.
	if f.printEndpoint != "" {
		if err := os.WriteFile(f.printEndpoint, []byte(r.Endpoint()), 0o644); err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	log.Info("serving", "machine", m.Name, "file", m.File, "hash", m.Hash, "endpoint", r.Endpoint())
	err = e.Run(ctx, nil)
	cancel()
	wg.Wait()
	return err
}

// watchReload reloads the machine on SIGHUP and when its file changes. A
// file that fails the check is refused with its errors; the running machine
// stays. Peers already connected finish on the machine they started with.
func watchReload(ctx context.Context, log *slog.Logger, e *interp.Engine, file string) (func(), error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	reload := func(why string) {
		m, err := loadMachine(file)
		if err != nil {
			log.Error("reload refused: the machine file does not check; the old machine keeps running", "why", why, "errors", err.Error())
			return
		}
		if err := e.Reload(m); err != nil {
			log.Error("reload refused", "why", why, "err", err)
			return
		}
		log.Info("machine reloaded", "why", why, "machine", m.File, "hash", m.Hash)
	}
	w, werr := fsnotify.NewWatcher()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if werr == nil {
		// Watch the directory: editors replace files rather than write them.
		if err := w.Add(filepath.Dir(file)); err != nil {
			w.Close()
			werr = err
		} else {
			events, errs = w.Events, w.Errors
		}
	}
	abs, _ := filepath.Abs(file)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var debounce <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					debounce = time.After(100 * time.Millisecond)
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				log.Warn("file watcher", "err", err)
			case <-debounce:
				debounce = nil
				reload("file changed")
			}
		}
	}()
	return func() {
		cancel()
		signal.Stop(hup)
		wg.Wait()
		if werr == nil {
			w.Close()
		}
	}, werr
}

func parseCall(s string) (string, map[string]any, error) {
	ev, rest, _ := strings.Cut(s, ":")
	args := map[string]any{}
	if rest != "" {
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return "", nil, fmt.Errorf("--call %q: want EVENT[:ARG=VALUE,...]", s)
			}
			args[k] = v
		}
	}
	return ev, args, nil
}

func runClient(ctx context.Context, log *slog.Logger, out *syncWriter, m *interp.Machine, f runFlags, opts interp.Options) error {
	d, err := transport.Dial(f.connect, transport.Options{Logger: log})
	if err != nil {
		return err
	}
	defer d.Close()
	opts.Sender = interp.SenderFunc(func(_ string, body []byte) error { return d.Send(body) }) // a Dealer writes before returning
	e, err := interp.NewClient(m, opts)
	if err != nil {
		return err
	}
	for _, c := range f.calls {
		ev, args, err := parseCall(c)
		if err != nil {
			return err
		}
		if err := e.Call(ev, args); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	// The hosting pump: frames, then the departure (Forget: Run returns
	// ErrForgotten once the frames before it are handled).
	go func() { defer wg.Done(); host.Pump(ctx, d, e) }()
	go printNotifications(ctx, e, out, &wg)
	err = e.Run(ctx, nil)
	cancel()
	wg.Wait()
	if errors.Is(err, interp.ErrForgotten) {
		return errors.New("connection to the server lost")
	}
	return err
}
