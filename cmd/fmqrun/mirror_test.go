package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// served is an fmqrun command that serves (serve, relay, run), running in
// this process.
type served struct {
	ep             string
	stdout, stderr *lockedBuffer
	stop           func() int // cancels it (once) and returns its exit code
}

func startServed(t *testing.T, args ...string) *served { return startCmd(t, "serve", args...) }

// startCmd runs cmd bound to a free port of 127.0.0.1 until the test ends
// (or stop), and waits for the endpoint it prints once serving.
func startCmd(t *testing.T, cmd string, args ...string) *served {
	t.Helper()
	epFile := filepath.Join(t.TempDir(), "ep")
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, &Env{Stdout: s.stdout, Stderr: s.stderr},
			append([]string{cmd, "--bind", "tcp://127.0.0.1:0", "--print-endpoint", epFile}, args...))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.ep == "" {
		if b, err := os.ReadFile(epFile); err == nil && len(b) > 0 {
			s.ep = strings.TrimSpace(string(b))
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("%s exited %d: %s", cmd, code, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s not ready: %s", cmd, s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	code := 0
	s.stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// syncOnce runs fmqrun sync --once --json and returns its exit code,
// summary and stderr.
func syncOnce(t *testing.T, args ...string) (int, syncSummary, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb lockedBuffer
	code := runMain(ctx, &Env{Stdout: &out, Stderr: &errb},
		append([]string{"sync", "--once", "--json", "--progress", "never"}, args...))
	var sum syncSummary
	if line := strings.TrimSpace(out.String()); line != "" {
		if err := json.Unmarshal([]byte(line), &sum); err != nil {
			t.Fatalf("--json printed %q: %v", line, err)
		}
	}
	if sum.ExitCode != code && out.String() != "" {
		t.Errorf("summary exit_code %d, process exit %d", sum.ExitCode, code)
	}
	return code, sum, errb.String()
}

func write(t *testing.T, dir, rel, data string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
}

func readOr(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// startLiveSync runs a live fmqrun sync until the test ends (it must then
// exit 0, as a live sync stopped by a signal does); it returns its stderr.
func startLiveSync(t *testing.T, args ...string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	errb := &lockedBuffer{}
	go func() {
		done <- runMain(ctx, &Env{Stdout: &lockedBuffer{}, Stderr: errb},
			append([]string{"sync", "--progress", "never"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("live sync stopped by a signal: exit %d\n%s", code, errb.String())
		}
	})
	return errb
}

// eventually waits (30 s at most) until ok, or fails saying what it
// waited for, with logs.
func eventually(t *testing.T, what string, logs *lockedBuffer, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out\n%s", what, logs.String())
		}
	}
}

// Issue 11: "a file of the user's own in the inbox (inbox/thesis.txt) is
// deleted on the first sync --once ("1 deleted", exit 0, no warning)". It is
// kept and counted; --delete asks for an exact mirror.
func TestSyncKeepsUserFiles(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "published")
	write(t, in, "thesis.txt", "years of work")
	srv := startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK || sum.Status != "ok" || sum.Deleted != 0 || sum.Kept != 1 || sum.Files != 1 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	if got := readOr(filepath.Join(in, "thesis.txt")); got != "years of work" {
		t.Fatalf("thesis.txt: %s", got)
	}
	if !strings.Contains(errs, "kept files fmq did not write") || !strings.Contains(errs, "files=1") {
		t.Errorf("no word about the kept file:\n%s", errs)
	}
	// A server file over a user's file of the same name: not overwritten;
	// a conflict, and a partial transfer.
	write(t, in, "a.txt", "my own a.txt")
	os.Chtimes(filepath.Join(in, "a.txt"), time.Now(), time.Now())
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitPartial || sum.Conflicts != 1 || readOr(filepath.Join(in, "a.txt")) != "my own a.txt" {
		t.Fatalf("over the user's a.txt: exit %d, summary %+v\n%s", code, sum, errs)
	}
	if len(sum.Messages) != 1 || !strings.Contains(sum.Messages[0], "was not written by fmq") {
		t.Errorf("messages %q", sum.Messages)
	}
	// A file fmq installed and the server deleted goes.
	write(t, pub, "b.txt", "soon gone")
	srv.stop()
	os.Remove(filepath.Join(in, "a.txt"))
	srv = startServed(t, "--publish", pub)
	if code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 2 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	srv.stop()
	os.Remove(filepath.Join(pub, "b.txt"))
	srv = startServed(t, "--publish", pub)
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK || sum.Deleted != 1 || readOr(filepath.Join(in, "b.txt")) == "soon gone" {
		t.Fatalf("server delete: exit %d, summary %+v\n%s", code, sum, errs)
	}
	if readOr(filepath.Join(in, "thesis.txt")) != "years of work" {
		t.Fatal("thesis.txt lost")
	}
	// --delete: an exact mirror.
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in, "--delete")
	if _, err := os.Stat(filepath.Join(in, "thesis.txt")); code != exitOK || sum.Deleted != 1 || err == nil {
		t.Fatalf("--delete: exit %d, summary %+v, thesis.txt %v\n%s", code, sum, err, errs)
	}
}

// Issue 11: "serve --publish same=/photos and sync --inbox same deleted the
// whole source tree within 10 s". The server refuses the subscription; the
// source is untouched.
func TestSyncIntoPublishedDirectoryRefused(t *testing.T) {
	same := t.TempDir()
	write(t, same, "p1.jpg", "photo 1")
	write(t, same, "sub/p2.jpg", "photo 2")
	srv := startServed(t, "--publish", same+"=/photos")
	for run := range 2 {
		code, sum, errs := syncOnce(t, "--connect", srv.ep, "--subscribe", "/photos", "--inbox", same)
		if code != exitRefused || sum.Status != "refused" || !strings.Contains(errs, "your inbox overlaps what this server publishes") {
			t.Fatalf("run %d: exit %d, summary %+v\n%s", run, code, sum, errs)
		}
	}
	if readOr(filepath.Join(same, "p1.jpg")) != "photo 1" || readOr(filepath.Join(same, "sub", "p2.jpg")) != "photo 2" {
		t.Fatal("source changed")
	}
	if _, err := os.Stat(filepath.Join(same, "photos")); err == nil {
		t.Fatal("nested copy made")
	}
	// A parent of the published directory as the inbox: refused too.
	code, _, errs := syncOnce(t, "--connect", srv.ep, "--subscribe", "/photos", "--inbox", filepath.Dir(same))
	if code != exitRefused || !strings.Contains(errs, "it contains the published directory /photos") {
		t.Fatalf("parent inbox: exit %d\n%s", code, errs)
	}
}

// Issue 11: "serve publishes . by default; sync --inbox ./mirror from the
// same folder built 79 levels of mirror/mirror/... in 15 s". An inbox is
// never published, so the mirror never holds itself.
func TestMirrorInsidePublishedTreeNeverRecurses(t *testing.T) {
	work := t.TempDir()
	write(t, work, "notes.txt", "n")
	srv := startServed(t, "--publish", work, "--settle", "50ms", "--rescan", "200ms")
	mirror := filepath.Join(work, "mirror")
	for run := range 3 {
		code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", mirror)
		// The first run may be served before the server has seen the new
		// inbox (it is then mirrored once, never into itself); later runs
		// are refused.
		if code != exitOK && code != exitRefused {
			t.Fatalf("run %d: exit %d, summary %+v\n%s", run, code, sum, errs)
		}
		if _, err := os.Stat(filepath.Join(mirror, "mirror")); err == nil {
			t.Fatalf("run %d: mirror/mirror exists", run)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.stderr.String(), "not publishing an fmq inbox") {
		if time.Now().After(deadline) {
			t.Fatalf("the server never said it leaves the inbox out:\n%s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, errs := syncOnce(t, "--connect", srv.ep, "--inbox", mirror); code != exitRefused || !strings.Contains(errs, "lies inside the published tree, at /mirror") {
		t.Fatalf("once seen: exit %d\n%s", code, errs)
	}
}

// Issue 11: "two clients on one inbox race on the same partial file". The
// second is refused, saying who holds it.
func TestInboxLockedForSecondClient(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "a")
	srv := startServed(t, "--publish", pub)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int, 1)
	var errs1 lockedBuffer
	go func() {
		first <- runMain(ctx, &Env{Stdout: &lockedBuffer{}, Stderr: &errs1},
			[]string{"sync", "--connect", srv.ep, "--inbox", in, "--progress", "never"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for readOr(filepath.Join(in, "a.txt")) != "a" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("first client never synced: %s", errs1.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	cancel()
	if c := <-first; c != exitOK {
		t.Errorf("first (live) client stopped by a signal: exit %d", c)
	}
	if code != exitFailed || sum.Status != "failed" || !strings.Contains(errs, "is being synced by another client (pid ") {
		t.Fatalf("second client: exit %d, %+v\n%s", code, sum, errs)
	}
}

// Issue 11: "sync to a port where nothing listens, a missing port or an
// unknown host prints nothing for 60 s". A bad endpoint is a usage error;
// a dead one is reported at once and retried with a visible back-off;
// --timeout ends --once with "cannot connect".
func TestSyncUnreachable(t *testing.T) {
	in := t.TempDir()
	for _, ep := range []string{"tcp://127.0.0.1", "127.0.0.1:5670", "tcp://:5670", "tcp://127.0.0.1:99999"} {
		if code, _, errs := syncOnce(t, "--connect", ep, "--inbox", in); code != exitUsage || !strings.Contains(errs, "tcp://HOST:PORT") && !strings.Contains(errs, "port") {
			t.Errorf("--connect %s: exit %d\n%s", ep, code, errs)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String()
	l.Close()
	start := time.Now()
	code, sum, errs := syncOnce(t, "--connect", dead, "--inbox", in, "--timeout", "1500ms")
	if code != exitConnect || sum.Status != "cannot-connect" {
		t.Fatalf("dead endpoint: exit %d, %+v\n%s", code, sum, errs)
	}
	if !strings.Contains(errs, "cannot connect; retrying") || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "in=") {
		t.Errorf("no visible retry:\n%s", errs)
	}
	if strings.Contains(errs, "tcpg://") {
		t.Errorf("internal scheme shown:\n%s", errs)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("took %v", el)
	}
	// An unknown host: said so, at once.
	code, sum, errs = syncOnce(t, "--connect", "tcp://no-such-host.invalid:5670", "--inbox", in, "--timeout", "1500ms")
	if code != exitConnect || !strings.Contains(errs, `unknown host \"no-such-host.invalid\"`) {
		t.Errorf("unknown host: exit %d, %+v\n%s", code, sum, errs)
	}
	if code, _, errs := syncOnce(t, "--connect", dead, "--inbox", in, "--timeout", "-1s"); code != exitUsage {
		t.Errorf("--timeout -1s: exit %d\n%s", code, errs)
	}
}

// Issue 11: "names with tab, newline or backslash are skipped silently; a
// 255-byte name is published but refused by the client". Each is reported
// by the server (log) and reaches the client as a per-file error: a partial
// transfer.
func TestOddNamesReported(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "fine.txt", "f")
	odd := []string{"tab\there", "new\nline", `back\slash`, strings.Repeat("n", 255)}
	for _, n := range odd {
		write(t, pub, n, "odd")
	}
	// A path longer than 4096 bytes (each name fine): made through os.Root,
	// which walks component by component.
	deep := strings.TrimSuffix(strings.Repeat(strings.Repeat("d", 200)+"/", 21), "/")
	if r, err := os.OpenRoot(pub); err == nil {
		if r.MkdirAll(deep, 0o755) == nil {
			if f, err := r.Create(deep + "/f"); err == nil {
				f.Close()
				odd = append(odd, deep+"/f")
			}
		}
		r.Close()
	}
	srv := startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitPartial || sum.Files != 1 || sum.ServerErrors != int64(len(odd)) {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	text := strings.Join(sum.Messages, "\n")
	wants := []string{"control character", "backslash", "longer than 240 bytes"}
	if len(odd) == 5 {
		wants = append(wants, "its path is longer than 4096 bytes")
	} else {
		t.Log("could not make a path longer than 4096 bytes here")
	}
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("messages lack %q:\n%s", want, text)
		}
	}
	if n := strings.Count(srv.stderr.String(), "file not published"); n != len(odd) {
		t.Errorf("server logged %d unpublished names, want %d:\n%s", n, len(odd), srv.stderr.String())
	}
}

// Issue 11: "nothing of rsync -a's metadata is kept: mode bits (the exec bit
// is lost, 0600 becomes 0644), mtimes". Mode and mtime arrive with the
// content, a change of either alone reaches a returning client without the
// content, and a live change of mode propagates.
func TestModeAndMtimeKept(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "run.sh", "#!/bin/sh\n")
	write(t, pub, "secret", "s")
	os.Chmod(filepath.Join(pub, "run.sh"), 0o755)
	os.Chmod(filepath.Join(pub, "secret"), 0o600)
	when := time.Date(2020, 2, 29, 12, 34, 56, 789_000_000, time.UTC)
	os.Chtimes(filepath.Join(pub, "secret"), when, when)
	check := func(stage, rel string, mode os.FileMode, mtime time.Time) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(in, rel))
		if err != nil || fi.Mode().Perm() != mode || !fi.ModTime().Equal(mtime) {
			t.Fatalf("%s: %s: %v, want mode %v mtime %v (got %v)", stage, rel, err, mode, mtime, fi)
		}
	}
	srv := startServed(t, "--publish", pub, "--settle", "50ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 2 {
		t.Fatalf("exit %d, %+v\n%s", code, sum, errs)
	}
	pfi, _ := os.Stat(filepath.Join(pub, "run.sh"))
	check("first sync", "run.sh", 0o755, pfi.ModTime())
	check("first sync", "secret", 0o600, when)
	// Changed while the client was away: metadata only, no content sent.
	srv.stop()
	later := when.Add(time.Hour)
	os.Chmod(filepath.Join(pub, "secret"), 0o640)
	os.Chtimes(filepath.Join(pub, "secret"), later, later)
	srv = startServed(t, "--publish", pub, "--settle", "50ms", "--rescan", "200ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Bytes != 0 {
		t.Fatalf("metadata-only resync: exit %d, %+v\n%s", code, sum, errs)
	}
	check("resync", "secret", 0o640, later)
	// Live: a chmod alone reaches a running client, and a touch alone.
	logs := startLiveSync(t, "--connect", srv.ep, "--inbox", in)
	os.Chmod(filepath.Join(pub, "run.sh"), 0o700)
	eventually(t, "a live chmod", logs, func() bool {
		fi, err := os.Stat(filepath.Join(in, "run.sh"))
		return err == nil && fi.Mode().Perm() == 0o700
	})
	touched := when.Add(-24 * time.Hour)
	os.Chtimes(filepath.Join(pub, "run.sh"), touched, touched)
	eventually(t, "a live change of mtime", logs, func() bool {
		fi, err := os.Stat(filepath.Join(in, "run.sh"))
		return err == nil && fi.ModTime().Equal(touched)
	})
}

// Issue 11: "dotfiles are never published and nothing says so". Hidden
// files are published; --exclude (rsync-like patterns) leaves out what a
// user does not want; names fmq reserves are reported, never sent.
func TestHiddenFilesAndExclude(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	for _, rel := range []string{".bashrc", "docs/.notes", ".config/app.toml", "keep.txt",
		"junk.tmp", "docs/junk.tmp", ".git/HEAD", "build/out.o", "docs/build/readme"} {
		write(t, pub, rel, "content of "+rel)
	}
	write(t, pub, "docs/.x.fmqpart", "reserved") // an fmq partial's name
	srv := startServed(t, "--publish", pub, "--exclude", "*.tmp", "--exclude", ".git/", "--exclude", "/build")
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitPartial || sum.ServerErrors != 1 || !strings.Contains(strings.Join(sum.Messages, "\n"), "reserves for itself") {
		t.Fatalf("exit %d, %+v\n%s", code, sum, errs)
	}
	for _, rel := range []string{".bashrc", "docs/.notes", ".config/app.toml", "keep.txt", "docs/build/readme"} {
		if got := readOr(filepath.Join(in, rel)); got != "content of "+rel {
			t.Errorf("%s: %s", rel, got)
		}
	}
	for _, rel := range []string{"junk.tmp", "docs/junk.tmp", ".git", "build", "docs/.x.fmqpart"} {
		if _, err := os.Stat(filepath.Join(in, rel)); err == nil {
			t.Errorf("%s arrived although excluded or reserved", rel)
		}
	}
	if code, _, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitPartial {
		t.Errorf("second run: exit %d\n%s", code, errs)
	}
	// A bad pattern is a usage error.
	var errb lockedBuffer
	if code := runMain(context.Background(), &Env{Stdout: &lockedBuffer{}, Stderr: &errb},
		[]string{"serve", "--publish", pub, "--bind", "tcp://127.0.0.1:0", "--exclude", "[oops"}); code != exitUsage {
		t.Errorf("bad pattern: exit %d: %s", code, errb.String())
	}
}

// Issue 11: sync --exclude. Excluded inbox paths are neither written nor
// deleted by the client, whatever the server sends, --delete included;
// they are counted in the summary.
func TestSyncExclude(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "published")
	write(t, pub, "n.tmp", "scratch v1")
	write(t, pub, "local/x.txt", "server's local")
	write(t, in, "local/mine.txt", "the user's")
	srv := startServed(t, "--publish", pub)
	excl := []string{"--exclude", "*.tmp", "--exclude", "/local/"}
	code, sum, errs := syncOnce(t, append([]string{"--connect", srv.ep, "--inbox", in, "--delete"}, excl...)...)
	if code != exitOK || sum.Files != 1 || sum.Deleted != 0 || sum.Excluded < 2 {
		t.Fatalf("exit %d, summary %+v\n%s", code, sum, errs)
	}
	for _, rel := range []string{"n.tmp", "local/x.txt"} {
		if _, err := os.Stat(filepath.Join(in, rel)); err == nil {
			t.Errorf("%s written although excluded", rel)
		}
	}
	if got := readOr(filepath.Join(in, "local/mine.txt")); got != "the user's" {
		t.Fatalf("local/mine.txt under an excluded directory, with --delete: %s", got)
	}
	// Without --exclude, n.tmp arrives (fmq's own from now on) ...
	if code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 2 || sum.Excluded != 0 {
		t.Fatalf("without --exclude: exit %d, summary %+v\n%s", code, sum, errs)
	}
	// ... and an excluded file fmq installed is neither updated ... (the
	// other excluded one: the server's delete of local/mine.txt)
	srv.stop()
	write(t, pub, "n.tmp", "scratch v2, longer")
	srv = startServed(t, "--publish", pub)
	code, sum, errs = syncOnce(t, append([]string{"--connect", srv.ep, "--inbox", in}, excl...)...)
	if got := readOr(filepath.Join(in, "n.tmp")); code != exitOK || sum.Files != 0 || sum.Excluded != 2 || got != "scratch v1" {
		t.Fatalf("update of an excluded file: exit %d, summary %+v, n.tmp %q\n%s", code, sum, got, errs)
	}
	// ... nor deleted.
	srv.stop()
	os.Remove(filepath.Join(pub, "n.tmp"))
	srv = startServed(t, "--publish", pub)
	code, sum, errs = syncOnce(t, append([]string{"--connect", srv.ep, "--inbox", in}, excl...)...)
	if got := readOr(filepath.Join(in, "n.tmp")); code != exitOK || sum.Deleted != 0 || sum.Excluded != 2 || got != "scratch v1" {
		t.Fatalf("delete of an excluded file: exit %d, summary %+v, n.tmp %q\n%s", code, sum, got, errs)
	}
	if code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Deleted != 1 {
		t.Fatalf("the delete once not excluded: exit %d, summary %+v\n%s", code, sum, errs)
	}
	// A bad pattern is a usage error.
	if code, _, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in, "--exclude", "[oops"); code != exitUsage {
		t.Errorf("bad pattern: exit %d: %s", code, errs)
	}
}

// Issue 11: "the client deletes only files it installed from this server
// and that the server deleted". Two servers sync into one inbox in turn
// (the inbox lock lets one client in at a time): server B's deletes never
// remove what server A installed, nor a user's file; B's update of a file
// A installed is a conflict; B's own files come and go with B, across a
// restart of B (its origin is stable); and --delete still touches nothing
// outside the subscription.
func TestTwoServersOneInbox(t *testing.T) {
	pubA, pubB, in := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, pubA, "a.txt", "A's a")
	write(t, pubA, "common.txt", "A's common")
	write(t, pubB, "b.txt", "B's b")
	write(t, pubB, "common.txt", "B's common")
	write(t, pubB, "sub/x.txt", "B's x")
	write(t, in, "mine.txt", "the user's")
	inboxHas := func(stage string, want map[string]string) {
		t.Helper()
		for rel, w := range want {
			if got := readOr(filepath.Join(in, rel)); got != w {
				t.Errorf("%s: %s is %q, want %q", stage, rel, got, w)
			}
		}
	}
	srvA := startServed(t, "--publish", pubA)
	if code, sum, errs := syncOnce(t, "--connect", srvA.ep, "--inbox", in); code != exitOK || sum.Files != 2 {
		t.Fatalf("from A: exit %d, %+v\n%s", code, sum, errs)
	}
	srvA.stop()
	// B sends deletes for a.txt and mine.txt (its client's cache lists
	// them, B does not publish them) and its own common.txt.
	srvB := startServed(t, "--publish", pubB)
	code, sum, errs := syncOnce(t, "--connect", srvB.ep, "--inbox", in)
	if code != exitPartial || sum.Files != 2 || sum.Deleted != 0 || sum.Conflicts != 1 || sum.Kept < 2 {
		t.Fatalf("from B: exit %d, %+v\n%s", code, sum, errs)
	}
	if !strings.Contains(strings.Join(sum.Messages, "\n"), `"/common.txt" was installed by fmq from another server`) {
		t.Errorf("the conflict does not say why: %q", sum.Messages)
	}
	inboxHas("after B", map[string]string{"a.txt": "A's a", "common.txt": "A's common", "mine.txt": "the user's", "b.txt": "B's b", "sub/x.txt": "B's x"})
	// B, restarted without b.txt, deletes it: B's own.
	srvB.stop()
	os.Remove(filepath.Join(pubB, "b.txt"))
	os.Remove(filepath.Join(pubB, "common.txt"))
	srvB = startServed(t, "--publish", pubB)
	if code, sum, errs = syncOnce(t, "--connect", srvB.ep, "--inbox", in); code != exitOK || sum.Deleted != 1 {
		t.Fatalf("B's delete: exit %d, %+v\n%s", code, sum, errs)
	}
	if _, err := os.Stat(filepath.Join(in, "b.txt")); err == nil {
		t.Error("b.txt not deleted by B")
	}
	inboxHas("after B's delete", map[string]string{"a.txt": "A's a", "common.txt": "A's common", "mine.txt": "the user's"})
	// --delete on /sub: an exact mirror of /sub, nothing outside it.
	write(t, in, "sub/stray.txt", "in /sub")
	code, sum, errs = syncOnce(t, "--connect", srvB.ep, "--inbox", in, "--subscribe", "/sub", "--delete")
	if code != exitOK || sum.Deleted != 1 {
		t.Fatalf("--delete /sub: exit %d, %+v\n%s", code, sum, errs)
	}
	if _, err := os.Stat(filepath.Join(in, "sub", "stray.txt")); err == nil {
		t.Error("--delete kept sub/stray.txt")
	}
	inboxHas("after --delete /sub", map[string]string{"a.txt": "A's a", "common.txt": "A's common", "mine.txt": "the user's", "sub/x.txt": "B's x"})
	srvB.stop()
	// A again: its files are still its own (A's update applies).
	write(t, pubA, "common.txt", "A's common, v2")
	srvA = startServed(t, "--publish", pubA)
	if code, sum, errs = syncOnce(t, "--connect", srvA.ep, "--inbox", in, "--subscribe", "/common.txt"); code != exitOK || sum.Files != 1 {
		t.Fatalf("A's update: exit %d, %+v\n%s", code, sum, errs)
	}
	inboxHas("after A's update", map[string]string{"common.txt": "A's common, v2", "a.txt": "A's a", "mine.txt": "the user's"})
}

// Issue 11 (rsync -a keeps owners and groups): a mirror made as root gets
// the published files' owners and groups; a change of owner alone reaches
// a returning client without the content, and a running one live.
func TestOwnersKept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "a")
	write(t, pub, "b.txt", "b")
	os.Chown(filepath.Join(pub, "a.txt"), 12345, 12346)
	os.Chown(filepath.Join(pub, "b.txt"), 65534, 65534)
	owner := func(rel string) (int, int) {
		fi, err := os.Stat(filepath.Join(in, rel))
		if err != nil {
			return -1, -1
		}
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid)
	}
	check := func(stage, rel string, uid, gid int) {
		t.Helper()
		if u, g := owner(rel); u != uid || g != gid {
			t.Fatalf("%s: %s owned by %d:%d, want %d:%d", stage, rel, u, g, uid, gid)
		}
	}
	srv := startServed(t, "--publish", pub, "--settle", "50ms", "--rescan", "200ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Files != 2 {
		t.Fatalf("exit %d, %+v\n%s", code, sum, errs)
	}
	check("first sync", "a.txt", 12345, 12346)
	check("first sync", "b.txt", 65534, 65534)
	// Changed while the client was away: metadata only.
	srv.stop()
	os.Chown(filepath.Join(pub, "a.txt"), 23456, 23457)
	srv = startServed(t, "--publish", pub, "--settle", "50ms", "--rescan", "200ms")
	if code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in); code != exitOK || sum.Bytes != 0 {
		t.Fatalf("owner-only resync: exit %d, %+v\n%s", code, sum, errs)
	}
	check("resync", "a.txt", 23456, 23457)
	check("resync", "b.txt", 65534, 65534)
	// Live: a chown alone reaches a running client.
	logs := startLiveSync(t, "--connect", srv.ep, "--inbox", in)
	os.Chown(filepath.Join(pub, "b.txt"), 34567, 34568)
	eventually(t, "a live chown", logs, func() bool {
		u, g := owner("b.txt")
		return u == 34567 && g == 34568
	})
}

// Issue 11: "every name Linux allows is either sent or reported on both
// sides". Names at the edges of what a file system takes (spaces, leading
// dashes, dots, wildcards, quotes, non-UTF-8 bytes, DEL, an escape, a
// 240-byte name, names that look like fmq's own but are not) each either
// arrive whole or come back as a per-file error; none is silently lost.
func TestEveryNameSentOrReported(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	names := []string{
		" lead", "trail ", "-dash", "...", "..x", ".x.", "a b", "*?[x]", `quo"te'`, "a:b;c|d&e$f",
		"caf\xe9", "\xff\xfe", "del\x7f", "esc\x1b[0m", "tab\tin", "cr\rin", "\u00e9t\u00e9", "\u202eevil",
		strings.Repeat("x", 240), strings.Repeat("y", 241), ".fmq-inbox.bak", "x.fmqpart", ".fmqpart",
		"sub dir/ f", "~", "#", "%41",
	}
	for i, n := range names {
		write(t, pub, n, fmt.Sprint("content ", i))
	}
	srv := startServed(t, "--publish", pub)
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	reported := strings.Join(sum.Messages, "\n")
	t.Logf("exit %d, %d files, reported:\n%s", code, sum.Files, reported)
	lost := 0
	for i, n := range names {
		if readOr(filepath.Join(in, filepath.FromSlash(n))) == fmt.Sprint("content ", i) {
			continue
		}
		if !strings.Contains(reported, strconv.Quote("/"+n)) {
			t.Errorf("%q neither arrived nor was reported", n)
			lost++
		}
	}
	if int(sum.Files+sum.ServerErrors) != len(names) || (sum.ServerErrors > 0) != (code == exitPartial) {
		t.Errorf("exit %d, %d files + %d errors for %d names\n%s\n%s", code, sum.Files, sum.ServerErrors, len(names), reported, errs)
	}
	if lost == 0 && sum.ServerErrors > 0 && !strings.Contains(srv.stderr.String(), "file not published") {
		t.Errorf("the server did not log what it did not publish:\n%s", srv.stderr.String())
	}
}

// Issue 11: a user's file in the inbox was deleted "in live mode, at the
// next reconnect". A live sync whose server restarts (a new session, a
// resync with the inbox's cache) keeps it, and says so.
func TestLiveReconnectKeepsUserFiles(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "published")
	srv := startServed(t, "--publish", pub)
	logs := startLiveSync(t, "--connect", srv.ep, "--inbox", in)
	eventually(t, "first sync", logs, func() bool { return readOr(filepath.Join(in, "a.txt")) == "published" })
	write(t, in, "thesis.txt", "years of work")
	srv.stop()
	startServed(t, "--publish", pub, "--bind", srv.ep)
	eventually(t, "resync after the restart", logs, func() bool {
		return strings.Contains(logs.String(), "kept files fmq did not write") && strings.Count(logs.String(), "msg=subscribing") >= 2
	})
	if got := readOr(filepath.Join(in, "thesis.txt")); got != "years of work" {
		t.Fatalf("thesis.txt after the reconnect: %s\n%s", got, logs.String())
	}
}

// Issue 11: "peer ids are printed as raw bytes; messages show the internal
// tcpg:// scheme". What serve and sync log for a whole session, debug
// included: every peer id short and printable, every endpoint as the user
// gave it, no control bytes.
func TestLogsShowPeersAndEndpointsAsUsersKnowThem(t *testing.T) {
	pub, in := t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "a")
	srv := startServed(t, "--publish", pub, "--log-level", "debug")
	code, _, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in, "--log-level", "debug")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	srv.stop()
	peer := regexp.MustCompile(`\bpeer=("[^"]*"|\S+)`)
	for who, text := range map[string]string{"serve": srv.stderr.String(), "sync": errs} {
		if strings.Contains(text, "tcpg") {
			t.Errorf("%s shows the internal scheme:\n%s", who, text)
		}
		if i := strings.IndexFunc(text, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r == utf8.RuneError }); i >= 0 {
			t.Errorf("%s logs a control or invalid byte at %d:\n%s", who, i, text)
		}
		for _, m := range peer.FindAllStringSubmatch(text, -1) {
			if v := m[1]; len(v) > 40 || !regexp.MustCompile(`^(-|fmq-[0-9a-f]+|0x[0-9a-f]+)$`).MatchString(v) {
				t.Errorf("%s: peer=%s is not a short id", who, v)
			}
		}
	}
	if !strings.Contains(srv.stderr.String(), "peer=") {
		t.Errorf("the server never names its peer:\n%s", srv.stderr.String())
	}
}

// Issue 11: "never publish an fmq inbox (its cache marks it) unless asked".
// A directory holding an inbox marker or a digest cache is left out, and
// the server says so; --publish-inboxes publishes its files (never fmq's
// own marker, cache or partials, which are not reported either: they are
// the inbox's, not the user's).
func TestInboxesPublishedOnlyWhenAsked(t *testing.T) {
	pub := t.TempDir()
	write(t, pub, "top.txt", "top")
	write(t, pub, "mirror/m.txt", "mirrored")
	write(t, pub, "mirror/.fmq-inbox", `{"fmq_inbox":1,"id":"0123456789abcdef0123456789abcdef"}`)
	write(t, pub, "old/o.txt", "old mirror")
	write(t, pub, "old/.fmq-cache", `{"version":1,"files":{}}`)
	write(t, pub, "old/.p.txt.fmqpart", "partial")
	srv := startServed(t, "--publish", pub)
	in := t.TempDir()
	code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK || sum.Files != 1 || readOr(filepath.Join(in, "top.txt")) != "top" {
		t.Fatalf("exit %d, %+v\n%s", code, sum, errs)
	}
	for _, d := range []string{"mirror", "old"} {
		if _, err := os.Stat(filepath.Join(in, d)); err == nil {
			t.Errorf("the inbox %s was published", d)
		}
	}
	if n := strings.Count(srv.stderr.String(), "not publishing an fmq inbox"); n != 2 {
		t.Errorf("the server named %d inboxes it left out, want 2:\n%s", n, srv.stderr.String())
	}
	srv.stop()
	srv = startServed(t, "--publish", pub, "--publish-inboxes")
	in = t.TempDir()
	code, sum, errs = syncOnce(t, "--connect", srv.ep, "--inbox", in)
	if code != exitOK || sum.Files != 3 || readOr(filepath.Join(in, "mirror", "m.txt")) != "mirrored" || readOr(filepath.Join(in, "old", "o.txt")) != "old mirror" {
		t.Fatalf("--publish-inboxes: exit %d, %+v\n%s", code, sum, errs)
	}
}

// serve --server-id: a server's origin follows its name, not its
// directory's path, so a mirror's files stay the server's when the data
// moves; without it, the moved directory is another origin, whose deletes
// do not apply to the files installed from the old one.
func TestServerIDKeepsOriginWhenDataMoves(t *testing.T) {
	base, in := t.TempDir(), t.TempDir()
	old, moved, again := filepath.Join(base, "old"), filepath.Join(base, "moved"), filepath.Join(base, "again")
	write(t, old, "a.txt", "a")
	write(t, old, "b.txt", "b")
	write(t, old, "c.txt", "c")
	sync := func(stage string, args ...string) syncSummary {
		t.Helper()
		srv := startServed(t, args...)
		defer srv.stop()
		code, sum, errs := syncOnce(t, "--connect", srv.ep, "--inbox", in)
		if code != exitOK {
			t.Fatalf("%s: exit %d, %+v\n%s", stage, code, sum, errs)
		}
		return sum
	}
	sync("first", "--publish", old, "--server-id", "photos")
	os.Rename(old, moved)
	os.Remove(filepath.Join(moved, "a.txt"))
	if sum := sync("moved, same --server-id", "--publish", moved, "--server-id", "photos"); sum.Deleted != 1 {
		t.Errorf("the delete from the same named server was not applied: %+v", sum)
	}
	os.Rename(moved, again)
	os.Remove(filepath.Join(again, "b.txt"))
	if sum := sync("moved, no --server-id", "--publish", again); sum.Deleted != 0 || sum.Kept != 1 {
		t.Errorf("a delete from another origin was applied: %+v", sum)
	}
	if readOr(filepath.Join(in, "b.txt")) != "b" || readOr(filepath.Join(in, "c.txt")) != "c" {
		t.Error("files lost")
	}
}

// relay --server-id names the relay's origin as serve --server-id does: a
// downstream mirror follows the deletes of a relay whose inbox moved when
// both carry the same name, and keeps the files of one without it (its
// origin then comes from the inbox's path).
func TestRelayServerIDKeepsOrigin(t *testing.T) {
	pub, in, base := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, pub, "a.txt", "a")
	write(t, pub, "b.txt", "b")
	write(t, pub, "c.txt", "c")
	up := startServed(t, "--publish", pub, "--settle", "50ms")
	// relay runs a relay into inbox until its copy holds want, then serves
	// one downstream sync --once from it and stops.
	relay := func(stage, inbox string, want []string, args ...string) syncSummary {
		t.Helper()
		r := startCmd(t, "relay", append([]string{"--connect", up.ep, "--inbox", inbox}, args...)...)
		defer func() {
			if code := r.stop(); code != exitOK {
				t.Errorf("%s: relay exit %d: %s", stage, code, r.stderr.String())
			}
		}()
		ep := r.ep
		// The relay serves what it has mirrored once its watcher has seen
		// it: probe with a throwaway mirror until that holds want.
		for deadline := time.Now().Add(20 * time.Second); ; {
			if _, sum, _ := syncOnce(t, "--connect", ep, "--inbox", t.TempDir()); sum.Files == int64(len(want)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the relay never served %v: %s", stage, want, r.stderr.String())
			}
		}
		code, sum, errs := syncOnce(t, "--connect", ep, "--inbox", in)
		if code != exitOK {
			t.Fatalf("%s: exit %d, %+v\n%s", stage, code, sum, errs)
		}
		return sum
	}
	relay("first", filepath.Join(base, "r1"), []string{"a.txt", "b.txt", "c.txt"}, "--server-id", "photos")
	os.Remove(filepath.Join(pub, "a.txt"))
	if sum := relay("inbox moved, same --server-id", filepath.Join(base, "r2"), []string{"b.txt", "c.txt"}, "--server-id", "photos"); sum.Deleted != 1 {
		t.Errorf("the delete from the same named relay was not applied: %+v", sum)
	}
	os.Remove(filepath.Join(pub, "b.txt"))
	if sum := relay("inbox moved, no --server-id", filepath.Join(base, "r3"), []string{"c.txt"}); sum.Deleted != 0 || sum.Kept != 1 {
		t.Errorf("a delete from another origin was applied: %+v", sum)
	}
	if _, err := os.Stat(filepath.Join(in, "a.txt")); !os.IsNotExist(err) || readOr(filepath.Join(in, "b.txt")) != "b" || readOr(filepath.Join(in, "c.txt")) != "c" {
		t.Errorf("the mirror does not hold what it should (a deleted, b kept, c): a.txt %v", err)
	}
}
