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
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fmqrun check FILE...\n\n"+
			"Loads and checks machine files (or embedded machines by name, e.g. fmq_server.toml),\n"+
			"printing every problem as file:line:col: message. A client and a server machine of\n"+
			"the same protocol given together are also checked as a pair.\n")
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(env.Stderr, "usage: fmqrun check FILE...")
		return 2
	}
	status := 0
	var loaded []*interp.Machine
	for _, f := range files {
		m, err := loadMachine(f)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			status = 1
			continue
		}
		loaded = append(loaded, m)
		fmt.Fprintf(env.Stdout, "%s: ok (%s %s, protocol %s, %d states, %d events, hash %s)\n", m.File, m.Name, m.Role, m.Protocol, len(m.States), len(m.Events), m.Hash)
	}
	for _, c := range loaded {
		for _, s := range loaded {
			if c.Role != interp.RoleClient || s.Role != interp.RoleServer || c.Protocol != s.Protocol {
				continue
			}
			if err := interp.CheckPair(c, s); err != nil {
				fmt.Fprintln(env.Stderr, err)
				status = 1
				continue
			}
			fmt.Fprintf(env.Stdout, "%s + %s: ok as a pair\n", c.File, s.File)
		}
	}
	return status
}
