// Package host runs the FileMQ machines over the transport: it wires a
// ZeroMQ socket, an interpreter engine loaded from a machine file, the
// FileMQ actions and the file side (publish, inbox) together. The fmqrun
// commands serve, sync, relay and demo, and the end-to-end tests, use it.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/machines"
	"github.com/fmq/fmq/publish"
	"github.com/fmq/fmq/transport"

	_ "github.com/fmq/fmq/codec/filemq" // registers the protocol
)

// ServerConfig configures a FileMQ server.
type ServerConfig struct {
	Machine   string            // machine file; "" = the embedded fmq_server.toml
	Publish   []publish.Mount   // directories and their aliases
	Bind      string            // ZeroMQ endpoint, e.g. tcp://*:5670
	Settings  map[string]string // machine setting overrides
	Passwords string            // "login:password" file: ORLY/YARLY PLAIN required when set
	Rescan    time.Duration     // periodic rescan (0 = publish default)
	Settle    time.Duration     // stability window (0 = publish default)
	// PublishInboxes publishes directories that are fmq inboxes (a relay
	// republishes its own); otherwise they are left out.
	PublishInboxes bool
	// Exclude leaves out files and directories matching these rsync-like
	// patterns (publish.Options.Exclude).
	Exclude []string
	// ServerID names the server for the origins of its directories
	// (publish.Options.ServerID); "" = derived from the machine and the
	// directories.
	ServerID  string
	Transport transport.Options
	Logger    *slog.Logger
	Trace     bool
	Wire      func(line string)                    // compact C:/S: trace of every message
	WireTo    func(peer, line string, body []byte) // Wire with the peer and the frame (replaces Wire)
	// MaxSessions caps established sessions (0: no cap). A new client
	// beyond it is disconnected at its first frame and logged.
	MaxSessions int
}

// Server is a running FileMQ server.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	tree   *publish.Tree
	router *transport.Router
	engine *interp.Engine
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// LoadMachine loads a machine file (or an embedded one by name) with the
// project's codecs and actions.
func LoadMachine(path string) (*interp.Machine, error) {
	name, src, err := machines.Source(path)
	if err != nil {
		return nil, err
	}
	return interp.LoadBytes(name, src, interp.LoadOptions{Library: actions.Lookup})
}

// StartServer publishes the mounts and starts serving on cfg.Bind.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Machine == "" {
		cfg.Machine = machines.EmbeddedPrefix + "fmq_server.toml" // never ./fmq_server.toml by accident
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Bind == "" {
		cfg.Bind = "tcp://*:5670"
	}
	m, err := LoadMachine(cfg.Machine)
	if err != nil {
		return nil, err
	}
	var accounts actions.Checker
	if cfg.Passwords != "" {
		pf, err := transport.LoadPasswordFile(cfg.Passwords)
		if err != nil {
			return nil, err
		}
		accounts = pf
	}
	tree, err := publish.New(cfg.Publish, publish.Options{Rescan: cfg.Rescan, Settle: cfg.Settle, Logger: cfg.Logger,
		PublishInboxes: cfg.PublishInboxes, Exclude: cfg.Exclude, ServerID: cfg.ServerID})
	if err != nil {
		return nil, err
	}
	topt := cfg.Transport
	topt.Logger = cfg.Logger
	router, err := transport.Listen(cfg.Bind, topt)
	if err != nil {
		tree.Close()
		return nil, err
	}
	shared := actions.NewFMQServer(tree, accounts)
	shared.Backlog = router.Queued         // hold content back while a client's connection is full,
	shared.WaitBacklog = router.WaitQueued // and resume as soon as it drained
	eng, err := interp.NewServer(m, interp.Options{
		Sender:   chunkSender{router, shared}, // Send copies what it queues: the engine reuses its buffer
		Settings: cfg.Settings,
		NewPeer:  func(string) any { return actions.NewFMQServerPeer(shared) },
		Shared:   shared,
		Logger:   cfg.Logger,
		Trace:    cfg.Trace,
		Wire:     cfg.Wire,
		WireTo:   cfg.WireTo,
		// The session cap: a new peer beyond it is cut (the engine logs it).
		MaxSessions: cfg.MaxSessions,
		Refuse:      func(peer string) { router.Disconnect(peer) },
	})
	if err != nil {
		router.Close()
		tree.Close()
		return nil, err
	}
	// Chunks of large files straight from the file's pages where the
	// engine hands chunks to chunkSender as they lie (no wire trace of
	// whole frames) and the connection sends bytes as they are (not CURVE).
	shared.SendFiles = eng.SplitSends() && topt.CurveServer == nil
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, tree: tree, router: router, engine: eng, cancel: cancel}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); Pump(ctx, router, eng) }()
	go func() {
		defer s.wg.Done()
		if err := eng.Run(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
			s.fail(fmt.Errorf("engine: %w", err))
		}
	}()
	go func() { // file changes -> every client
		defer s.wg.Done()
		err := tree.Watch(ctx, func(ch []publish.Change) {
			if err := eng.Broadcast("changed", ch); err != nil {
				s.log.Warn("broadcast failed", "err", err)
			}
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			s.fail(fmt.Errorf("watch: %w", err))
		}
	}()
	s.log.Info("serving", "endpoint", router.Endpoint(), "files", tree.Len(), "auth", accounts != nil, "machine", m.File, "hash", m.Hash)
	return s, nil
}

// chunkSender hands the chunks the server read over to the transport: a
// chunk that must wait for its connection is queued where it lies and
// written by the connection's writer while the session reads the next one
// (no copy), and goes back to the server's pool once written.
type chunkSender struct {
	*transport.Router
	srv *actions.FMQServer
}

func (s chunkSender) SendSplit(peer string, head, tail []byte) error {
	if sec := s.srv.TakeSection(peer, tail); sec != nil {
		// A chunk to send from its file (actions.FMQServer.SendFiles).
		return s.Router.SendSection(peer, head, transport.Section{File: sec.File, Off: sec.Off, N: sec.N, Release: sec.Release})
	}
	if release := s.srv.Handover(tail); release != nil {
		return s.Router.SendSplitOwned(peer, head, tail, release)
	}
	return s.Router.SendSplit(peer, head, tail)
}

func (s *Server) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
		s.log.Error("server failed", "err", err)
	}
}

// Err reports a failure of the engine or the watcher, if any.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Endpoint is the bound endpoint, with the real port.
func (s *Server) Endpoint() string { return s.router.Endpoint() }

// Engine exposes the engine (stats, peers, reload).
func (s *Server) Engine() *interp.Engine { return s.engine }

// Tree exposes the published tree.
func (s *Server) Tree() *publish.Tree { return s.tree }

// Transport exposes the socket (stats).
func (s *Server) Transport() *transport.Router { return s.router }

// Reload loads the machine file again and, when it passes the check, makes
// it the machine for new clients; clients already connected finish on the
// machine they started with. A file that fails keeps the old machine.
func (s *Server) Reload() error {
	m, err := LoadMachine(s.cfg.Machine)
	if err != nil {
		s.log.Error("reload refused; the old machine keeps running", "err", err)
		return err
	}
	if err := s.engine.Reload(m); err != nil {
		return err
	}
	s.log.Info("machine reloaded", "machine", m.File, "hash", m.Hash)
	return nil
}

// Close stops serving and releases everything.
func (s *Server) Close() error {
	s.cancel()
	s.router.Close()
	s.wg.Wait()
	s.tree.Close()
	return s.Err()
}
