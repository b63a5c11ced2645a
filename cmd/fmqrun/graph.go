package main

import (
	"context"
	"fmt"

	"github.com/fmq/fmq/interp"
)

func init() {
	register(&command{
		Name:    "graph",
		Usage:   "FILE [--format dot|mermaid]",
		Summary: "draw a machine (Graphviz dot or Mermaid)",
		Run:     runGraph,
	})
}

func runGraph(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "graph")
	fs.SetOutput(env.Stderr)
	format := fs.String("format", "dot", "output format: dot or mermaid")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) != 1 || (*format != "dot" && *format != "mermaid") {
		fmt.Fprintln(env.Stderr, "usage: fmqrun graph FILE [--format dot|mermaid]")
		return 2
	}
	m, err := loadMachine(files[0])
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	if *format == "dot" {
		err = interp.WriteDot(env.Stdout, m)
	} else {
		err = interp.WriteMermaid(env.Stdout, m)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	return 0
}
