package testutil

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var pyOnce struct {
	sync.Once
	path, why string
}

// PythonZMQ returns a python3 that can import zmq (libzmq through pyzmq,
// Debian's python3-zmq), or skips the test saying why (fails it under CI:
// see Missing).
func PythonZMQ(t testing.TB) string {
	t.Helper()
	pyOnce.Do(func() {
		var tried []string
		for _, p := range []string{"python3", "/usr/bin/python3"} {
			path, err := exec.LookPath(p)
			if err != nil {
				continue
			}
			out, err := exec.Command(path, "-c", "import zmq, zmq.auth.thread; print(zmq.zmq_version())").CombinedOutput()
			if err == nil {
				pyOnce.path = path
				return
			}
			tried = append(tried, path+": "+strings.TrimSpace(LastLine(string(out))))
		}
		pyOnce.why = "libzmq interop skipped: no python3 with zmq (apt-get install python3-zmq); tried " + strings.Join(tried, "; ")
	})
	if pyOnce.path == "" {
		Missing(t, pyOnce.why)
	}
	return pyOnce.path
}

// LastLine returns the last non-empty line of s.
func LastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
