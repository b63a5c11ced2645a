package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/transport"
)

func init() {
	register(&command{
		Name:    "relay",
		Usage:   "--connect UPSTREAM --inbox DIR --bind ENDPOINT [--alias /]",
		Summary: "subscribe upstream and republish downstream (fan-out trees)",
		Run:     runRelay,
	})
}

// runRelay is a client mirroring upstream into DIR and a server publishing
// DIR. Partial files are hidden (".name.fmqpart") and only renamed into
// place once verified, so downstream clients never see half a file.
func runRelay(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "relay")
	fs.SetOutput(env.Stderr)
	var cf commonFlags
	cf.register(fs)
	var f clientFlags
	f.register(fs)
	bind := fs.String("bind", "", "downstream ZeroMQ endpoint to bind (default tcp://*:5670)")
	alias := fs.String("alias", "/", "virtual path the mirrored tree is republished under")
	passwords := fs.String("passwords", "", "downstream: require PLAIN authentication against this file")
	printEP := fs.String("print-endpoint", "", "write the downstream endpoint to this file once serving")
	serverID := fs.String("server-id", "", "downstream: name this relay for its clients' ownership records (as serve --server-id; default: derived from this machine and the inbox's path); give the same name to keep a downstream mirror's files when the relay's inbox moves")
	serverMachine := fs.String("server-machine", "", "downstream server machine file (default: [server] machine of --config, else the embedded fmq_server.toml); --machine is the upstream client's")
	var down serverCurveFlags
	down.register(fs, "downstream-", "downstream: ")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fmqrun relay --connect UPSTREAM --inbox DIR --bind ENDPOINT [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if rest, err := parseInterspersed(fs, args); err != nil || len(rest) > 0 {
		if err != nil {
			return flagExit(err)
		}
		fmt.Fprintf(env.Stderr, "fmqrun relay: unexpected arguments %q\n", rest)
		return 2
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	log, err := cf.logger(env.Stderr, cfg)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	cc, err := f.config(fs, &cf, cfg, log.With("side", "upstream"))
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	if err := os.MkdirAll(cc.Inbox, 0o755); err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 1
	}
	mounts, err := parseMounts([]string{cc.Inbox + "=" + *alias})
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	given := setFlags(fs)
	cs, err := serverCurve(pick(given["downstream-curve-secret-file"], down.secretFile, cfg.Server.CurveSecret, ""),
		pick(given["downstream-curve-clients"], down.clients, cfg.Server.CurveClients, ""))
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	bindEP := pick(given["bind"], *bind, cfg.Server.Bind, "tcp://*:5670")
	if err := checkBind(bindEP); err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 2
	}
	cc.WireTo = cf.wireTo(cc.Connect)
	srv, err := host.StartServer(host.ServerConfig{
		Transport: transport.Options{CurveServer: cs},
		Machine:   pick(given["server-machine"], *serverMachine, cfg.Server.Machine, ""),
		WireTo:    cf.wireTo(""),
		Trace:     cf.trace,
		Publish:   mounts,
		Bind:      bindEP,
		Settings:  settingStrings(cfg.Server.Settings),
		Passwords: pick(*passwords != "", *passwords, cfg.Server.Passwords, ""),
		ServerID:  pick(given["server-id"], *serverID, cfg.Server.ServerID, ""),
		Settle:    200 * time.Millisecond,
		Logger:    log.With("side", "downstream"),
		// The relay's inbox is what it publishes.
		PublishInboxes: true,
	})
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		return 1
	}
	defer srv.Close()
	if *printEP != "" {
		if err := os.WriteFile(*printEP, []byte(srv.Endpoint()+"\n"), 0o644); err != nil {
			fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
			return 1
		}
	}
	sum, err := syncRun(ctx, env, cc, "never", 0, log)
	log.Info("relay stopped", "files", sum.Files, "bytes", sum.Bytes, "sessions", sum.Sessions)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun relay:", err)
		if sum.ExitCode == exitOK {
			return exitFailed
		}
		return sum.ExitCode // sync's exit codes: cannot connect, refused upstream, ...
	}
	return exitOK
}
