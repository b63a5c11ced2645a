package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/transport"
)

func init() {
	register(&command{
		Name:    "serve",
		Usage:   "[--publish DIR[=/alias]]... [--bind ENDPOINT]",
		Summary: "publish directories to FileMQ clients",
		Run:     runServe,
	})
}

func runServe(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "serve")
	fs.SetOutput(env.Stderr)
	var cf commonFlags
	cf.register(fs)
	var pubs multiFlag
	fs.Var(&pubs, "publish", "publish DIR under a virtual alias: DIR[=/alias] (repeatable; default: . as /)")
	bind := fs.String("bind", "", "ZeroMQ endpoint to bind (default tcp://*:5670)")
	passwords := fs.String("passwords", "", "require ORLY/YARLY PLAIN authentication against this login:password file")
	zmtpPasswords := fs.String("zmtp-passwords", "", "also require ZeroMQ (ZMTP) PLAIN at connection time against this login:password file (libzmq-compatible)")
	var curve serverCurveFlags
	curve.register(fs, "", "")
	machine := fs.String("machine", "", "server machine file (default: the embedded fmq_server.toml)")
	printEP := fs.String("print-endpoint", "", "write the bound endpoint to this file once serving")
	rescan := fs.Duration("rescan", 0, "full rescan period, the safety net of file notifications (default 5s)")
	var excludes multiFlag
	fs.Var(&excludes, "exclude", "leave out files and directories matching this rsync-like pattern (repeatable): NAME-PATTERN matches at any depth (\"*.tmp\", \".*\" for hidden files), /PATH-PATTERN from the published directory, a trailing / directories only (\".git/\")")
	maxSessions := fs.Int("max-sessions", defaultMaxSessions, "most established client sessions; a new client beyond is disconnected (0: no cap)")
	pubInboxes := fs.Bool("publish-inboxes", false, "publish directories that are fmq inboxes too (left out by default: a mirror fed into its own source grows without end)")
	serverID := fs.String("server-id", "", "name this server for its clients' ownership records (any text; default: derived from this machine and each published directory's path); give the same name to keep a mirror's files when the data moves to another directory or machine")
	settle := fs.Duration("settle", 0, "stability window before a changed file is published (default 500ms)")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fmqrun serve [flags]\n\nPublishes directories over FILEMQ until interrupted. SIGHUP reloads the machine file.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if rest, err := parseInterspersed(fs, args); err != nil || len(rest) > 0 {
		if err != nil {
			return flagExit(err)
		}
		fmt.Fprintf(env.Stderr, "fmqrun serve: unexpected arguments %q\n", rest)
		return 2
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	log, err := cf.logger(env.Stderr, cfg)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	stopProfile, err := cf.profile()
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 1
	}
	defer stopProfile()
	given := setFlags(fs)
	specs := []string(pubs)
	if len(specs) == 0 {
		specs = cfg.Server.Publish
	}
	if len(specs) == 0 {
		specs = []string{"."}
	}
	mounts, err := parseMounts(specs)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	settings, err := cf.overrides(cfg.Server.Settings)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	sc := host.ServerConfig{
		Machine:        pick(given["machine"], *machine, cfg.Server.Machine, ""),
		Publish:        mounts,
		Bind:           pick(given["bind"], *bind, cfg.Server.Bind, "tcp://*:5670"),
		Settings:       settings,
		Passwords:      pick(given["passwords"], *passwords, cfg.Server.Passwords, ""),
		Rescan:         durPick(given["rescan"], *rescan, cfg.Server.Rescan.Duration),
		Settle:         durPick(given["settle"], *settle, cfg.Server.Settle.Duration),
		PublishInboxes: *pubInboxes || cfg.Server.PublishInboxes,
		Exclude:        append([]string(nil), excludes...),
		ServerID:       pick(given["server-id"], *serverID, cfg.Server.ServerID, ""),
		MaxSessions:    *maxSessions,
		Logger:         log,
		Trace:          cf.trace,
	}
	if !given["max-sessions"] && cfg.Server.MaxSessions != nil {
		sc.MaxSessions = *cfg.Server.MaxSessions
	}
	if sc.MaxSessions < 0 {
		fmt.Fprintln(env.Stderr, "fmqrun serve: --max-sessions must be 0 (no cap) or more")
		return 2
	}
	if err := checkBind(sc.Bind); err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	sc.WireTo = cf.wireTo("")
	if zp := pick(given["zmtp-passwords"], *zmtpPasswords, cfg.Server.ZMTPPasswords, ""); zp != "" {
		pf, err := transport.LoadPasswordFile(zp)
		if err != nil {
			fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
			return 2
		}
		sc.Transport.PlainServer = pf
	}
	cs, err := serverCurve(pick(given["curve-secret-file"], curve.secretFile, cfg.Server.CurveSecret, ""),
		pick(given["curve-clients"], curve.clients, cfg.Server.CurveClients, ""))
	if err == nil && cs != nil && sc.Transport.PlainServer != nil {
		err = errors.New("--zmtp-passwords and --curve-secret-file cannot be combined (a ZeroMQ connection has one mechanism); with CURVE, use --passwords for logins")
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		return 2
	}
	sc.Transport.CurveServer = cs
	if len(sc.Exclude) == 0 {
		sc.Exclude = cfg.Server.Exclude
	}
	srv, err := host.StartServer(sc)
	if err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
		if strings.Contains(err.Error(), "exclude pattern") {
			return 2
		}
		return 1
	}
	defer srv.Close()
	if *printEP != "" {
		if err := os.WriteFile(*printEP, []byte(srv.Endpoint()+"\n"), 0o644); err != nil {
			fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
			return 1
		}
	}
	stopReload := func() {}
	if sc.Machine != "" {
		if stop, err := watchReload(ctx, log, srv.Engine(), sc.Machine); err == nil {
			stopReload = stop
		}
	} else {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					srv.Reload()
				}
			}
		}()
	}
	defer stopReload()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			st := srv.Engine().Stats()
			log.Info("stopping", "frames", st.Frames, "sent", st.Sent, "malformed", st.Malformed, "peers", st.Instances)
			if err := srv.Close(); err != nil {
				fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
				return 1
			}
			return 0
		case <-tick.C:
			if err := srv.Err(); err != nil {
				fmt.Fprintln(env.Stderr, "fmqrun serve:", err)
				return 1
			}
		}
	}
}

func durPick(given bool, flagV, cfgV time.Duration) time.Duration {
	if given {
		return flagV
	}
	return cfgV
}

// defaultMaxSessions is serve's default cap on established sessions.
const defaultMaxSessions = 4096
