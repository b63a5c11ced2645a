package main

import (
	"context"
	"fmt"

	"github.com/fmq/fmq/interp"
)

func init() {
	register(&command{
		Name:    "check",
		Usage:   "FILE...",
		Summary: "load and check machine files; print every problem as file:line:col",
		Run:     runCheck,
	})
}

func runCheck(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "check")
	fs.SetOutput(env.Stderr)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(env.Stderr, "usage: fmqrun check FILE...")
		return 2
	}
	status := 0
	for _, f := range files {
		m, err := interp.Load(f, loadOptions)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			status = 1
			continue
		}
		fmt.Fprintf(env.Stdout, "%s: ok (%s %s, protocol %s, %d states, %d events)\n", f, m.Name, m.Role, m.Protocol, len(m.States), len(m.Events))
	}
	return status
}
