package conform

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustParse(t *testing.T, src string) *Script {
	t.Helper()
	s, err := Parse("t.txtar", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	src := `role client
C: OHAI protocol=FILEMQ version=70000
C: NOPE
S: OHAI-OK bogus=1
C: NOM credit=x
! C: HUGZ within 1s
S: CHEEZBURGER eof=~(
frobnicate
C: raw ZZ
S: ICANHAZ-OK within soon
server chunk_size=4
C: OHAI within 1s
S: CHEEZBURGER chunk=@missing
`
	_, err := Parse("t.txtar", []byte(src))
	var el ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("want ErrorList, got %v", err)
	}
	want := []string{
		"t.txtar:2:", "version", // 70000 does not fit number2
		"t.txtar:3:4:", "no message \"NOPE\"",
		"t.txtar:4:12:", "no field \"bogus\"",
		"t.txtar:5:", "number",
		"t.txtar:6:1:", "cannot expect",
		"t.txtar:7:", "eof",
		"t.txtar:8:1:", "unknown command",
		"t.txtar:9:", "bad hex",
		"t.txtar:10:", "bad duration",
		"t.txtar:11:1:", "before the first step",
		"t.txtar:12:", "within applies to expectations",
		"t.txtar:13:", "no section",
	}
	text := el.Error()
	for i := 0; i < len(want); i += 2 {
		found := false
		for _, e := range el {
			if strings.HasPrefix(e.Error(), want[i]) && strings.Contains(e.Error(), want[i+1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error %q ... %q in:\n%s", want[i], want[i+1], text)
		}
	}
	for i := 1; i < len(el); i++ {
		if el[i].Line < el[i-1].Line {
			t.Errorf("errors not sorted:\n%s", text)
		}
	}
}

func TestParseTraceLines(t *testing.T) {
	// Exactly what interp.FormatMessage prints.
	s := mustParse(t, `C: NOM credit=1000 sequence=0
C: ICANHAZ path="/a b" options={"RESYNC"="1"} cache={}
S: CHEEZBURGER sequence=0 operation=1 filename="/a" offset=0 eof=1 headers={"SHA1"="AB","SIZE"="1"} chunk=<1 bytes>
S: ORLY mechanisms=["PLAIN"] challenge=<0 bytes>
`)
	if len(s.Steps) != 4 {
		t.Fatalf("steps: %d", len(s.Steps))
	}
	m, err := filemq.Protocol.Decode(s.Steps[0].Frame, nil)
	if err != nil || m.(*filemq.Nom).Credit != 1000 {
		t.Fatalf("NOM: %v %v", m, err)
	}
	m, err = filemq.Protocol.Decode(s.Steps[1].Frame, nil)
	if err != nil || m.(*filemq.Icanhaz).Path != "/a b" || m.(*filemq.Icanhaz).Options["RESYNC"] != "1" {
		t.Fatalf("ICANHAZ: %v %v", m, err)
	}
	cz := filemq.NewCheezburger()
	cz.Filename, cz.EOF, cz.Operation = "/a", 1, 1
	cz.Headers = map[string]string{"SHA1": "AB", "SIZE": "1"}
	cz.Chunk = []byte("x")
	frame, _ := cz.Append(nil)
	ss := &session{s: s}
	if why := ss.mismatch(&s.Steps[2], frame); why != "" {
		t.Errorf("trace expectation does not match: %s", why)
	}
	cz.Chunk = []byte("xy")
	frame, _ = cz.Append(nil)
	if why := ss.mismatch(&s.Steps[2], frame); !strings.Contains(why, "chunk has 2 bytes, want 1") {
		t.Errorf("length mismatch not reported: %q", why)
	}
}

func TestMatchers(t *testing.T) {
	s := mustParse(t, `S: CHEEZBURGER filename=~^/a offset=10 headers.SHA1=~^[0-9A-F]{40}$ len(chunk)=3 chunk=@pub/c
S: CHEEZBURGER headers={SIZE=3}
S: CHEEZBURGER headers.SIZE=4
S: *
! S: HUGZ within 10ms
-- pub/c --
ab
`)
	cz := filemq.NewCheezburger()
	cz.Filename, cz.Offset, cz.Chunk = "/abc", 10, []byte("ab\n")
	cz.Headers = map[string]string{"SHA1": strings.Repeat("A", 40), "SIZE": "3"}
	frame, _ := cz.Append(nil)
	ss := &session{s: s}
	checks := []struct {
		step int
		want string // "" = match
	}{{0, ""}, {1, "headers is"}, {2, `headers.SIZE is "3", want "4"`}, {3, ""}, {4, "want HUGZ"}}
	for _, c := range checks {
		got := ss.mismatch(&s.Steps[c.step], frame)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("step %d: got %q, want %q", c.step, got, c.want)
		}
	}
	cz.Headers["SHA1"] = "zz"
	frame, _ = cz.Append(nil)
	if got := ss.mismatch(&s.Steps[0], frame); !strings.Contains(got, "SHA1") {
		t.Errorf("regexp mismatch not reported: %q", got)
	}
	// garbage matches only "*" silences, never a named expectation
	if got := ss.mismatch(&s.Steps[0], []byte{0xAA, 0xA3, 0x08}); !strings.Contains(got, "malformed") {
		t.Errorf("malformed: %q", got)
	}
}

func TestRawAndSubst(t *testing.T) {
	s := mustParse(t, `C: raw AA A3 01 06 "FILEMQ" 00*1 02
C: raw aaa309
C: ICANHAZ path=/${repeat:ab:3} cache={"f"="${sha1:pub/f:2}@2"}
-- pub/f --
hello
`)
	want := []byte{0xAA, 0xA3, 1, 6, 'F', 'I', 'L', 'E', 'M', 'Q', 0, 2}
	if string(s.Steps[0].Frame) != string(want) {
		t.Errorf("raw: % x", s.Steps[0].Frame)
	}
	if string(s.Steps[1].Frame) != "\xAA\xA3\x09" {
		t.Errorf("raw: % x", s.Steps[1].Frame)
	}
	m, err := filemq.Protocol.Decode(s.Steps[2].Frame, nil)
	if err != nil {
		t.Fatal(err)
	}
	ic := m.(*filemq.Icanhaz)
	// sha1("he") = 0B6B8F5A0B0B1F5A... computed by the runner; check shape and path
	if ic.Path != "/ababab" || !strings.HasSuffix(ic.Cache["f"], "@2") || len(ic.Cache["f"]) != 42 {
		t.Errorf("ICANHAZ: %+v", ic)
	}
}

func TestTxtar(t *testing.T) {
	c, fs := splitTxtar([]byte("a\n-- x --\n1\n-- y --\n-- z --\nlast"))
	if string(c) != "a\n" || len(fs) != 3 || string(fs[0].Data) != "1\n" || len(fs[1].Data) != 0 || string(fs[2].Data) != "last\n" || fs[2].Line != 5 {
		t.Fatalf("%q %+v", c, fs)
	}
}

func TestFromTrace(t *testing.T) {
	trace := `C: OHAI protocol="FILEMQ" version=2
12:00:01.250113 peer=0a1b S: OHAI-OK
notify - file /a
12:00:01.250200 peer="x y" C: malformed filemq: truncated frame at offset 3
C: YARLY mechanism="PLAIN" response=<11 bytes>
S: CHEEZBURGER sequence=0 operation=1 filename="/a" offset=0 eof=1 headers={"SIZE"="1"} chunk=<1 bytes>
`
	out, err := FromTrace(strings.NewReader(trace), TraceOptions{Loose: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	text := string(out)
	for _, w := range []string{"# notify - file /a", "# C: malformed", "zeros are sent", "S: CHEEZBURGER sequence=0 operation=1 filename=\"/a\" offset=0 eof=1 chunk=<1 bytes>", "! S: * within 300ms"} {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
	out, err = FromTrace(strings.NewReader(trace), TraceOptions{Role: codec.FromServer})
	if err != nil || !strings.Contains(string(out), "role server") {
		t.Errorf("server role: %v\n%s", err, out)
	}
	if _, err := FromTrace(strings.NewReader("nothing here\n"), TraceOptions{}); err == nil {
		t.Error("a trace without messages must be an error")
	}
}

// TestRecordReplay records a real session of fmq's server and client and
// replays the script against a fresh server: a trace becomes a test.
func TestRecordReplay(t *testing.T) {
	pub := t.TempDir()
	os.WriteFile(filepath.Join(pub, "a.txt"), []byte("alpha\n"), 0o644)
	os.MkdirAll(filepath.Join(pub, "d"), 0o755)
	os.WriteFile(filepath.Join(pub, "d", "b.txt"), []byte("bravo bravo\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(pub, "a.txt"), old, old)
	os.Chtimes(filepath.Join(pub, "d", "b.txt"), old, old)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script, err := Record(ctx, RecordOptions{Publish: pub})
	if err != nil {
		t.Fatalf("%v\n%s", err, script)
	}
	for _, w := range []string{"C: OHAI", "C: ICANHAZ", `filename="/d/b.txt"`, "headers.MTIME=~", `headers.SHA1="F73FF5A94760744B44CE94FC6784DB09C720B311"`, "-- pub/d/b.txt --", "C: KTHXBAI"} {
		if !strings.Contains(string(script), w) {
			t.Errorf("recorded script lacks %q:\n%s", w, script)
		}
	}
	s, err := Parse("recorded.txtar", script)
	if err != nil {
		t.Fatal(err)
	}
	var tr strings.Builder
	res := RunInProcess(ctx, s, Options{Work: t.TempDir(), Transcript: &syncBuilder{b: &tr}})
	if res.Status != Pass {
		t.Fatalf("replay: %s\n%s\n%s", res, script, tr.String())
	}
	// and a changed fixture makes the replay fail, naming the line
	s2, _ := Parse("recorded.txtar", []byte(strings.Replace(string(script), "bravo bravo", "bravo BRAVO", 1)))
	res = RunInProcess(ctx, s2, Options{Work: t.TempDir()})
	if res.Status != Fail || !strings.Contains(res.Err.Error(), "recorded.txtar:") {
		t.Fatalf("replay against other content: %s", res)
	}
}

type syncBuilder struct{ b *strings.Builder }

func (s *syncBuilder) Write(p []byte) (int, error) { return s.b.Write(p) }

func TestBugStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// a bug line before a failing step: KnownBug; before passing steps: BugFixed
	fail := mustParse(t, "C: OHAI protocol=FILEMQ version=2\nbug pretend OHAI-OK is wrong\nS: RTFM\n")
	if res := RunInProcess(ctx, fail, Options{}); res.Status != KnownBug || res.Failed() {
		t.Errorf("known bug: %s", res)
	}
	fixed := mustParse(t, "bug pretend\nC: OHAI protocol=FILEMQ version=2\nS: OHAI-OK\n")
	if res := RunInProcess(ctx, fixed, Options{}); res.Status != BugFixed || !res.Failed() {
		t.Errorf("bug fixed: %s", res)
	}
	plain := mustParse(t, "C: OHAI protocol=FILEMQ version=2\nS: RTFM within 300ms\n")
	res := RunInProcess(ctx, plain, Options{})
	if res.Status != Fail || !strings.Contains(res.Err.Error(), "t.txtar:2: want S: RTFM within 300ms; got S: OHAI-OK after") {
		t.Errorf("fail: %s", res)
	}
	skip := mustParse(t, "skip not today\nC: HUGZ\n")
	if res := RunInProcess(ctx, skip, Options{}); res.Status != Skip {
		t.Errorf("skip: %s", res)
	}
	// against a target, scripts needing server config or fixtures are skipped
	cfg := mustParse(t, "server chunk_size=4\nC: HUGZ\n")
	if res := Run(ctx, cfg, Options{Target: "tcp://127.0.0.1:1"}); res.Status != Skip {
		t.Errorf("needs config: %s", res)
	}
}
