package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// Every command: --help prints its usage and exits 0; an unknown flag is a
// usage error (exit 2) that names the flag.
func TestHelpAndUsageExitCodes(t *testing.T) {
	for name := range commands {
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb}
		if code := runMain(context.Background(), env, []string{name, "--help"}); code != 0 {
			t.Errorf("%s --help: exit %d, want 0", name, code)
		}
		// Issue 11: help went to stderr, and five commands printed a bare
		// "Usage of X:". Asked-for help is on stdout, in full.
		if help := out.String(); !strings.Contains(help, "usage: fmqrun "+name) || strings.Contains(help, "Usage of") {
			t.Errorf("%s --help: stdout lacks the full usage:\n%s", name, help)
		}
		if errb.Len() != 0 {
			t.Errorf("%s --help wrote to stderr:\n%s", name, errb.String())
		}
		out.Reset()
		errb.Reset()
		if code := runMain(context.Background(), env, []string{name, "--no-such-flag"}); code != 2 {
			t.Errorf("%s --no-such-flag: exit %d, want 2", name, code)
		}
		if !strings.Contains(errb.String(), "no-such-flag") {
			t.Errorf("%s: the usage error does not name the flag:\n%s", name, errb.String())
		}
	}
}

// Issue 11: "there is no --version"; help on stdout; bad flag values are
// usage errors (exit 2), never panics: --bind "", demo --size -1.
func TestVersionHelpAndBadValues(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out.Reset()
		if code := runMain(context.Background(), env, args); code != 0 || !strings.HasPrefix(out.String(), "fmqrun ") || !strings.Contains(out.String(), "go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
	out.Reset()
	if code := runMain(context.Background(), env, []string{"--help"}); code != 0 || !strings.Contains(out.String(), "commands:") {
		t.Errorf("--help: exit %d, stdout %q", code, out.String())
	}
	out.Reset()
	if code := runMain(context.Background(), env, []string{"help", "sync"}); code != 0 || !strings.Contains(out.String(), "exit codes:") {
		t.Errorf("help sync: exit %d, stdout %q", code, out.String())
	}
	for _, args := range [][]string{
		{"serve", "--bind", ""},
		{"serve", "--bind", "tcp://127.0.0.1"},
		{"serve", "--bind", "127.0.0.1:5670"},
		{"relay", "--connect", "tcp://127.0.0.1:1", "--inbox", t.TempDir(), "--bind", ""},
		{"demo", "--size", "-1"},
		{"sync", "--connect", "tcp://127.0.0.1:1", "--inbox", t.TempDir(), "--timeout", "5s"}, // --timeout without --once
	} {
		errb.Reset()
		if code := runMain(context.Background(), env, args); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, want 2 with a message; stderr %q", args, code, errb.String())
		}
	}
}

// Issue 11: "peer ids are printed as raw bytes; messages show the internal
// tcpg:// scheme".
func TestLogsAreUserFacing(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: userFacing}))
	log.With("peer", "\x00\x8b\x45\x67\x89").Info("one", "err", errors.New(`dial "tcpg://h:1": refused`))
	log.Info("two", "peer", "fmq-0123456789abcdef", "endpoint", "tcpg://127.0.0.1:5670")
	out := b.String()
	for _, want := range []string{"peer=0x008b456789", `dial \"tcp://h:1\": refused`, "peer=fmq-0123456789abcdef", "endpoint=tcp://127.0.0.1:5670"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tcpg") {
		t.Errorf("internal scheme in the log:\n%s", out)
	}
}
