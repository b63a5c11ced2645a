// Command fmqrun loads, checks, draws and runs fmq machine files.
//
//	fmqrun run FILE (--bind|--connect) ENDPOINT [flags]   run a machine over ZeroMQ
//	fmqrun check FILE...                                  load and check machines
//	fmqrun graph FILE [--format dot|mermaid]              draw a machine
//
// Each subcommand lives in its own file and registers itself in the
// commands table from init, so more (serve, sync, relay, conform, demo) can
// be added without touching this one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/fmq/fmq/actions"
	_ "github.com/fmq/fmq/codec/filemq" // registers protocol "filemq"
	_ "github.com/fmq/fmq/codec/nom"    // registers protocol "nom"
	_ "github.com/fmq/fmq/codec/tally"  // registers protocol "tally" (spec/tutorial.md)
	"github.com/fmq/fmq/interp"
)

// command is one subcommand.
type command struct {
	Name    string
	Usage   string // one line: arguments
	Summary string
	// Run gets the arguments after the subcommand name and returns the
	// exit status (2 for usage errors).
	Run func(ctx context.Context, env *Env, args []string) int
}

// Env is what subcommands use instead of globals, so tests can run them
// in-process.
type Env struct {
	Stdout, Stderr io.Writer
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("fmqrun: command registered twice: " + c.Name)
	}
	commands[c.Name] = c
}

// loadOptions finds protocols in the codec registry and actions in actions/.
var loadOptions = interp.LoadOptions{Library: actions.Lookup}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: fmqrun COMMAND [arguments]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-6s %-44s %s\n", c.Name, c.Usage, c.Summary)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, env *Env, args []string) int {
	switch {
	case len(args) == 0:
		usage(env.Stderr)
		return 2
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help":
		usage(env.Stdout)
		return 0
	case args[0] == "help":
		if len(args) > 1 && commands[args[1]] != nil {
			return runMain(ctx, env, []string{args[1], "--help"})
		}
		usage(env.Stdout)
		return 0
	case args[0] == "--version" || args[0] == "-version" || args[0] == "version":
		fmt.Fprintln(env.Stdout, versionString())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "fmqrun: unknown command %q\n", args[0])
		usage(env.Stderr)
		return 2
	}
	if wantsHelp(args[1:]) {
		// Asked-for help is output, not an error: it goes to stdout.
		env = &Env{Stdout: env.Stdout, Stderr: env.Stdout}
	}
	return c.Run(ctx, env, args[1:])
}

// wantsHelp reports a -h/--help flag among the arguments (before "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// newFlags is a command's flag set: errors on stderr, and a usage (the
// command's line and summary, then its flags) instead of the bare "Usage
// of NAME:" of package flag. A command may set its own Usage after.
func newFlags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		w := fs.Output()
		if c := commands[name]; c != nil {
			fmt.Fprintf(w, "usage: fmqrun %s %s\n\n%s\n", name, c.Usage, c.Summary)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// versionString names the build: module version, VCS revision, Go version.
func versionString() string {
	v, rev, dirty := "(devel)", "", false
	goVer := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "fmqrun " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " " + rev
		if dirty {
			out += "+dirty"
		}
	}
	return out + " (" + goVer + ")"
}

// parseInterspersed parses flags that may come before or after positional
// arguments, returning the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// flagExit is the exit status after a flag parse: 0 for -h/--help (usage
// was printed on request), 2 for a usage error.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
