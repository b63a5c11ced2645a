package faults

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

// summary is fmqrun sync --json's line.
type summary struct {
	Files        int64  `json:"files"`
	Deleted      int64  `json:"deleted"`
	Bytes        int64  `json:"bytes"`
	ResumedBytes int64  `json:"resumed_bytes"`
	Problems     int64  `json:"problems"`
	Refused      int64  `json:"refused"`
	Sessions     int    `json:"sessions"`
	ElapsedMS    int64  `json:"elapsed_ms"`
	Error        string `json:"error"`
}

// proc is a running fmqrun.
type proc struct{ *testutil.Proc }

// start runs fmqrun with args. The process is killed (SIGKILL) at test
// cleanup if it is still running.
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return &proc{testutil.Start(t, exec.Command(fmqrunBinary(t), args...))}
}

// wait waits (bounded) for the process to exit and parses its --json line.
func (p *proc) wait(t testing.TB, limit time.Duration) (summary, error) {
	t.Helper()
	err := p.Wait(t, limit)
	var s summary
	line := strings.TrimSpace(p.Stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if line != "" {
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("fmqrun --json printed %q: %v", line, err)
		}
	}
	return s, err
}

var tail = testutil.Tail

// syncArgs are the arguments of a throttled fmqrun sync --once --json.
func syncArgs(endpoint, inbox string, extra ...string) []string {
	args := []string{"sync", "--connect", endpoint, "--inbox", inbox, "--once", "--json",
		"--progress", "never", "--log-level", "warn"}
	return append(args, extra...)
}

// startServeProc runs fmqrun serve on a fixed endpoint and waits until it
// serves (it writes its endpoint to a file then).
func startServeProc(t testing.TB, pub, endpoint string, extra ...string) *proc {
	t.Helper()
	epFile := filepath.Join(t.TempDir(), "endpoint")
	args := append([]string{"serve", "--publish", pub, "--bind", endpoint, "--print-endpoint", epFile,
		"--log-level", "warn"}, extra...)
	p := start(t, args...)
	p.WaitFile(t, epFile, 15*time.Second)
	return p
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}
