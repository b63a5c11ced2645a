package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/machines"
)

// loadMachine loads a machine file, or an embedded machine by name
// ("fmq_server.toml" when no such file exists, or "embedded:fmq_server.toml").
func loadMachine(path string) (*interp.Machine, error) {
	name, src, err := machines.Source(path)
	if err != nil {
		return nil, err
	}
	return interp.LoadBytes(name, src, loadOptions)
}

func init() {
	register(&command{
		Name:    "actions",
		Usage:   "[--markdown] [PROTOCOL[/ROLE]]",
		Summary: "print the catalogue of Go actions and their contracts",
		Run:     runActions,
	})
}

func runActions(_ context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("actions", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	md := fs.Bool("markdown", false, "print as Markdown (for the docs)")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fmqrun actions [--markdown] [PROTOCOL[/ROLE]]\n\n"+
			"Prints every Go action machines may call, per protocol and role, with its contract:\n"+
			"the messages and events it accepts, the messages it sends or fills, the settings it\n"+
			"reads and the events it may raise. `fmqrun check` holds machines to these contracts.\n\nflags:\n")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(rest) > 1 {
		fs.Usage()
		return 2
	}
	shown := 0
	for _, lib := range actions.Names() {
		if len(rest) == 1 && lib != rest[0] && !strings.HasPrefix(lib, rest[0]+"/") {
			continue
		}
		protocol, role, _ := strings.Cut(lib, "/")
		writeCatalogue(env.Stdout, protocol, role, actions.Lookup(protocol, role), *md)
		shown++
	}
	if shown == 0 {
		fmt.Fprintf(env.Stderr, "fmqrun actions: no library %q (have %s)\n", rest[0], strings.Join(actions.Names(), ", "))
		return 1
	}
	return 0
}

func writeCatalogue(w io.Writer, protocol, role string, lib *interp.Library, md bool) {
	names := make([]string, 0, len(lib.Actions))
	for n := range lib.Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	if md {
		fmt.Fprintf(w, "## %s %s\n\n| action | accepts | sends | fills | reads | raises | what it does |\n|---|---|---|---|---|---|---|\n", protocol, role)
	} else {
		fmt.Fprintf(w, "%s %s (%d actions)\n", protocol, role, len(names))
	}
	for _, n := range names {
		a := lib.Actions[n]
		accepts := strings.Join(a.Accepts, ", ")
		if accepts == "" {
			accepts = "any event"
		}
		reads := make([]string, len(a.Reads))
		for i, u := range a.Reads {
			reads[i] = settingUse(u)
		}
		if md {
			fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s | %s |\n", n, accepts, dash(a.Sends), dash(a.Fills), dash(reads), dash(a.Raises), strings.ReplaceAll(a.Doc, "|", `\|`))
			continue
		}
		fmt.Fprintf(w, "\n  %q\n      %s\n      accepts: %s\n", n, a.Doc, accepts)
		for _, row := range []struct {
			k string
			v []string
		}{{"sends", a.Sends}, {"fills", a.Fills}, {"reads", reads}, {"raises", a.Raises}} {
			if len(row.v) > 0 {
				fmt.Fprintf(w, "      %s: %s\n", row.k, strings.Join(row.v, ", "))
			}
		}
	}
	fmt.Fprintln(w)
}

func settingUse(u interp.SettingUse) string {
	s := "settings." + u.Name + " (" + u.Type.String()
	show := func(v int64) string {
		if u.Type == interp.SettingDuration {
			return time.Duration(v).String()
		}
		return fmt.Sprint(v)
	}
	switch {
	case u.Min != nil && u.Max != nil:
		s += ", " + show(*u.Min) + ".." + show(*u.Max)
	case u.Min != nil:
		s += ", >= " + show(*u.Min)
	case u.Max != nil:
		s += ", <= " + show(*u.Max)
	}
	return s + ")"
}

func dash(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ", ")
}
