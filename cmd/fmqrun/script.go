package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/conform"
)

func init() {
	register(&command{
		Name:    "script",
		Usage:   "[TRACE] | --record --publish DIR",
		Summary: "turn a C:/S: wire trace into a conformance script, or record one from fmq's server and client",
		Run:     runScript,
	})
}

func runScript(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "script")
	fs.SetOutput(env.Stderr)
	var (
		role, protocol, out, publish string
		loose, record                bool
		subs, headers                multiFlag
		timeout                      time.Duration
	)
	fs.StringVar(&role, "role", "client", "the side the script plays: client (its C: lines are sent) or server")
	fs.StringVar(&protocol, "protocol", "filemq", "protocol named in the script header")
	fs.BoolVar(&loose, "loose", false, "drop hash fields (headers, options, cache) from expectations")
	fs.Var(&headers, "header", "a header line to add, e.g. 'server chunk_size=4' (repeatable)")
	fs.StringVar(&out, "o", "", "write the script here (default stdout)")
	fs.BoolVar(&record, "record", false, "record a session: fmq's server publishes --publish, fmq's client syncs it once")
	fs.StringVar(&publish, "publish", "", "with --record: the directory to publish as / (becomes the script's pub/ fixtures)")
	fs.Var(&subs, "subscribe", "with --record: a client subscription (repeatable; default /)")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "with --record: bound on the recorded sync")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	var script []byte
	switch {
	case record:
		if publish == "" || len(pos) > 0 {
			fmt.Fprintln(env.Stderr, "usage: fmqrun script --record --publish DIR [--subscribe PATH] [-o OUT]")
			return 2
		}
		script, err = conform.Record(ctx, conform.RecordOptions{Publish: publish, Subscribe: subs, Timeout: timeout})
	default:
		if len(pos) > 1 {
			fmt.Fprintln(env.Stderr, "usage: fmqrun script [--role client|server] [--loose] [TRACE]")
			return 2
		}
		var r io.Reader = os.Stdin
		name := "stdin"
		if len(pos) == 1 {
			f, err := os.Open(pos[0])
			if err != nil {
				fmt.Fprintf(env.Stderr, "fmqrun: %v\n", err)
				return 1
			}
			defer f.Close()
			r, name = f, pos[0]
		}
		opt := conform.TraceOptions{Protocol: protocol, Loose: loose, Header: headers}
		switch strings.ToLower(role) {
		case "client":
			opt.Role = codec.FromClient
		case "server":
			opt.Role = codec.FromServer
		default:
			fmt.Fprintf(env.Stderr, "fmqrun: --role must be client or server\n")
			return 2
		}
		script, err = conform.FromTrace(r, opt)
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "fmqrun: %v\n", err)
		return 1
	}
	if out == "" {
		env.Stdout.Write(script)
		return 0
	}
	if err := os.WriteFile(out, script, 0o644); err != nil {
		fmt.Fprintf(env.Stderr, "fmqrun: %v\n", err)
		return 1
	}
	return 0
}
