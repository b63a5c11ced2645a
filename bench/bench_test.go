//go:build linux

package main

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/internal/testutil"
)

// allocEnv makes the test binary a child that touches N MiB and exits: a
// known peak RSS for the launcher test.
const allocEnv = "FMQ_BENCH_TEST_ALLOC_MIB"

func TestMain(m *testing.M) {
	maybeLauncher()
	if s := os.Getenv(allocEnv); s != "" {
		n, _ := strconv.Atoi(s)
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		os.Exit(int(b[len(b)-4096]) - 1) // 0; keeps b alive until here
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { testutil.RemoveBuilds() }))
}

// quietLogger logs warnings to the test log; FMQ_BENCH_TEST_LOG=info shows progress.
func quietLogger(t *testing.T) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("FMQ_BENCH_TEST_LOG") == "info" {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// tinySizes keep the end-to-end tests fast; they exercise code paths, not speed.
var tinySizes = Sizes{TreeBig: 2 * mib, TreeFiles: 20, SmallFiles: 50, SmallSize: 4 * kib,
	Large: 8 * mib, MemSmall: 1 * mib, MemBig: 16 * mib, FanOut: 2}

// parsedRow is one table row split into its cells.
type parsedRow map[string]string

// parseTable checks the markdown table's shape and returns its rows.
func parseTable(t *testing.T, md string) []parsedRow {
	t.Helper()
	lines := strings.Split(md, "\n")
	start := -1
	for i, l := range lines {
		if l == "| "+strings.Join(tableHeader, " | ")+" |" {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no table header in:\n%s", md)
	}
	if want := "|" + strings.Repeat("---|", len(tableHeader)); lines[start+1] != want {
		t.Fatalf("separator line = %q, want %q", lines[start+1], want)
	}
	var rows []parsedRow
	for _, l := range lines[start+2:] {
		if l == "" {
			break
		}
		if !strings.HasPrefix(l, "| ") || !strings.HasSuffix(l, " |") {
			t.Fatalf("malformed row %q", l)
		}
		// Split on unescaped pipes.
		inner := strings.ReplaceAll(l[2:len(l)-2], `\|`, "\x00")
		cells := strings.Split(inner, " | ")
		if len(cells) != len(tableHeader) {
			t.Fatalf("row has %d cells, want %d: %q", len(cells), len(tableHeader), l)
		}
		r := parsedRow{}
		for i, c := range cells {
			c = strings.ReplaceAll(c, "\x00", "|")
			if strings.TrimSpace(c) == "" {
				t.Fatalf("empty %s cell in %q", tableHeader[i], l)
			}
			r[tableHeader[i]] = c
		}
		switch r["result"] {
		case resPass, resFail, resInfo, resNA, resError, resBaseline:
		default:
			t.Fatalf("bad result %q in %q", r["result"], l)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatal("table has no rows")
	}
	return rows
}

// hasMeasure reports whether a median cell holds a number with a unit.
func hasMeasure(cell string) bool {
	f := strings.Fields(cell)
	if len(f) < 2 {
		return false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return err == nil && v > 0
}

func isBaselineTool(contender string) bool {
	return strings.HasPrefix(contender, "rsync") || strings.HasPrefix(contender, "cp -r") || strings.HasPrefix(contender, "raw TCP")
}

func checkWorkloadsPresent(t *testing.T, rows []parsedRow) {
	t.Helper()
	for i := range workloadNames {
		prefix := strconv.Itoa(i+1) + ". "
		found := false
		for _, r := range rows {
			found = found || strings.HasPrefix(r["workload"], prefix)
		}
		if !found {
			t.Errorf("no row for workload %d (%s)", i+1, workloadNames[i])
		}
	}
}

// TestQuickBaselines runs every workload with the fmq rows disabled and
// checks that every baseline really ran and the table is well formed.
func TestQuickBaselines(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("rsync"); err != nil {
		testutil.Missing(t, "rsync not installed (go run ./bench installs it; apt-get install rsync)")
	}
	cfg := Config{Quick: true, Sizes: QuickSizes, Runs: 1, NoFMQ: true, WorkRoot: t.TempDir(),
		Verify: true, Timeout: time.Minute, TTFBMax: 250 * time.Millisecond, CreditWindow: 5e6}
	// Quick mode, trimmed where a slow disk makes it dominate the test time
	// (file creation, fan-out, the 200 MiB memory file); the code paths are
	// the same.
	cfg.Sizes.SmallFiles, cfg.Sizes.FanOut, cfg.Sizes.MemBig, cfg.Sizes.Large = 300, 2, 20*mib, 50*mib
	cfg.Sizes.FanOutMax = 3
	if testing.Short() {
		cfg.Sizes = tinySizes
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	t.Log("\n" + md)
	rows := parseTable(t, md)
	checkWorkloadsPresent(t, rows)
	for _, m := range []string{"date: ", "machine: ", "go: ", "baseline tools: rsync "} {
		if !strings.Contains(md, "\n- "+m) {
			t.Errorf("machine line %q missing", m)
		}
	}
	for _, r := range rows {
		c := r["contender"]
		switch {
		case strings.HasPrefix(c, "fmq"):
			if r["median"] != "n/a (disabled by --no-fmq)" || r["result"] != resNA {
				t.Errorf("fmq row not n/a: %v", r)
			}
		case isBaselineTool(c):
			if !hasMeasure(r["median"]) {
				t.Errorf("baseline %q did not run: %v", c, r)
			}
			if r["result"] != resBaseline && r["result"] != resInfo {
				t.Errorf("baseline row result %q: %v", r["result"], r)
			}
		default:
			t.Errorf("unexpected contender %q", c)
		}
	}
	entries, _ := os.ReadDir(cfg.WorkRoot)
	if len(entries) != 0 {
		t.Errorf("work dir not removed: %v", entries)
	}
}

// TestFMQPathsWithFake drives every fmq code path (server readiness, JSON
// report, fan-out, peak RSS through the launcher, SIGKILL at half and
// resume) with the test double internal/fakefmqrun.
func TestFMQPathsWithFake(t *testing.T) {
	bin := buildFake(t)
	// Slow the fake client so the harness can catch the partial at half.
	t.Setenv("FAKEFMQ_CLIENT_RATE", strconv.Itoa(128*mib))
	cfg := Config{Sizes: tinySizes, Runs: 1, FMQBin: bin, WorkRoot: t.TempDir(), Verify: true,
		Timeout: time.Minute, TTFBMax: 250 * time.Millisecond, CreditWindow: 5e6}
	cfg.Sizes.Large = 16 * mib
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	t.Log("\n" + md)
	rows := parseTable(t, md)
	checkWorkloadsPresent(t, rows)
	n := 0
	for _, r := range rows {
		if !strings.HasPrefix(r["contender"], "fmq") {
			continue
		}
		n++
		if strings.HasSuffix(r["median"], "CPU-s/GiB") {
			// A fast fake server may use less than one clock tick.
			if v, err := strconv.ParseFloat(strings.Fields(r["median"])[0], 64); err != nil || v < 0 {
				t.Errorf("CPU row has no measurement: %v", r)
			}
		} else if !hasMeasure(r["median"]) {
			t.Errorf("fmq row has no measurement: %v", r)
		}
		if strings.Contains(r["contender"], "sync --once") && !strings.Contains(r["CPU-s/GiB (median)"], "client ") {
			t.Errorf("fmq time row without the client's CPU: %v", r)
		}
		switch {
		case strings.Contains(r["contender"], "content bytes received"):
			if r["result"] != resPass || r["ratio"] != "1.000" {
				t.Errorf("fake resumes exactly, want pass with ratio 1.000: %v", r)
			}
		case strings.HasPrefix(r["workload"], "5. "):
			f := strings.Fields(r["median"])
			if v, _ := strconv.ParseFloat(f[0], 64); f[1] != "MiB" || v < 1 || v > 100 {
				t.Errorf("implausible peak RSS for the fake: %v", r)
			}
		case strings.HasPrefix(r["workload"], "6. "):
			if r["result"] != resPass {
				t.Errorf("fake's first byte should be far below the threshold: %v", r)
			}
		}
		if r["result"] == resError || r["result"] == resNA {
			t.Errorf("fmq row %s: %v", r["result"], r)
		}
	}
	if n < 15 {
		t.Errorf("only %d fmq rows", n)
	}
}

func buildFake(t *testing.T) string {
	t.Helper()
	return testutil.Build(t, "./internal/fakefmqrun")
}

func TestProbeFMQ(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if got := probeFMQ(ctx, buildFake(t)); got != "" {
		t.Errorf("fake fmqrun should satisfy the probe, got %q", got)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true")
	}
	if got := probeFMQ(ctx, truePath); !strings.Contains(got, "serve --publish") || !strings.Contains(got, "sync --once") {
		t.Errorf("probe of `true` = %q, want missing serve and sync flags", got)
	}
}

// TestFMQDetectionOnRepo checks what the harness says about this
// repository's cmd/fmqrun: while it has no serve, the rows must read
// "n/a (fmqrun serve/sync missing)".
func TestFMQDetectionOnRepo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds cmd/fmqrun")
	}
	root, err := findModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tool := prepareFMQ(ctx, root, t.TempDir(), "")
	t.Logf("cmd/fmqrun: bin=%q na=%q detail=%q", tool.Bin, tool.NA, tool.Detail)
	gofiles, _ := filepath.Glob(filepath.Join(root, "cmd", "fmqrun", "*.go"))
	if len(gofiles) == 0 && tool.NA != naFMQMissing {
		t.Errorf("no cmd/fmqrun sources: NA = %q, want %q", tool.NA, naFMQMissing)
	}
	if tool.NA == "" && tool.Bin == "" {
		t.Error("neither a binary nor a reason")
	}
	s := &series{Name: "fmq", NA: naFMQMissing}
	if got := s.cell(); got != "n/a (fmqrun serve/sync missing)" {
		t.Errorf("cell = %q", got)
	}
}

func TestLauncherReportsChildPeakNotHarness(t *testing.T) {
	// Raise this process's own high-water mark well above the child's.
	ballast := make([]byte, 100<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv(allocEnv, "32")
	r, err := runProcRSS(context.Background(), time.Minute, filepath.Join(dir, "log"), filepath.Join(dir, "rss"), self)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxRSS < 31<<20 || r.MaxRSS > 90<<20 {
		t.Errorf("child touching 32 MiB reported peak RSS %s", fmtBytes(float64(r.MaxRSS)))
	}
	os.Unsetenv(allocEnv)
	if truePath, err := exec.LookPath("true"); err == nil {
		r, err := runProcRSS(context.Background(), time.Minute, filepath.Join(dir, "log"), filepath.Join(dir, "rss"), truePath)
		if err != nil {
			t.Fatal(err)
		}
		if r.MaxRSS <= 0 || r.MaxRSS > 40<<20 {
			t.Errorf("`true` through the launcher reported %s (harness holds %d MiB)", fmtBytes(float64(r.MaxRSS)), len(ballast)>>20)
		}
	}
	// A failing child's exit status comes through the launcher.
	_, err = runProcRSS(context.Background(), time.Minute, filepath.Join(dir, "log"), filepath.Join(dir, "rss"), "false")
	var pe *procError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("false through the launcher: err = %v", err)
	}
	ballast[0] = 2
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{5, 5, 1}, 5}} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input")
			}
		}
	}
}

func TestCompare(t *testing.T) {
	sec := func(name string, v ...float64) *series { return &series{Name: name, Unit: unitSeconds, Values: v} }
	base := sec("rsync", 2, 2, 2)
	cases := []struct {
		name        string
		c           *series
		t           target
		ratio, want string
	}{
		{"faster passes", sec("fmq", 1.5), target{Kind: tMaxRatio, Limit: 1}, "0.75", resPass},
		{"equal passes", sec("fmq", 2), target{Kind: tMaxRatio, Limit: 1}, "1.00", resPass},
		{"slower fails", sec("fmq", 2.2), target{Kind: tMaxRatio, Limit: 1}, "1.10", resFail},
		{"share passes", sec("fmq", 3.9), target{Kind: tMinShare, Limit: 0.5}, "0.51", resPass},
		{"share fails", sec("fmq", 4.2), target{Kind: tMinShare, Limit: 0.5}, "0.48", resFail},
		{"info", sec("cp", 1), target{Kind: tInfo}, "0.50", resInfo},
		{"abs passes", sec("ttfb", 0.1), target{Kind: tMaxAbs, AbsMax: 0.25}, "0.05", resPass},
		{"abs fails", sec("ttfb", 0.3), target{Kind: tMaxAbs, AbsMax: 0.25}, "0.15", resFail},
		{"na", &series{Name: "fmq", NA: naFMQMissing}, target{Kind: tMaxRatio, Limit: 1}, "-", resNA},
		{"error", &series{Name: "fmq", Err: errors.New("boom")}, target{Kind: tMaxRatio, Limit: 1}, "-", resError},
	}
	for _, c := range cases {
		r := compare("w", c.c, base, c.t)
		if r.Ratio != c.ratio || r.Result != c.want {
			t.Errorf("%s: ratio %q result %q, want %q %q (%+v)", c.name, r.Ratio, r.Result, c.ratio, c.want, r)
		}
	}
	// Memory: ratio and absolute limit together.
	b := func(name string, v float64) *series {
		return &series{Name: name, Unit: unitBytes, Values: []float64{v}}
	}
	lim := target{Kind: tMaxRatio, Limit: 1.2, AbsMax: 100 * mib}
	if r := compare("m", b("big", 110*mib), b("small", 100*mib), lim); r.Result != resFail {
		t.Errorf("110 MiB passes the 100 MiB cap: %+v", r)
	}
	if r := compare("m", b("big", 30*mib), b("small", 20*mib), lim); r.Result != resFail || r.Ratio != "1.50" {
		t.Errorf("1.5x passes the 1.2x limit: %+v", r)
	}
	if r := compare("m", b("big", 22*mib), b("small", 20*mib), lim); r.Result != resPass {
		t.Errorf("1.1x and 22 MiB fails: %+v", r)
	}
	// Missing baseline: judged rows become n/a, absolute ones still judge.
	na := &series{Name: "rsync", NA: "rsync not installed"}
	if r := compare("w", sec("fmq", 1), na, target{Kind: tMaxRatio, Limit: 1}); r.Result != resNA || r.Ratio != "n/a" {
		t.Errorf("no baseline: %+v", r)
	}
	if r := compare("w", sec("fmq", 0.1), na, target{Kind: tMaxAbs, AbsMax: 0.25}); r.Result != resPass {
		t.Errorf("absolute target without baseline: %+v", r)
	}
	if r := compare("w", base, nil, target{Kind: tBaseline}); r.Result != resBaseline || r.Baseline != "-" {
		t.Errorf("baseline row: %+v", r)
	}
}

func TestMarkdownEscapesCells(t *testing.T) {
	r := &Report{Title: "t", Rows: []Row{{"w|x", "c", "m\nn", "-", "b", "r", "t", resInfo}}, Notes: []string{"a\nb"}}
	md := r.Markdown()
	if !strings.Contains(md, `| w\|x | c | m n | - | b | r | t | info |`) || !strings.Contains(md, "- a b\n") {
		t.Errorf("escaping:\n%s", md)
	}
	rows := parseTable(t, md)
	if rows[0]["workload"] != "w|x" {
		t.Errorf("round trip: %v", rows[0])
	}
}

func TestGenerateDeterministicAndIncompressible(t *testing.T) {
	spec := datasetSpec{Name: "t", Files: append([]fileSpec{{Rel: "big.bin", Size: 300 * kib}}, smallFiles("s", 150, 4*kib)...)}
	d1, d2 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	m1, err := generate(d1, spec)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := generate(d2, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Files) != 151 || m1.Bytes != 300*kib+150*4*kib {
		t.Fatalf("manifest: %d files, %d bytes", len(m1.Files), m1.Bytes)
	}
	for rel, e := range m1.Files {
		if m2.Files[rel] != e {
			t.Fatalf("%s differs between two generations", rel)
		}
	}
	if m1.Files["s/d00/e00/f00000.dat"].Sum == m1.Files["s/d00/e00/f00001.dat"].Sum {
		t.Error("two files have the same content")
	}
	if _, ok := m1.Files["s/d00/e01/f00100.dat"]; !ok {
		t.Error("file 100 is not in the second leaf folder")
	}
	big, err := os.ReadFile(filepath.Join(d1, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(big)
	fw.Close()
	if z.Len() < len(big)*99/100 {
		t.Errorf("content compresses to %d of %d bytes", z.Len(), len(big))
	}
	st, err := os.Stat(filepath.Join(d1, "s", "d00", "e01"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(fixedMTime) {
		t.Errorf("dir mtime %v, want %v", st.ModTime(), fixedMTime)
	}
	if _, err := generate(d1, spec); err == nil {
		t.Error("generate over an existing dir succeeded")
	}
	for _, bad := range []string{"../x", "/abs", "a/.hidden", "a//b", ""} {
		if _, err := generate(filepath.Join(t.TempDir(), "c"), datasetSpec{Name: "x", Files: []fileSpec{{Rel: bad, Size: 1}}}); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

func TestVerifyTree(t *testing.T) {
	spec := datasetSpec{Name: "v", Files: []fileSpec{{Rel: "a.bin", Size: 5000}, {Rel: "d/b.bin", Size: 100}}}
	src := filepath.Join(t.TempDir(), "src")
	man, err := generate(src, spec)
	if err != nil {
		t.Fatal(err)
	}
	cp := func(t *testing.T) string {
		dst := filepath.Join(t.TempDir(), "dst")
		if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		return dst
	}
	dst := cp(t)
	os.WriteFile(filepath.Join(dst, ".state"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dst, ".cache", "y"), 0o755)
	if err := verifyTree(dst, man, true); err != nil {
		t.Fatalf("good copy (with hidden extras): %v", err)
	}
	cases := []struct {
		name   string
		mutate func(dst string)
		want   string
	}{
		{"missing", func(d string) { os.Remove(filepath.Join(d, "d", "b.bin")) }, "1 missing (first: d/b.bin)"},
		{"unexpected", func(d string) { os.WriteFile(filepath.Join(d, "c.bin"), nil, 0o644) }, "1 unexpected (first: c.bin)"},
		{"size", func(d string) { os.Truncate(filepath.Join(d, "a.bin"), 10) }, "a.bin (size 10, want 5000)"},
		{"content", func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, "a.bin"), os.O_RDWR, 0)
			b := []byte{0}
			f.ReadAt(b, 4000)
			f.WriteAt([]byte{^b[0]}, 4000)
			f.Close()
		}, "a.bin (content)"},
	}
	for _, c := range cases {
		d := cp(t)
		c.mutate(d)
		err := verifyTree(d, man, true)
		var ve *verifyError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if err := verifyTree(filepath.Join(t.TempDir(), "nope"), man, false); err == nil {
		t.Error("missing destination verified")
	}
}

func TestRsyncdConf(t *testing.T) {
	conf := rsyncdConf("/w/rsyncd", 8730, 0, 0, map[string]string{"tree": "/w/data/tree", "large": "/w/data/large"})
	for _, want := range []string{
		"address = 127.0.0.1\n", "port = 8730\n", "use chroot = no\n", "uid = 0\ngid = 0\n",
		"pid file = /w/rsyncd/rsyncd.pid\n", "log file = /w/rsyncd/rsyncd.log\n",
		"[large]\n    path = /w/data/large\n    read only = yes\n", "[tree]\n    path = /w/data/tree\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("rsyncd.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Index(conf, "[large]") > strings.Index(conf, "[tree]") {
		t.Error("modules not sorted")
	}
}

func TestParseSyncReport(t *testing.T) {
	r, err := parseSyncReport([]byte("progress 50%\n{\"files\":3,\"bytes\":12288,\"elapsed_ms\":40,\"first_byte_ms\":7,\"resumed_bytes\":4096}\n"))
	if err != nil || r != (syncReport{Files: 3, Bytes: 12288, ElapsedMs: 40, FirstByteMs: 7, ResumedBytes: 4096}) {
		t.Errorf("got %+v, %v", r, err)
	}
	if _, err := parseSyncReport([]byte("done\n")); !errors.Is(err, errNoReport) {
		t.Errorf("no JSON: err = %v", err)
	}
	if _, err := parseSyncReport([]byte(`{"files":"three"}`)); err == nil || errors.Is(err, errNoReport) {
		t.Errorf("bad JSON: err = %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--quick", "--runs", "5", "--only", "resume, tree,tree"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sizes != QuickSizes || cfg.Runs != 5 || strings.Join(cfg.Only, ",") != "resume,tree" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg, _ := parseFlags(nil, io.Discard); cfg.Sizes != FullSizes || cfg.Runs != 3 || cfg.Warmup != 1 {
		t.Errorf("defaults = %+v", cfg)
	}
	for _, bad := range [][]string{{"--runs", "0"}, {"--only", "tree,bogus"}, {"extra"}, {"--warmup", "-1"}, {"--credit-window", "-5"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestRefusesWhenSpaceTooSmall(t *testing.T) {
	root := t.TempDir()
	cfg := Config{Sizes: FullSizes, Runs: 1, NoFMQ: true, WorkRoot: root}
	cfg.Sizes.MemBig = 1 << 50 // a petabyte
	_, err := Run(context.Background(), cfg, quietLogger(t))
	if err == nil || !strings.Contains(err.Error(), "not enough free space") || !strings.Contains(err.Error(), "--quick") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("refused run left files: %v", entries)
	}
	need, data, dest := spaceNeeded([]string{"fanout"}, FullSizes)
	if dest < 8*200*mib || data < 200*mib || need <= data+dest {
		t.Errorf("fanout space: need %d data %d dest %d", need, data, dest)
	}
}

func TestRawTCPCopy(t *testing.T) {
	dir := t.TempDir()
	man, err := generate(filepath.Join(dir, "src"), datasetSpec{Name: "r", Files: []fileSpec{{Rel: "f.bin", Size: 3*mib + 17}}})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	os.Mkdir(dst, 0o755)
	d, err := rawTCPCopy(context.Background(), filepath.Join(dir, "src", "f.bin"), filepath.Join(dst, "f.bin"))
	if err != nil || d <= 0 {
		t.Fatalf("copy: %v, %v", d, err)
	}
	if err := verifyTree(dst, man, true); err != nil {
		t.Fatal(err)
	}
	// Destination exists: a clear error, and the server goroutine is joined (goleak).
	if _, err := rawTCPCopy(context.Background(), filepath.Join(dir, "src", "f.bin"), filepath.Join(dst, "f.bin")); err == nil {
		t.Error("copy over an existing file succeeded")
	}
	if _, err := rawTCPCopy(context.Background(), filepath.Join(dir, "nope"), filepath.Join(dst, "g.bin")); err == nil {
		t.Error("copy of a missing file succeeded")
	}
}

func TestParseProcStatCPU(t *testing.T) {
	t.Parallel()
	// pid (comm with spaces and a ')') state ppid ... utime stime cutime cstime ...
	line := "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 123 456 789"
	got, err := parseProcStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := (250.0 + 50 + 7 + 3) / clockTicks; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseProcStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("short line accepted")
	}
	self, err := procCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Errorf("own /proc stat: %v, %v", self, err)
	}
}

func TestCPUCell(t *testing.T) {
	t.Parallel()
	s := &series{Name: "x", Unit: unitSeconds, Payload: 2 * gib, ShowUtil: true}
	for _, c := range []cpuSample{
		{Client: 2, Server: 1, HasClient: true, HasServer: true, Wall: 2},
		{Client: 4, Server: 3, HasClient: true, HasServer: true, Wall: 2},
		{Client: 3, Server: 2, HasClient: true, HasServer: true, Wall: 2},
	} {
		s.add(c.Wall)
		s.CPU = append(s.CPU, c)
	}
	if got, want := s.cpuCell(), "client 1.50 / server 1.00; server busy 1.00 cores"; got != want {
		t.Errorf("cpuCell = %q, want %q", got, want)
	}
	cl := cpuPerGiBSeries("c", s, false)
	if got := cl.median(); got != 1.5 {
		t.Errorf("client CPU median %v, want 1.5", got)
	}
	if r := compare("w", cl, nil, target{Kind: tMaxAbs, AbsMax: 0.8}); r.Result != resFail || r.Median != "1.50 CPU-s/GiB" {
		t.Errorf("judged row %+v", r)
	}
	raw := &series{Name: "raw", Unit: unitSeconds, Payload: gib, CPU: []cpuSample{{Total: 0.5, HasTotal: true}}}
	if got := raw.cpuCell(); got != "both (one process) 0.50" {
		t.Errorf("in-process cell %q", got)
	}
	if got := (&series{NA: "x", Payload: gib, CPU: s.CPU}).cpuCell(); got != "-" {
		t.Errorf("n/a series cell %q", got)
	}
}
