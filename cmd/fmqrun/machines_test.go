package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// `fmqrun actions` prints every library's actions with their contracts.
func TestActionsCatalogue(t *testing.T) {
	code, out, errs := runCmd(t, "actions")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"filemq server (", "filemq client (", "nom server (", "nom client (",
		"\"deliver chunks\"", "sends: CHEEZBURGER", "reads: settings.chunk_size (int, 1..16777216)",
		"\"store subscription\"", "accepts: ICANHAZ", "fills: RTFM", "raises: bad-path",
		"\"grant credit\"", "sends: NOM", "reads: settings.window (int, >= 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("catalogue lacks %q", want)
		}
	}
	code, out, _ = runCmd(t, "actions", "--markdown", "filemq/client")
	if code != 0 || !strings.Contains(out, "| `subscribe` | any event | ICANHAZ |") || strings.Contains(out, "filemq server") {
		t.Errorf("markdown for filemq/client: exit %d\n%s", code, out)
	}
	if code, _, errs = runCmd(t, "actions", "nope"); code != 1 || !strings.Contains(errs, "filemq/server") {
		t.Errorf("unknown library: exit %d, %s", code, errs)
	}
}

// check, graph and run take embedded machine names; check pairs a client
// with a server; graph draws what actions send.
func TestEmbeddedNamesAndPairs(t *testing.T) {
	code, out, errs := runCmd(t, "check", "fmq_client.toml", "embedded:fmq_server.toml")
	if code != 0 {
		t.Fatalf("check: exit %d: %s", code, errs)
	}
	for _, want := range []string{"embedded:fmq_client.toml: ok", "embedded:fmq_server.toml: ok", "embedded:fmq_client.toml + embedded:fmq_server.toml: ok as a pair"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// A server that forgets idle clients faster than they heartbeat.
	dir := t.TempDir()
	src, err := os.ReadFile("../../machines/fmq_server.toml")
	if err != nil {
		t.Fatal(err)
	}
	fast := filepath.Join(dir, "fast.toml")
	if err := os.WriteFile(fast, bytes.Replace(src, []byte(`default = "60s"`), []byte(`default = "1s"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "check", "fmq_client.toml", fast)
	if code != 1 || !strings.Contains(errs, fast+":21:27: expiry 1s of the server is not longer than") {
		t.Errorf("pair with a fast expiry: exit %d\n%s", code, errs)
	}
	code, out, errs = runCmd(t, "graph", "fmq_server.toml")
	if code != 0 || !strings.Contains(out, "send CHEEZBURGER sequence = peer.Next.sequence") {
		t.Errorf("graph fmq_server.toml: exit %d %s\n%s", code, errs, out)
	}
	code, out, _ = runCmd(t, "graph", "fmq_client.toml", "--format", "mermaid")
	if code != 0 || !strings.Contains(out, "send NOM credit = settings.window") || !strings.Contains(out, "send ICANHAZ path = value.Path") {
		t.Errorf("graph fmq_client.toml: exit %d\n%s", code, out)
	}
	if code, _, errs = runCmd(t, "check", "embedded:nope.toml"); code != 1 || !strings.Contains(errs, "no embedded machine") {
		t.Errorf("unknown embedded name: exit %d %s", code, errs)
	}
}

// Settings out of range are refused by serve (--set and config alike)
// and by relay's server, with the reason.
func TestSettingRangesAtTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCmd(t, "serve", "--publish", dir, "--bind", "tcp://127.0.0.1:0", "--set", "chunk_size=-1")
	if code != 1 || !strings.Contains(errs, "setting chunk_size: -1 is below the minimum 1") {
		t.Errorf("--set chunk_size=-1: exit %d %s", code, errs)
	}
	cfg := filepath.Join(dir, "fmq.toml")
	if err := os.WriteFile(cfg, []byte("[server.settings]\nchunk_size = 100000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "serve", "--publish", dir, "--bind", "tcp://127.0.0.1:0", "--config", cfg)
	if code != 1 || !strings.Contains(errs, "setting chunk_size: 100000000 is above the maximum 16777216") {
		t.Errorf("config chunk_size=1e8: exit %d %s", code, errs)
	}
	code, _, errs = runCmd(t, "sync", "--connect", "tcp://127.0.0.1:1", "--inbox", filepath.Join(dir, "in"), "--once", "--set", "window=0")
	if code == 0 || !strings.Contains(errs, "setting window: 0 is below the minimum 1") {
		t.Errorf("--set window=0: exit %d %s", code, errs)
	}
	// relay honours the server machine: a broken one is refused by name.
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[machine]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "relay", "--connect", "tcp://127.0.0.1:1", "--inbox", filepath.Join(dir, "relay"), "--bind", "tcp://127.0.0.1:0", "--server-machine", bad)
	if code != 1 || !strings.Contains(errs, bad+":1:1: [machine] needs name") {
		t.Errorf("relay --server-machine: exit %d %s", code, errs)
	}
}

// A reload that breaks an action contract is refused, the old machine
// keeps running, and the log names the machine and hash it reloads.
func TestReloadRefusesBrokenContract(t *testing.T) {
	file, src, errb, stop := startRunServer(t) // its watchers are installed
	waitLog := func(want string) { t.Helper(); waitLog(t, errb, want) }
	waitLog("hash=")
	broken := strings.Replace(string(src), `do = ["take order"]`, `do = ["welcome peer", "take order"]`, 1)
	if broken == string(src) {
		t.Fatal("nom_server.toml changed: no take order handler")
	}
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("reload refused")
	waitLog(`action \"welcome peer\" is bound to on.ICANHAZ in state \"peering\", but it accepts only OHAI`)
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("machine reloaded")
	if !regexp.MustCompile(`"machine reloaded" why="file changed" machine=\S+server.toml hash=[0-9a-f]{12}`).MatchString(errb.String()) {
		t.Errorf("the reload log does not name the machine and hash:\n%s", errb.String())
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// --wire lines carry a timestamp and the peer; --wire-hex dumps frames.
func TestWireLines(t *testing.T) {
	srv := startCmd(t, "run", "nom_server.toml", "--wire-hex", "--no-reload")
	ep := srv.ep
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cliOut, cliErr lockedBuffer
	if code := runMain(ctx, &Env{Stdout: &cliOut, Stderr: &cliErr}, []string{"run", "nom_client.toml", "--connect", ep, "--wire"}); code != 0 {
		t.Fatalf("client exit %d: %s", code, cliErr.String())
	}
	srv.stop()
	srvOut := srv.stdout
	cli := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{6} peer=` + regexp.QuoteMeta(ep) + ` C: OHAI protocol="NOM"`)
	if !cli.MatchString(cliOut.String()) {
		t.Errorf("client wire lines lack timestamp and peer:\n%s", cliOut.String())
	}
	srvLine := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{6} peer=\S+ S: OHAI-OK\n    00000000  aa a0 02 `)
	if !srvLine.MatchString(srvOut.String()) {
		t.Errorf("server wire lines lack peer or hex dump:\n%s", srvOut.String())
	}
}

// sync reloads its machine like serve: a changed file that fails the
// check is refused with its position, a good one is loaded and named with
// its hash (the next session runs it).
func TestSyncReloadsMachine(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../machines/fmq_client.toml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "client.toml")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "pub")
	if err := os.MkdirAll(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	epFile := filepath.Join(dir, "ep")
	var srvOut, srvErr lockedBuffer
	srvDone := make(chan int)
	go func() {
		srvDone <- runMain(ctx, &Env{Stdout: &srvOut, Stderr: &srvErr}, []string{"serve", "--publish", pub, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile})
	}()
	ep := strings.TrimSpace(waitFile(t, epFile))
	var cliOut, cliErr lockedBuffer
	cliDone := make(chan int)
	go func() {
		cliDone <- runMain(ctx, &Env{Stdout: &cliOut, Stderr: &cliErr}, []string{"sync", "--connect", ep, "--inbox", filepath.Join(dir, "in"), "--machine", file, "--progress", "never"})
	}()
	waitLog := func(want string) { t.Helper(); waitLog(t, &cliErr, want) }
	waitLog("msg=syncing") // logged once the machine file is watched
	broken := strings.Replace(string(src), `"report synced"`, `"report synched"`, 1)
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("reload refused")
	waitLog(`unknown action \"report synched\"`)
	good := strings.Replace(string(src), `window    = { default = 4000000,`, `window    = { default = 3000000,`, 1)
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(`"machine reloaded"`)
	if !regexp.MustCompile(`"machine reloaded" why="file changed" machine=\S+client.toml hash=[0-9a-f]{12}`).MatchString(cliErr.String()) {
		t.Errorf("the reload log does not name the machine and hash:\n%s", cliErr.String())
	}
	cancel()
	<-cliDone
	<-srvDone
}

// spec/actions.md is the catalogue as `fmqrun actions --markdown` prints it.
func TestActionsDocCurrent(t *testing.T) {
	code, out, errs := runCmd(t, "actions", "--markdown")
	if code != 0 {
		t.Fatal(errs)
	}
	doc, err := os.ReadFile("../../spec/actions.md")
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(doc), "## "); i < 0 || string(doc[i:]) != out {
		t.Errorf("spec/actions.md is stale: replace everything from its first \"## \" with the output of `go run ./cmd/fmqrun actions --markdown`")
	}
}
