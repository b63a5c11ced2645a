package interp_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	_ "github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/interp"
)

// The FileMQ machines pass every contract and whole-machine check, and
// check as a pair.
func TestFileMQMachinesCheck(t *testing.T) {
	srv, err := interp.Load("../machines/fmq_server.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := interp.Load("../machines/fmq_client.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := interp.CheckPair(cli, srv); err != nil {
		t.Fatal(err)
	}
	ns, err := interp.Load("../machines/nom_server.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := interp.Load("../machines/nom_client.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := interp.CheckPair(ns, nc); err != nil {
		t.Fatal(err)
	}
	if err := interp.CheckPair(srv, nc); err == nil || !strings.Contains(err.Error(), "speaks nom and the server filemq") {
		t.Fatalf("mixed protocols: %v", err)
	}
}

func loadSrc(t *testing.T, name, src string) (*interp.Machine, error) {
	t.Helper()
	return interp.LoadBytes(name, []byte(src), loadOpts)
}

// posOf is "name:line:col" of the first occurrence of what in src, the
// column moved on by skip bytes (1: what's second byte), so that expected
// positions follow edits of the machine file.
func posOf(t *testing.T, src, name, what string, skip int) string {
	t.Helper()
	i := strings.Index(src, what)
	if i < 0 {
		t.Fatalf("%s does not hold %q", name, what)
	}
	line := strings.Count(src[:i], "\n") + 1
	col := i - strings.LastIndex(src[:i], "\n") + skip
	return fmt.Sprintf("%s:%d:%d", name, line, col)
}

func edit(t *testing.T, path, old, new string) string {
	t.Helper()
	src := mustRead(t, path)
	if !strings.Contains(src, old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	return strings.Replace(src, old, new, 1)
}

// A pair whose server expires idle clients before their heartbeat, and
// whose client no longer handles a message the server sends, is refused
// with positions in the machine to change.
func TestCheckPairRefuses(t *testing.T) {
	srv, err := loadSrc(t, "srv.toml", edit(t, "../machines/fmq_server.toml", `expiry     = { default = "60s"`, `expiry     = { default = "2s"`))
	if err != nil {
		t.Fatal(err)
	}
	src := mustRead(t, "../machines/fmq_client.toml")
	i := strings.Index(src, "on.ICANHAZ-OK  = [")
	j := strings.Index(src[i:], "]\n") // the end of the handler's alternatives
	if i < 0 || j < 0 {
		t.Fatal("fmq_client.toml: no ICANHAZ-OK handler to remove")
	}
	cli, err := loadSrc(t, "cli.toml", src[:i]+src[i+j+2:])
	if err != nil {
		t.Fatal(err)
	}
	err = interp.CheckPair(srv, cli)
	var list interp.ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	got := list.Error()
	srvSrc := mustRead(t, "../machines/fmq_server.toml")
	for _, want := range []string{
		posOf(t, srvSrc, "srv.toml", `"send ICANHAZ-OK"`, 1) + `: the server sends ICANHAZ-OK, which fmq_client (cli.toml) handles in no state`,
		posOf(t, srvSrc, "srv.toml", `expiry     = { default = "60s"`, len(`expiry     = { default = `)+1) + `: expiry 2s of the server is not longer than what keeps an idle client alive (fmq_client's heartbeat 2s)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}

// Settings with a range refuse values outside it at engine start (--set,
// config) and at reload, naming the setting and why.
func TestSettingRangesEnforced(t *testing.T) {
	cli, err := interp.Load("../machines/fmq_client.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	for set, want := range map[string]string{
		"window=0":      "setting window: 0 is below the minimum 1 (action \"note acknowledged\": with no credit the server never sends)",
		"heartbeat=1ns": "setting heartbeat: 1ns is too short for a timer: 0 (off) or at least 1ms",
	} {
		k, v, _ := strings.Cut(set, "=")
		_, err := interp.NewClient(cli, interp.Options{Settings: map[string]string{k: v}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: got %v, want %q", set, err, want)
		}
	}
	srv, err := interp.Load("../machines/fmq_server.toml", loadOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"-1", "0", "16777217"} {
		if _, err := interp.NewServer(srv, interp.Options{Settings: map[string]string{"chunk_size": v}}); err == nil || !strings.Contains(err.Error(), "setting chunk_size: "+v) {
			t.Errorf("chunk_size=%s: got %v", v, err)
		}
	}
	e, err := interp.NewServer(srv, interp.Options{Settings: map[string]string{"chunk_size": "16777216"}})
	if err != nil {
		t.Fatalf("chunk_size at the frame limit: %v", err)
	}
	// A reload under a machine whose range the override breaks is refused.
	narrow, err := loadSrc(t, "narrow.toml", edit(t, "../machines/fmq_server.toml", `chunk_size = { default = 1000000,`, `chunk_size = { default = 1000, max = 4096,`))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(narrow); err == nil || !strings.Contains(err.Error(), "above the maximum 4096") {
		t.Fatalf("reload: %v", err)
	}
}

// Guards that test a list's length before indexing it are accepted.
func TestGuardIndexBounded(t *testing.T) {
	for _, guard := range []string{
		"len(msg.mechanisms) > 0 && msg.mechanisms[0] == 'PLAIN'",
		"len(msg.mechanisms) >= 2 && msg.mechanisms[1] == 'PLAIN'",
		"0 < len(msg.mechanisms) and msg.mechanisms[-1] == 'PLAIN'",
		"len(msg.mechanisms) > 0 ? msg.mechanisms[0] == 'PLAIN' : false",
	} {
		src := edit(t, "../machines/fmq_client.toml", `on.ORLY     = { do = ["answer challenge", "send YARLY"] }`,
			`on.ORLY     = [ { when = "`+guard+`", do = ["answer challenge", "send YARLY"] }, { do = ["report refusal", "terminate"] } ]`)
		if _, err := loadSrc(t, "c.toml", src); err != nil {
			t.Errorf("%s: %v", guard, err)
		}
	}
	src := edit(t, "../machines/fmq_client.toml", `on.ORLY     = { do = ["answer challenge", "send YARLY"] }`,
		`on.ORLY     = [ { when = "len(msg.mechanisms) > 0 && msg.mechanisms[1] == 'PLAIN'", do = ["answer challenge", "send YARLY"] }, { do = ["report refusal", "terminate"] } ]`)
	if _, err := loadSrc(t, "c.toml", src); err == nil || !strings.Contains(err.Error(), "len(msg.mechanisms) >= 2") {
		t.Errorf("index 1 under len > 0: %v", err)
	}
}
