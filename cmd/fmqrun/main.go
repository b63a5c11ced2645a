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
	"sort"
	"strings"
	"syscall"

	"github.com/fmq/fmq/actions"
	_ "github.com/fmq/fmq/codec/filemq" // registers protocol "filemq"
	_ "github.com/fmq/fmq/codec/nom"    // registers protocol "nom"
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "fmqrun: unknown command %q\n", args[0])
		usage(env.Stderr)
		return 2
	}
	return c.Run(ctx, env, args[1:])
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
