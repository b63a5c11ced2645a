package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTutorialTally runs the protocol spec/tutorial.md builds from
// scratch (spec/tally.toml, spec/tutorial/*.toml, no Go actions) end to
// end over ZeroMQ: the pair checks, a client adds four numbers and reads
// the total, a nameless client and a greedy one are refused by the
// server's TOML policy.
func TestTutorialTally(t *testing.T) {
	const srvFile, cliFile = "../../spec/tutorial/tally_server.toml", "../../spec/tutorial/tally_client.toml"
	if code, out, errs := runCmd(t, "check", srvFile, cliFile); code != 0 || !strings.Contains(out, "ok as a pair") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	srv := startCmd(t, "run", srvFile, "--no-reload", "--set", "max_adds=5")
	ep := srv.ep
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(sets ...string) (string, string) {
		t.Helper()
		var out, errb lockedBuffer
		args := []string{"run", cliFile, "--connect", ep, "--wire"}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if code := runMain(ctx, &Env{Stdout: &out, Stderr: &errb}, args); code != 0 {
			t.Fatalf("client %v: exit %d\n%s", sets, code, errb.String())
		}
		return out.String(), errb.String()
	}
	wire, log := client("adds=4", "amount=7", "name=grace")
	for _, want := range []string{`C: HELLO version=1 name="grace"`, `S: WELCOME greeting="hello, grace"`, "S: TOTAL count=4 sum=28", "C: BYE"} {
		if !strings.Contains(wire, want) {
			t.Errorf("client wire lacks %q:\n%s", want, wire)
		}
	}
	if !strings.Contains(log, "msg=done") || !strings.Contains(log, "count=4 sum=28") {
		t.Errorf("client log lacks the total:\n%s", log)
	}
	_, log = client("name=")
	if !strings.Contains(log, `msg=refused`) || !strings.Contains(log, `reason="say your name"`) {
		t.Errorf("nameless client not refused:\n%s", log)
	}
	wire, log = client("adds=9", "amount=1")
	if !strings.Contains(wire, "S: TOTAL count=5 sum=5") || strings.Contains(wire, "count=6") || !strings.Contains(log, `reason="that is enough adding"`) {
		t.Errorf("greedy client: want 5 totals, then GOAWAY:\n%s\n%s", wire, log)
	}
	eventually(t, "the server's bye line", srv.stderr, func() bool { return strings.Contains(srv.stderr.String(), "msg=bye") })
	if code := srv.stop(); code != 0 {
		t.Errorf("server exit %d: %s", code, srv.stderr.String())
	}
	if s := srv.stderr.String(); !strings.Contains(s, "msg=bye") || !strings.Contains(s, "name=grace count=4 sum=28") {
		t.Errorf("server log lacks the bye line:\n%s", s)
	}
}
