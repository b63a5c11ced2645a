package transport

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// CURVE against libzmq (pyzmq), both directions; skipped like the other
// interop tests when no python3 with zmq is found.

func TestInteropCurveLibzmqDealerToOurRouter(t *testing.T) {
	python(t)
	srv, cli := curvePair(t)
	_, stranger := curvePair(t)
	allow := NewCurveKeySet(cli.Public)
	for _, tc := range []struct {
		name   string
		opt    Options
		args   []string
		want   string
		reason string
	}{
		{"curve", Options{CurveServer: &CurveServer{Keys: srv}}, []string{"--identity", "py-dealer"}, "OK 10", ""},
		{"curve-allowed-key", Options{CurveServer: &CurveServer{Keys: srv, Clients: allow}}, []string{"--curve-secret=" + cli.Secret.String()}, "OK 10", ""},
		{"curve-heartbeat", Options{CurveServer: &CurveServer{Keys: srv}}, []string{"--heartbeat", "50", "--count", "4"}, "OK 4", ""},
		{"curve-unknown-key", Options{CurveServer: &CurveServer{Keys: srv, Clients: allow}}, []string{"--curve-secret=" + stranger.Secret.String()}, "AUTH-FAILED 400", ReasonAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listen(t, tc.opt)
			peers := make(chan string, 100)
			keys := make(chan CurveKey, 100)
			go func() {
				for m := range r.Recv() {
					k, _ := r.PeerKey(m.Peer) // while it is connected
					peers <- m.Peer
					keys <- k
					r.Send(m.Peer, m.Body)
				}
			}()
			args := append([]string{"dealer", r.Endpoint(), "--curve-server-key=" + srv.Public.String()}, tc.args...)
			if got := runPy(t, args...); got != tc.want {
				t.Fatalf("python dealer: %q, want %q", got, tc.want)
			}
			if tc.reason != "" {
				waitDrop(t, r.Stats, tc.reason, 1, 5*time.Second)
				return
			}
			p := <-peers
			if tc.name == "curve" && p != "py-dealer" {
				t.Fatalf("peer identity %q", p)
			}
			if tc.name == "curve-allowed-key" {
				if k := <-keys; k != cli.Public {
					t.Fatalf("peer key %v, want %v", k, cli.Public)
				}
			}
			if tc.name == "curve-heartbeat" {
				if s := r.Stats(); s.Pings == 0 || s.Established != 1 {
					t.Fatalf("want boxed pings on one connection; stats %+v", s)
				}
			}
		})
	}
}

func TestInteropCurveOurDealerToLibzmqRouter(t *testing.T) {
	python(t)
	srv, cli := curvePair(t)
	other, stranger := curvePair(t)
	for _, tc := range []struct {
		name      string
		args      []string
		serverKey CurveKey
		keys      CurveKeyPair
		auth      string // expected AuthError reason (a prefix)
	}{
		{"curve", nil, srv.Public, CurveKeyPair{}, ""},
		{"curve-allowed-key", []string{"--curve-clients=" + cli.Public.String()}, srv.Public, cli, ""},
		{"curve-unknown-key", []string{"--curve-clients=" + cli.Public.String()}, srv.Public, stranger, "400"},
		{"curve-wrong-server-key", nil, other.Public, cli, "the server closed the connection after our CURVE HELLO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := startPyRouter(t, append([]string{"--curve-secret=" + srv.Secret.String()}, tc.args...)...)
			d, err := Dial(ep, Options{Identity: "go-dealer", Logger: testLogger(), CurveClient: &CurveClient{ServerKey: tc.serverKey, Keys: tc.keys}})
			if tc.auth != "" {
				var ae *AuthError
				if !errors.As(err, &ae) || !strings.HasPrefix(ae.Reason, tc.auth) {
					t.Fatalf("dial: %v, want AuthError %s", err, tc.auth)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			talkToPyRouter(t, d, "hello", "", strings.Repeat("x", 70000), strings.Repeat("y", 3<<20))
		})
	}
}
