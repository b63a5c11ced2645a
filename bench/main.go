//go:build linux

// Command bench is the fmq benchmark harness (issue 7).
//
// It measures fmq (`fmqrun serve` and `fmqrun sync --once`) beside baselines
// run in the same invocation on 127.0.0.1, repeats each measurement, and
// prints a markdown table of medians and ratios:
//
//	go run ./bench                 # full sizes, 3 runs, table on stdout
//	go run ./bench --quick         # small sizes (< 1 min), to test the harness
//	go run ./bench --out bench/RESULTS.md
//
// See bench/README.md for the workloads, the baselines and the targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Workload names, in the order they run and appear in the table.
var workloadNames = []string{"tree", "large", "small", "fanout", "memory", "ttfb", "resume"}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Sizes are the data set dimensions of a run.
type Sizes struct {
	TreeBig    int64 // the one large file of the tree (workloads tree, fanout, ttfb)
	TreeFiles  int   // small files of the tree
	SmallFiles int   // files of the many-small-files workload
	SmallSize  int64 // size of each small file
	Large      int64 // large file (workloads large, resume)
	MemSmall   int64 // memory workload: small file
	MemBig     int64 // memory workload: big file
	FanOut     int   // clients at once in the fan-out workload (judged)
	FanOutMax  int   // a second, larger fan-out shown for context (0: none)
}

// FullSizes are the sizes.
var FullSizes = Sizes{TreeBig: 200 * mib, TreeFiles: 1000, SmallFiles: 10000, SmallSize: 4 * kib,
	Large: 1 * gib, MemSmall: 20 * mib, MemBig: 2 * gib, FanOut: 8, FanOutMax: 16}

// QuickSizes make a whole run take well under a minute; the figures only
// show that the harness works.
var QuickSizes = Sizes{TreeBig: 20 * mib, TreeFiles: 200, SmallFiles: 1000, SmallSize: 4 * kib,
	Large: 100 * mib, MemSmall: 2 * mib, MemBig: 200 * mib, FanOut: 8, FanOutMax: 16}

// Config is everything a run depends on.
type Config struct {
	Quick        bool
	Sizes        Sizes
	Runs         int
	Warmup       int      // untimed rounds before the measured ones
	Only         []string // workload names; empty = all
	Out          string   // also write the markdown here
	Keep         bool     // keep the work dir
	WorkRoot     string   // parent of the work dir
	FMQBin       string   // prebuilt fmqrun instead of building cmd/fmqrun
	BaseBin      string   // another fmqrun, measured beside it in the large-file workload (before/after)
	NoFMQ        bool     // run the baselines only
	InstallRsync bool     // apt-get install rsync when missing
	Verify       bool     // check content digests after each copy (sizes are always checked)
	CreditWindow int64    // bytes; resume target allowance
	TTFBMax      time.Duration
	Timeout      time.Duration // per client process
	ModuleRoot   string        // repository root; found from the working dir when empty
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var only string
	fs.BoolVar(&cfg.Quick, "quick", false, "small sizes (20 MiB + 200 files tree, 1,000 small files, 100 MiB large file, 2/200 MiB memory files): tests the harness in < 1 min")
	fs.IntVar(&cfg.Runs, "runs", 3, "repetitions per contender; the table shows medians")
	fs.IntVar(&cfg.Warmup, "warmup", 1, "untimed rounds per workload before the measured ones (first-touch effects)")
	fs.StringVar(&only, "only", "", "comma-separated workloads to run: "+strings.Join(workloadNames, ","))
	fs.StringVar(&cfg.Out, "out", "", "also write the markdown table to this file (e.g. bench/RESULTS.md)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work dir (data sets, logs) instead of removing it")
	fs.StringVar(&cfg.WorkRoot, "workdir", os.TempDir(), "parent folder of the work dir; must be on the disk to measure")
	fs.StringVar(&cfg.FMQBin, "fmqrun", "", "use this fmqrun binary instead of building ./cmd/fmqrun")
	fs.StringVar(&cfg.BaseBin, "fmqrun-base", "", "large file: also measure this fmqrun binary (a build before a change), interleaved with the other contenders in the same run")
	fs.BoolVar(&cfg.NoFMQ, "no-fmq", false, "run the baselines only (fmq rows show n/a)")
	fs.BoolVar(&cfg.InstallRsync, "install-rsync", true, "if rsync is missing, try `apt-get install -y rsync` once")
	fs.BoolVar(&cfg.Verify, "verify", true, "check SHA-256 of every copied file after each run (outside the timing)")
	fs.Int64Var(&cfg.CreditWindow, "credit-window", 5_000_000, "fmq credit window in bytes: the resume target's allowance (a credit_window field in the sync report overrides it)")
	fs.DurationVar(&cfg.TTFBMax, "ttfb-max", 250*time.Millisecond, "time-to-first-byte threshold (the issue asks for no polling waits; this is the harness's reading)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "limit for any one client process")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Runs < 1 || cfg.Runs > 100 {
		return cfg, fmt.Errorf("--runs %d: want 1..100", cfg.Runs)
	}
	if cfg.Warmup < 0 || cfg.Warmup > 10 {
		return cfg, fmt.Errorf("--warmup %d: want 0..10", cfg.Warmup)
	}
	if cfg.CreditWindow < 0 {
		return cfg, fmt.Errorf("--credit-window %d: must not be negative", cfg.CreditWindow)
	}
	cfg.Sizes = FullSizes
	if cfg.Quick {
		cfg.Sizes = QuickSizes
	}
	if only != "" {
		for _, w := range strings.Split(only, ",") {
			w = strings.TrimSpace(w)
			if !contains(workloadNames, w) {
				return cfg, fmt.Errorf("--only: unknown workload %q (have %s)", w, strings.Join(workloadNames, ", "))
			}
			if !contains(cfg.Only, w) {
				cfg.Only = append(cfg.Only, w)
			}
		}
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func main() {
	maybeLauncher()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	md := rep.Markdown()
	fmt.Print(md)
	if cfg.Out != "" {
		if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		log.Info("table written", "file", cfg.Out)
	}
}

// dataset is a generated data set.
type dataset struct {
	spec datasetSpec
	dir  string
	man  *manifest
}

// harness is the state of one run.
type harness struct {
	cfg         Config
	log         *slog.Logger
	root        string // repository root
	work        string // this run's work dir
	runDir      string // logs, endpoints, binaries
	started     time.Time
	loadAtStart string

	data map[string]*dataset

	fmq                             fmqTool
	rsyncBin, rsyncVersion, rsyncNA string
	rsyncd                          *rsyncd
	rsyncdErr                       error

	rows    []Row
	notes   []string
	destSeq int
	warmup  bool // the run in progress is an untimed warm-up: side series must not record it
}

// datasetSpecs lists every data set of a run by name.
func datasetSpecs(s Sizes) map[string]datasetSpec {
	tree := []fileSpec{{Rel: "big.bin", Size: s.TreeBig}}
	tree = append(tree, smallFiles("files", s.TreeFiles, s.SmallSize)...)
	return map[string]datasetSpec{
		"tree":      {Name: "tree", Files: tree},
		"small":     {Name: "small", Files: smallFiles("", s.SmallFiles, s.SmallSize)},
		"large":     {Name: "large", Files: []fileSpec{{Rel: "large.bin", Size: s.Large}}},
		"mem-small": {Name: "mem-small", Files: []fileSpec{{Rel: "file.bin", Size: s.MemSmall}}},
		"mem-big":   {Name: "mem-big", Files: []fileSpec{{Rel: "file.bin", Size: s.MemBig}}},
	}
}

// workloadNeeds returns the data sets a workload reads and an estimate of
// the most destination space it holds at once.
func workloadNeeds(w string, specs map[string]datasetSpec, s Sizes) (sets []string, dest int64) {
	switch w {
	case "tree", "ttfb":
		return []string{"tree"}, specs["tree"].DiskBytes()
	case "fanout":
		return []string{"tree"}, int64(max(s.FanOut, s.FanOutMax)) * specs["tree"].DiskBytes()
	case "large", "resume":
		return []string{"large"}, specs["large"].DiskBytes()
	case "small":
		return []string{"small"}, specs["small"].DiskBytes()
	case "memory":
		return []string{"mem-small", "mem-big"}, specs["mem-big"].DiskBytes()
	}
	return nil, 0
}

// spaceNeeded sums the data sets of the selected workloads, the largest
// destination and the small files of the destinations kept in the trash
// until the end (discard; counted for 4 rounds: the default warm-up and 3
// runs), plus 10% and 256 MiB of margin.
func spaceNeeded(workloads []string, s Sizes) (need, data, dest int64) {
	specs := datasetSpecs(s)
	seen := map[string]bool{}
	var kept int64
	for _, w := range workloads {
		switch w {
		case "tree", "small":
			kept += 3 * 4 * specs[w].smallDiskBytes() // rsync, cp, fmq
		case "fanout":
			kept += int64(2*(1+s.FanOut+s.FanOutMax)) * 4 * specs["tree"].smallDiskBytes()
		}
		sets, d := workloadNeeds(w, specs, s)
		for _, ds := range sets {
			if !seen[ds] {
				seen[ds] = true
				data += specs[ds].DiskBytes()
			}
		}
		dest = max(dest, d)
	}
	need = (data+dest+kept)*11/10 + 256*mib
	return need, data, dest
}

// Run executes the selected workloads and returns the report. It fails only
// for set-up problems (no space, no work dir); a contender that fails is an
// "error" row with the reason in the notes.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Report, error) {
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	if cfg.Sizes == (Sizes{}) {
		cfg.Sizes = FullSizes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.WorkRoot == "" {
		cfg.WorkRoot = os.TempDir()
	}
	var workloads []string // canonical order, whatever the order of --only
	for _, w := range workloadNames {
		if len(cfg.Only) == 0 || contains(cfg.Only, w) {
			workloads = append(workloads, w)
		}
	}
	h := &harness{cfg: cfg, log: log, started: time.Now(), loadAtStart: loadAverage(), data: map[string]*dataset{}}

	root := cfg.ModuleRoot
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if root, err = findModuleRoot(wd); err != nil {
			return nil, fmt.Errorf("%w (run from the repository: go run ./bench)", err)
		}
	}
	h.root = root

	need, data, dest := spaceNeeded(workloads, cfg.Sizes)
	free, err := freeBytes(cfg.WorkRoot)
	if err != nil {
		return nil, err
	}
	if free < need {
		return nil, fmt.Errorf("not enough free space in %s: %s available, this run needs about %s (data sets %s + largest destination %s + margin); use --quick, --only or --workdir on a larger disk",
			cfg.WorkRoot, fmtBytes(float64(free)), fmtBytes(float64(need)), fmtBytes(float64(data)), fmtBytes(float64(dest)))
	}
	h.work, err = os.MkdirTemp(cfg.WorkRoot, "fmq-bench-")
	if err != nil {
		return nil, err
	}
	// The data sets are served by the rsync daemon, which must be able to
	// read them; MkdirTemp makes the folder private.
	if err := os.Chmod(h.work, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		// The destinations of the runs (discard), outside any timing.
		if err := h.emptyTrash(); err != nil {
			log.Warn("could not empty the trash", "dir", h.work, "err", err)
		}
		if cfg.Keep {
			log.Info("work dir kept", "dir", h.work)
			return
		}
		if err := os.RemoveAll(h.work); err != nil {
			log.Warn("could not remove work dir", "dir", h.work, "err", err)
		}
	}()
	h.runDir = filepath.Join(h.work, "run")
	for _, d := range []string{h.runDir, filepath.Join(h.work, "data"), filepath.Join(h.work, "dest")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	log.Info("work dir", "dir", h.work, "free", fmtBytes(float64(free)), "need", fmtBytes(float64(need)))

	// Tools.
	if cfg.NoFMQ {
		h.fmq = fmqTool{NA: "disabled by --no-fmq"}
	} else {
		h.fmq = prepareFMQ(ctx, h.root, h.runDir, cfg.FMQBin)
	}
	if h.fmq.NA != "" {
		log.Info("fmq rows are n/a", "reason", h.fmq.NA, "detail", h.fmq.Detail)
	}
	h.rsyncBin, h.rsyncVersion, h.rsyncNA = findRsync(ctx, log, cfg.InstallRsync)
	if h.rsyncNA != "" {
		log.Warn("rsync rows are n/a", "reason", h.rsyncNA)
	}

	// Data sets, once per run.
	specs := datasetSpecs(cfg.Sizes)
	for _, w := range workloads {
		sets, _ := workloadNeeds(w, specs, cfg.Sizes)
		for _, name := range sets {
			if h.data[name] != nil {
				continue
			}
			t0 := time.Now()
			dir := filepath.Join(h.work, "data", name)
			man, err := generate(dir, specs[name])
			if err != nil {
				return nil, err
			}
			h.data[name] = &dataset{spec: specs[name], dir: dir, man: man}
			log.Info("generated data set", "name", name, "files", len(man.Files), "bytes", fmtBytes(float64(man.Bytes)), "took", time.Since(t0).Round(time.Millisecond))
		}
	}

	if h.rsyncNA == "" {
		modules := map[string]string{}
		for name, d := range h.data {
			modules[name] = d.dir
		}
		h.rsyncd, h.rsyncdErr = startRsyncd(ctx, h.rsyncBin, filepath.Join(h.work, "rsyncd"), modules)
		if h.rsyncdErr != nil {
			log.Error("rsync daemon did not start", "err", h.rsyncdErr)
		} else {
			log.Info("rsync daemon up", "port", h.rsyncd.port)
			defer func() {
				if err := h.rsyncd.stop(); err != nil {
					log.Warn("rsync daemon stop", "err", err)
				}
			}()
		}
	}

	for _, w := range workloads {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Info("workload", "name", w)
		switch w {
		case "tree":
			h.wTree(ctx)
		case "large":
			h.wLarge(ctx)
		case "small":
			h.wSmall(ctx)
		case "fanout":
			h.wFanout(ctx)
		case "memory":
			h.wMemory(ctx)
		case "ttfb":
			h.wTTFB(ctx)
		case "resume":
			h.wResume(ctx)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	rep := &Report{Title: "fmq benchmark results", Machine: machineLines(ctx, h), Rows: h.rows}
	rep.Notes = append(rep.Notes, standingNotes(h)...)
	rep.Notes = append(rep.Notes, h.notes...)
	return rep, nil
}

// standingNotes explain how every figure was taken.
func standingNotes(h *harness) []string {
	notes := []string{
		"All contenders run on 127.0.0.1 in the same invocation, interleaved repetition by repetition (A, B, C, A, B, C, ...), so drift hits them alike.",
		"Time is wall time from the client's start (fork/exec, or the dial for the in-process raw TCP copy) to the client's exit with the tree complete; servers (fmqrun serve, rsync daemon) are started and ready before the clock starts.",
		"Page cache: the data sets are generated once per run and stay cached (warm) for all contenders equally; a run's destination is moved out of the way after it (its files of 1 MiB or more removed, the rest removed when the harness ends: a removal of thousands of files just before a run made its file creations scan the freed inodes, on ext4 without a journal), and sync(2) is called before every timed run, so one run's write-back does not land in the next. Nobody fsyncs.",
		"Every copy is checked after the timed run (file set, sizes" + map[bool]string{true: ", SHA-256 digests", false: ""}[h.cfg.Verify] + "); a copy that differs makes its row an error. Hidden names (.*) in a destination are ignored.",
		"Ratios are contender / baseline times, except where the target says otherwise: the large-file ratio is fmq's throughput as a share of raw TCP's (baseline time / fmq time), memory ratios are peak RSS big / small.",
		"Data content is seeded pseudo-random (ChaCha8, seed from the file path): incompressible, no zero runs, identical in every run.",
	}
	if h.fmq.NA != "" {
		d := h.fmq.NA
		if h.fmq.Detail != "" {
			d += ": " + h.fmq.Detail
		}
		notes = append(notes, "fmq rows are n/a: "+d+".")
	}
	if h.rsyncNA != "" {
		notes = append(notes, "rsync rows are n/a: "+h.rsyncNA+".")
	}
	return notes
}

// note records an explanation under the table.
func (h *harness) note(format string, args ...any) {
	h.notes = append(h.notes, fmt.Sprintf(format, args...))
}

// noteErrors adds the failure of each errored series to the notes.
func (h *harness) noteErrors(workload string, ss ...*series) {
	for _, s := range ss {
		if s != nil && s.Err != nil {
			h.note("%s / %s: error: %v", workload, s.Name, s.Err)
		}
	}
}

// newDest returns a path for one run's destination; it does not exist yet.
func (h *harness) newDest(label string) string {
	h.destSeq++
	return filepath.Join(h.work, "dest", fmt.Sprintf("%s-%03d", label, h.destSeq))
}

// logPath is the stderr log of one contender's processes.
func (h *harness) logPath(name string) string {
	return filepath.Join(h.runDir, name+".log")
}
