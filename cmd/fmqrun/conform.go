package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fmq/fmq/conform"
)

func init() {
	register(&command{
		Name:    "conform",
		Usage:   "[--target EP | --listen EP] SCRIPT...",
		Summary: "run conformance scripts (spec/conformance.md) against a server, a client, or fmq in process",
		Run:     runConform,
	})
}

func runConform(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "conform")
	fs.SetOutput(env.Stderr)
	var opt conform.Options
	var verbose bool
	var timeout time.Duration
	fs.StringVar(&opt.Target, "target", "", "run client-role scripts against the server at this endpoint")
	fs.StringVar(&opt.Listen, "listen", "", "run server-role scripts on this endpoint; the client under test connects to it")
	fs.StringVar(&opt.PublishDir, "publish-fixtures", "", "with --target: write the scripts' pub/ fixtures here (the directory the target publishes as /); emptied before each script")
	fs.DurationVar(&opt.FixtureDelay, "fixture-delay", 0, "with --publish-fixtures: wait this long after writing fixtures (for the target to notice them)")
	fs.StringVar(&opt.Inbox, "inbox", "", "with --listen: the inbox directory of the client under test (for inbox steps)")
	fs.BoolVar(&opt.AssumeConfig, "assume-config", false, "with --target: run scripts that set server settings or accounts (the target is configured to match)")
	fs.BoolVar(&verbose, "v", false, "print every script's transcript")
	fs.DurationVar(&timeout, "script-timeout", time.Minute, "bound on one script")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) == 0 || (opt.Target != "" && opt.Listen != "") {
		fmt.Fprintln(env.Stderr, "usage: fmqrun conform [--target EP | --listen EP] [flags] SCRIPT...")
		return 2
	}
	inproc := opt.Target == "" && opt.Listen == ""
	if verbose {
		opt.Transcript = env.Stdout
	} else {
		opt.Transcript = io.Discard
	}
	opt.Logger = slog.New(slog.DiscardHandler)
	counts := map[conform.Status]int{}
	failed := false
	for _, f := range files {
		s, err := conform.ParseFile(f)
		if err != nil {
			fmt.Fprintf(env.Stdout, "%-8s %s\n    %v\n", conform.Fail, f, indent(err.Error()))
			counts[conform.Fail]++
			failed = true
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		var res *conform.Result
		if inproc {
			res = conform.RunInProcess(sctx, s, opt)
		} else {
			res = conform.Run(sctx, s, opt)
		}
		cancel()
		fmt.Fprintln(env.Stdout, res.String())
		counts[res.Status]++
		failed = failed || res.Failed()
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(env.Stdout, "%d passed, %d failed, %d known bugs, %d bugs fixed, %d skipped\n",
		counts[conform.Pass], counts[conform.Fail], counts[conform.KnownBug], counts[conform.BugFixed], counts[conform.Skip])
	if failed {
		return 1
	}
	return 0
}

func indent(s string) string {
	out := ""
	for i, l := range splitLines(s) {
		if i > 0 {
			out += "\n    "
		}
		out += l
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
