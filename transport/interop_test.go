package transport

// Interop with libzmq through Debian's python3-zmq (testdata/interop.py).
// Skipped, with the reason, when no python3 with zmq is found (failed under CI).

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/internal/testutil"
)

// python returns a python3 that can import zmq, or skips the test (fails
// it under CI).
func python(t *testing.T) string { return testutil.PythonZMQ(t) }

func lastLine(s string) string { return testutil.LastLine(s) }

// runPy runs interop.py to completion and returns its last stdout line.
func runPy(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python(t), append([]string{"testdata/interop.py"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Logf("interop.py stderr: %s", ee.Stderr)
		}
		t.Fatalf("interop.py %v: %v; stdout %q", args, err, out)
	}
	return lastLine(string(out))
}

// startPyRouter starts a libzmq ROUTER and returns its endpoint.
func startPyRouter(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(python(t), append([]string{"testdata/interop.py", "router"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		ep, ok := strings.CutPrefix(l, "ENDPOINT ")
		if !ok {
			t.Fatalf("python router said %q", l)
		}
		return ep
	case <-time.After(15 * time.Second):
		t.Fatal("python router did not start")
	}
	return ""
}

func TestInteropLibzmqDealerToOurRouter(t *testing.T) {
	python(t)
	pw := NewPasswords(map[string]string{"ada": "lovelace"})
	for _, tc := range []struct {
		name   string
		opt    Options
		args   []string
		want   string
		reason string
	}{
		{"null", Options{}, []string{"--identity", "py-dealer"}, "OK 10", ""},
		{"null-heartbeat", Options{}, []string{"--heartbeat", "50", "--count", "4"}, "OK 4", ""},
		{"plain", Options{PlainServer: pw}, []string{"--plain", "ada:lovelace", "--identity", "py-dealer"}, "OK 10", ""},
		{"plain-wrong-password", Options{PlainServer: pw}, []string{"--plain", "ada:nope"}, "AUTH-FAILED 400", ReasonAuthFailed},
		{"plain-unknown-user", Options{PlainServer: pw}, []string{"--plain", "eve:lovelace"}, "AUTH-FAILED 400", ReasonAuthFailed},
		{"null-to-plain", Options{PlainServer: pw}, nil, "", ReasonBadMechanism},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listen(t, tc.opt)
			peers := make(chan string, 100)
			go func() {
				for m := range r.Recv() {
					peers <- m.Peer
					r.Send(m.Peer, m.Body)
				}
			}()
			if tc.name == "null-to-plain" {
				// libzmq retries a mechanism mismatch silently: the dealer
				// runs until the drop is seen, then it is killed.
				ctx, cancel := context.WithCancel(context.Background())
				cmd := exec.CommandContext(ctx, python(t), "testdata/interop.py", "dealer", r.Endpoint(), "--count", "1")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() { cancel(); cmd.Wait() }()
				// libzmq (linger 0) may close before its greeting is out.
				waitStats(t, r.Stats, "mechanism mismatch dropped", func(s Stats) bool {
					if s.Established > 0 {
						t.Fatalf("a NULL dealer got in: stats %+v", s)
					}
					return s.Drops[ReasonBadMechanism]+s.Drops[ReasonHandshakeClosed] > 0
				})
				return
			}
			got := runPy(t, append([]string{"dealer", r.Endpoint()}, tc.args...)...)
			if got != tc.want {
				t.Fatalf("python dealer: %q, want %q", got, tc.want)
			}
			if tc.reason != "" {
				waitDrop(t, r.Stats, tc.reason, 1, statsWait)
				return
			}
			if strings.Contains(strings.Join(tc.args, " "), "py-dealer") {
				if p := <-peers; p != "py-dealer" {
					t.Fatalf("peer identity %q", p)
				}
			}
			if tc.name == "null-heartbeat" {
				// libzmq would drop a silent server and reconnect: one
				// connection means our PONGs kept it alive.
				if s := r.Stats(); s.Pings == 0 || s.Established != 1 {
					t.Fatalf("want pings on one connection; stats %+v", s)
				}
			}
		})
	}
}

func TestInteropOurDealerToLibzmqRouter(t *testing.T) {
	python(t)
	for _, tc := range []struct {
		name  string
		args  []string
		creds *PlainCredentials
		auth  string // expected AuthError reason
	}{
		{"null", nil, nil, ""},
		{"plain", []string{"--plain", "ada:lovelace"}, &PlainCredentials{"ada", "lovelace"}, ""},
		{"plain-wrong-password", []string{"--plain", "ada:lovelace"}, &PlainCredentials{"ada", "nope"}, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := startPyRouter(t, tc.args...)
			d, err := Dial(ep, Options{Identity: "go-dealer", PlainClient: tc.creds, Logger: testLogger()})
			if tc.auth != "" {
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Reason != tc.auth {
					t.Fatalf("dial: %v, want AuthError %s", err, tc.auth)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			talkToPyRouter(t, d, "hello", strings.Repeat("x", 70000))
		})
	}
}

// talkToPyRouter asks interop.py's router who we are (the Dealer's identity
// must be "go-dealer"), has it echo bodies, then tells it to quit and waits
// for the Dealer to see the connection lost.
func talkToPyRouter(t *testing.T, d *Dealer, bodies ...string) {
	t.Helper()
	for i, body := range append([]string{"whoami"}, bodies...) {
		if err := d.Send([]byte(body)); err != nil {
			t.Fatal(err)
		}
		got := string(recvMsg(t, d.Recv(), 10*time.Second).Body)
		want := "echo:" + body
		if i == 0 {
			want = "go-dealer"
		}
		if got != want {
			t.Fatalf("reply %d: %.40q, want %.40q", i, got, want)
		}
	}
	d.Send([]byte("quit"))
	select {
	case <-d.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("no Lost after the libzmq router exited")
	}
}
