//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// naFMQMissing is the label of every fmq row until cmd/fmqrun has serve and sync.
const naFMQMissing = "fmqrun serve/sync missing"

// fmqTool is the fmqrun binary under test, or why it cannot run.
type fmqTool struct {
	Bin    string
	NA     string // non-empty: fmq rows are n/a for this reason
	Detail string // longer explanation for the notes
}

// findModuleRoot walks up from dir to the go.mod of module github.com/fmq/fmq.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/fmq/fmq")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of github.com/fmq/fmq above %s", dir)
		}
	}
}

// prepareFMQ builds cmd/fmqrun into outDir (or takes a prebuilt binary) and
// checks that it has the serve and sync commands with the flags the harness
// drives. Any shortfall yields an n/a reason, never an error: the baselines
// run regardless.
func prepareFMQ(ctx context.Context, root, outDir, prebuilt string) fmqTool {
	bin := prebuilt
	if bin == "" {
		src := filepath.Join(root, "cmd", "fmqrun")
		gofiles, _ := filepath.Glob(filepath.Join(src, "*.go"))
		if len(gofiles) == 0 {
			return fmqTool{NA: naFMQMissing, Detail: "cmd/fmqrun has no Go files yet"}
		}
		bin = filepath.Join(outDir, "fmqrun")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fmqrun")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmqTool{NA: "fmqrun does not build", Detail: "go build ./cmd/fmqrun: " + lastLines(string(out), 4)}
		}
	}
	missing := probeFMQ(ctx, bin)
	if missing != "" {
		return fmqTool{NA: naFMQMissing, Detail: missing}
	}
	return fmqTool{Bin: bin}
}

// probeFMQ asks `fmqrun serve --help` and `fmqrun sync --help` for their
// usage and checks that each names the flags of the contract. It returns
// what is missing, or "".
func probeFMQ(ctx context.Context, bin string) string {
	want := map[string][]string{
		"serve": {"publish", "bind", "print-endpoint"},
		"sync":  {"connect", "subscribe", "inbox", "once", "json"},
	}
	var missing []string
	for _, sub := range []string{"serve", "sync"} {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, _ := exec.CommandContext(pctx, bin, sub, "--help").CombinedOutput()
		cancel()
		for _, flag := range want[sub] {
			if !bytes.Contains(out, []byte(flag)) {
				missing = append(missing, sub+" --"+flag)
			}
		}
	}
	if len(missing) > 0 {
		return "fmqrun usage lacks: " + strings.Join(missing, ", ")
	}
	return ""
}

// fmqServer is a running `fmqrun serve`.
type fmqServer struct {
	proc     *bgProc
	Endpoint string
}

// startFMQServer publishes dir as "/" and waits until the endpoint file is
// written (the contract's readiness signal). With rssFile set the server
// runs under the launcher so that stop reports its own peak RSS.
func startFMQServer(ctx context.Context, bin, runDir, name, dir, rssFile string, env []string, extra ...string) (*fmqServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	bind := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	epFile := filepath.Join(runDir, name+".endpoint")
	_ = os.Remove(epFile)
	p, err := startBg(ctx, filepath.Join(runDir, name+".serve.log"), rssFile, env, bin,
		append([]string{"serve", "--publish", dir, "--bind", bind, "--print-endpoint", epFile}, extra...)...)
	if err != nil {
		return nil, err
	}
	var ep string
	err = p.waitReady(ctx, 2*time.Minute, "endpoint file "+epFile, func() bool {
		b, err := os.ReadFile(epFile)
		if err != nil {
			return false
		}
		line, _, _ := strings.Cut(string(b), "\n")
		ep = strings.TrimSpace(line)
		return strings.HasPrefix(ep, "tcp://")
	})
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("fmqrun serve: %w", err)
	}
	return &fmqServer{proc: p, Endpoint: ep}, nil
}

// stop ends the server and returns its peak RSS in bytes.
func (s *fmqServer) stop() (int64, error) {
	if s.proc.exited() {
		return s.proc.peakRSS(), s.proc.diedError()
	}
	return s.proc.stop(10 * time.Second)
}

// alive reports an error if the server has died.
func (s *fmqServer) alive() error {
	if s.proc.exited() {
		return s.proc.diedError()
	}
	return nil
}

// syncReport is the JSON line `fmqrun sync --json` prints when done.
type syncReport struct {
	Files        int64 `json:"files"`
	Bytes        int64 `json:"bytes"`
	ElapsedMs    int64 `json:"elapsed_ms"`
	FirstByteMs  int64 `json:"first_byte_ms"`
	ResumedBytes int64 `json:"resumed_bytes"`
	// CreditWindow is optional (not in the contract yet): when present it
	// replaces --credit-window in the resume target.
	CreditWindow int64 `json:"credit_window"`
}

// errNoReport is a sync run that printed no JSON report.
var errNoReport = errors.New("no JSON report line on stdout")

// parseSyncReport takes the last line of stdout that is a JSON object.
func parseSyncReport(stdout []byte) (syncReport, error) {
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r syncReport
		dec := json.NewDecoder(strings.NewReader(line))
		if err := dec.Decode(&r); err != nil {
			return syncReport{}, fmt.Errorf("sync report %q: %w", truncate(line, 120), err)
		}
		return r, nil
	}
	return syncReport{}, fmt.Errorf("%w (stdout: %q)", errNoReport, truncate(string(stdout), 120))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// syncArgs are the arguments of one `fmqrun sync --once --json`.
func syncArgs(endpoint, inbox string) []string {
	return []string{"sync", "--connect", endpoint, "--subscribe", "/", "--inbox", inbox, "--once", "--json"}
}

// runFMQSync runs one client to completion into inbox, with env added to
// its environment.
func runFMQSync(ctx context.Context, timeout time.Duration, bin, logPath, endpoint, inbox string, env []string, extra ...string) (procRun, syncReport, error) {
	args := append(syncArgs(endpoint, inbox), extra...)
	r, err := runProcEnv(ctx, timeout, logPath, env, bin, args, bin, args)
	if err != nil {
		return r, syncReport{}, err
	}
	rep, err := parseSyncReport(r.Stdout)
	return r, rep, err
}

// curveKeys makes a CURVE key pair with `fmqrun keygen` in dir and returns
// the serve and sync arguments that use it.
func curveKeys(ctx context.Context, bin, dir string) (serve, sync []string, err error) {
	base := filepath.Join(dir, "bench-curve")
	os.Remove(base + ".key")
	os.Remove(base + ".pub")
	if out, err := exec.CommandContext(ctx, bin, "keygen", base).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("fmqrun keygen: %v: %s", err, lastLines(string(out), 2))
	}
	return []string{"--curve-secret-file", base + ".key"}, []string{"--curve-server-key", base + ".pub"}, nil
}

// partialName is where the contract keeps a resumable partial of rel.
func partialName(inbox, rel string) string {
	dir, base := filepath.Split(filepath.FromSlash(rel))
	return filepath.Join(inbox, dir, "."+base+".fmqpart")
}
