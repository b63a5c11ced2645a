package main

import (
	"bytes"
	"context"
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
		if !strings.Contains(strings.ToLower(errb.String()), "usage") {
			t.Errorf("%s --help printed no usage:\n%s", name, errb.String())
		}
		errb.Reset()
		if code := runMain(context.Background(), env, []string{name, "--no-such-flag"}); code != 2 {
			t.Errorf("%s --no-such-flag: exit %d, want 2", name, code)
		}
		if !strings.Contains(errb.String(), "no-such-flag") {
			t.Errorf("%s: the usage error does not name the flag:\n%s", name, errb.String())
		}
	}
}
