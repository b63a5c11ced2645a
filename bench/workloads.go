//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// contender is one way of doing a workload's job.
type contender struct {
	s *series
	// prepare (optional) creates the destination before the clock starts;
	// by default dest does not exist when run is called.
	mkdir bool
	// run does the job into dest and returns the measured value in the
	// series' unit.
	run func(ctx context.Context, dest string) (float64, error)
	// verify (optional) checks dest after the run.
	verify func(dest string) error
	// server (optional) starts the contender's server if needed and returns
	// its pid, so that its CPU time during the run is measured.
	server func(ctx context.Context) (pid int, reaps bool, err error)
	// inProcess: the contender runs in the harness's own process; its CPU is
	// the harness's (client and server together).
	inProcess bool
}

// measure runs the contenders cfg.Runs times, interleaved, each into a fresh
// destination that is discarded afterwards (h.discard).
func (h *harness) measure(ctx context.Context, workload string, cs []*contender) {
	for rep := 1 - h.cfg.Warmup; rep <= h.cfg.Runs; rep++ {
		warm := rep <= 0
		for _, c := range cs {
			if !c.s.active() || ctx.Err() != nil {
				continue
			}
			dest := h.newDest(workload)
			h.warmup = warm
			v, cpu, err := h.once(ctx, c, dest)
			h.warmup = false
			if rmErr := h.discard(dest); rmErr != nil && err == nil {
				err = rmErr
			}
			if err != nil {
				c.s.fail(err)
				h.log.Warn("run failed", "workload", workload, "contender", c.s.Name, "run", rep, "warm-up", warm, "err", err)
				continue
			}
			if warm {
				h.log.Info("warm-up", "workload", workload, "contender", c.s.Name, "value", c.s.format(v))
				continue
			}
			c.s.add(v)
			cpu.Wall = v
			if c.s.Unit == unitSeconds {
				c.s.CPU = append(c.s.CPU, cpu)
			}
			h.log.Info("measured", "workload", workload, "contender", c.s.Name, "run", rep, "value", c.s.format(v), "cpu", cpu)
		}
	}
}

// bigFile: files at least this large are removed as soon as their run is
// over (their space matters, their one inode does not); smaller ones wait in
// the trash.
const bigFile = 1 << 20

// discard gets a finished run's destination out of the next run's way
// without removing its small files now: its files of bigFile bytes or more
// are removed, the rest is moved into the work dir's trash, emptied at the
// end of the harness run (h.emptyTrash). Removing a destination of
// thousands of files just before the next contender's run made that run
// pay for it: ext4 without a journal (the work dir's file system on the
// machine of bench/RESULTS.md) does not reuse an inode freed in the last
// 60 s, and every file creation scans the inode bitmap from the start of
// its group, reading each recently freed inode on the way
// (find_inode_bit, recently_deleted). Measured on 10,000 files of 4 KiB:
// 2.5-4.3 CPU-s of the creating process's ~3-5 s in that scan, whichever
// contender ran after a removal, against ~0.3-0.5 s of system time with no
// removal before (bench/RESULTS.md, "Small files and the harness's
// removals"). The cost was the harness's, charged to whoever came next,
// and with contenders of different sizes (the fan-out's 1, 8 and 16
// clients) unevenly.
func (h *harness) discard(dest string) error {
	if _, err := os.Lstat(dest); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	werr := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() >= bigFile {
			return os.Remove(p)
		}
		return nil
	})
	trash := filepath.Join(h.work, "trash")
	if err := os.MkdirAll(trash, 0o755); err != nil {
		return errors.Join(werr, os.RemoveAll(dest))
	}
	if err := os.Rename(dest, filepath.Join(trash, filepath.Base(dest))); err != nil {
		return errors.Join(werr, os.RemoveAll(dest))
	}
	return werr
}

// emptyTrash removes what discard kept (after the last workload).
func (h *harness) emptyTrash() error {
	return os.RemoveAll(filepath.Join(h.work, "trash"))
}

func (h *harness) once(ctx context.Context, c *contender, dest string) (float64, cpuSample, error) {
	var cpu cpuSample
	if c.mkdir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return 0, cpu, err
		}
	}
	pid, reaps := 0, false
	if c.server != nil {
		var err error
		if pid, reaps, err = c.server(ctx); err != nil {
			return 0, cpu, err
		}
	}
	acc := &cpuAcc{}
	ctx = withCPUAcc(ctx, acc)
	syscall.Sync()
	srv0, srvErr := 0.0, error(nil)
	if pid > 0 {
		srv0, srvErr = procCPU(pid)
	}
	self0 := selfCPU()
	v, err := c.run(ctx, dest)
	self1 := selfCPU()
	if err != nil {
		return 0, cpu, err
	}
	if pid > 0 && srvErr == nil {
		if reaps {
			// The rsync daemon's per-client children count once reaped.
			waitNoChildren(pid, 2*time.Second)
		}
		if srv1, err := procCPU(pid); err == nil {
			cpu.Server, cpu.HasServer = srv1-srv0, true
		}
	}
	cpu.Client, cpu.HasClient = acc.clientCPU()
	if c.inProcess {
		cpu.Total, cpu.HasTotal = self1-self0, true
	}
	if c.verify != nil {
		if err := c.verify(dest); err != nil {
			return 0, cpu, err
		}
	}
	return v, cpu, nil
}

// waitNoChildren waits (bounded) until a process has no child processes,
// so that their CPU time shows in its cutime/cstime.
func waitNoChildren(pid int, limit time.Duration) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// verifier checks a destination against a data set.
func (h *harness) verifier(d *dataset) func(string) error {
	return func(dest string) error { return verifyTree(dest, d.man, h.cfg.Verify) }
}

// timeSeries makes a seconds series, n/a when na is not empty.
func timeSeries(name string, payload int64, na string) *series {
	return &series{Name: name, Unit: unitSeconds, Payload: payload, NA: na}
}

// rsyncNAReason is why rsync cannot run, or "".
func (h *harness) rsyncNAReason() string {
	if h.rsyncNA != "" {
		return h.rsyncNA
	}
	if h.rsyncd == nil {
		return "rsync daemon did not start"
	}
	return ""
}

// rsyncContender copies a data set from the rsync daemon.
func (h *harness) rsyncContender(name string, d *dataset) *contender {
	s := timeSeries(name, d.man.Bytes, h.rsyncNAReason())
	if h.rsyncdErr != nil {
		s.NA, s.Err = "", h.rsyncdErr
	}
	return &contender{s: s, run: func(ctx context.Context, dest string) (float64, error) {
		r, err := runProc(ctx, h.cfg.Timeout, h.logPath("rsync"), h.rsyncBin, "-a", h.rsyncd.url(d.spec.Name), dest+"/")
		return r.Wall.Seconds(), err
	}, verify: h.verifier(d), server: h.rsyncdPID}
}

// rsyncdPID is the server hook of rsync contenders: the daemon's pid (it
// reaps one child per client).
func (h *harness) rsyncdPID(context.Context) (int, bool, error) {
	if h.rsyncd == nil {
		return 0, false, nil
	}
	return h.rsyncd.proc.pid(), true, nil
}

// cpContender copies a data set with cp -r (the disk-bound floor).
func (h *harness) cpContender(d *dataset) *contender {
	na := ""
	if _, err := exec.LookPath("cp"); err != nil {
		na = "cp not found"
	}
	return &contender{s: timeSeries("cp -r (disk floor)", d.man.Bytes, na), run: func(ctx context.Context, dest string) (float64, error) {
		r, err := runProc(ctx, h.cfg.Timeout, h.logPath("cp"), "cp", "-r", d.dir, dest)
		return r.Wall.Seconds(), err
	}, verify: h.verifier(d)}
}

// fmqSession is a server started lazily for a workload's fmq contenders.
type fmqSession struct {
	h    *harness
	name string
	dir  string
	bin  string   // the fmqrun binary: h.fmq.Bin unless set
	env  []string // added to the server's and the clients' environment
	// serveArgs and syncArgs are added to the server's and the clients'
	// command lines (CURVE keys).
	serveArgs, syncArgs []string
	srv                 *fmqServer
	err                 error
	once                sync.Once
}

func (h *harness) fmqSession(name, dir string) *fmqSession {
	return &fmqSession{h: h, name: name, dir: dir, bin: h.fmq.Bin}
}

// server starts `fmqrun serve` on first use.
func (f *fmqSession) server(ctx context.Context) (*fmqServer, error) {
	f.once.Do(func() {
		f.srv, f.err = startFMQServer(ctx, f.bin, f.h.runDir, f.name, f.dir, "", f.env, f.serveArgs...)
		if f.err == nil {
			f.h.log.Info("fmqrun serve ready", "name", f.name, "endpoint", f.srv.Endpoint)
		}
	})
	return f.srv, f.err
}

// close stops the server if it was started; a server that died is noted.
func (f *fmqSession) close(workload string) {
	if f.srv == nil {
		return
	}
	if _, err := f.srv.stop(); err != nil {
		f.h.note("%s: fmqrun serve: %v", workload, err)
	}
}

// pid is the contenders' server hook: it starts the server if needed.
func (f *fmqSession) pid(ctx context.Context) (int, bool, error) {
	srv, err := f.server(ctx)
	if err != nil {
		return 0, false, err
	}
	return srv.proc.pid(), false, nil
}

// syncOnce runs one fmq client into inbox against the session's server.
func (f *fmqSession) syncOnce(ctx context.Context, inbox, log string) (procRun, syncReport, error) {
	srv, err := f.server(ctx)
	if err != nil {
		return procRun{}, syncReport{}, err
	}
	r, rep, err := runFMQSync(ctx, f.h.cfg.Timeout, f.bin, f.h.logPath(log), srv.Endpoint, inbox, f.env, f.syncArgs...)
	if err == nil {
		err = srv.alive()
	}
	return r, rep, err
}

// fmqContender runs `fmqrun sync --once` into a fresh, empty inbox.
func (h *harness) fmqContender(name string, sess *fmqSession, d *dataset) *contender {
	return &contender{s: timeSeries(name, d.man.Bytes, h.fmq.NA), mkdir: true,
		run: func(ctx context.Context, dest string) (float64, error) {
			r, _, err := sess.syncOnce(ctx, dest, "fmq-sync")
			return r.Wall.Seconds(), err
		}, verify: h.verifier(d), server: sess.pid}
}

// fanOut runs n copies of one client at once into dest/c0 .. dest/c{n-1}
// and measures the wall time until the last is done.
func fanOut(n int, one func(ctx context.Context, dest string) error) func(context.Context, string) (float64, error) {
	return func(ctx context.Context, dest string) (float64, error) {
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = one(ctx, filepath.Join(dest, fmt.Sprintf("c%d", i)))
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		return elapsed.Seconds(), errors.Join(errs...)
	}
}

func verifyEach(n int, verify func(string) error) func(string) error {
	return func(dest string) error {
		for i := 0; i < n; i++ {
			if err := verify(filepath.Join(dest, fmt.Sprintf("c%d", i))); err != nil {
				return err
			}
		}
		return nil
	}
}

func fmtSize(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d B", n)
}

// treeLabel names the tree workload with its sizes.
func (h *harness) treeLabel() string {
	s := h.cfg.Sizes
	return fmt.Sprintf("1. tree sync (%s + %d x %s, nested)", fmtSize(s.TreeBig), s.TreeFiles, fmtSize(s.SmallSize))
}

// 1. Tree sync: fmq vs rsync daemon (target) and cp -r (floor).
func (h *harness) wTree(ctx context.Context) {
	d := h.data["tree"]
	w := h.treeLabel()
	sess := h.fmqSession("tree", d.dir)
	defer sess.close(w)
	rs := h.rsyncContender("rsync -a (daemon)", d)
	cp := h.cpContender(d)
	fq := h.fmqContender("fmq sync --once", sess, d)
	h.measure(ctx, "tree", []*contender{rs, cp, fq})
	h.rows = append(h.rows,
		compare(w, rs.s, nil, target{Kind: tBaseline}),
		compare(w, cp.s, rs.s, target{Kind: tInfo}),
		compare(w, fq.s, rs.s, target{Kind: tMaxRatio, Limit: 0.80}),
		compare(w, fq.s, cp.s, target{Kind: tInfo}),
	)
	h.noteErrors(w, rs.s, cp.s, fq.s)
}

// 2. Large file: fmq vs an in-process raw TCP copy.
func (h *harness) wLarge(ctx context.Context) {
	d := h.data["large"]
	w := fmt.Sprintf("2. large file (%s)", fmtSize(h.cfg.Sizes.Large))
	sess := h.fmqSession("large", d.dir)
	defer sess.close(w)
	src := filepath.Join(d.dir, "large.bin")
	raw := &contender{s: timeSeries("raw TCP copy (Go, 1 MiB buffers)", d.man.Bytes, ""), mkdir: true, inProcess: true,
		run: func(ctx context.Context, dest string) (float64, error) {
			t, err := rawTCPCopy(ctx, src, filepath.Join(dest, "large.bin"))
			return t.Seconds(), err
		}, verify: h.verifier(d)}
	fq := h.fmqContender("fmq sync --once", sess, d)
	// The same transfer without the SHA instructions (server and client),
	// as on CPUs that lack them.
	noSHA := h.fmqSession("large-nosha", d.dir)
	noSHA.env = []string{"GODEBUG=cpu.sha=off"}
	defer noSHA.close(w)
	fqNoSHA := h.fmqContender("fmq sync --once, GODEBUG=cpu.sha=off (no SHA-NI)", noSHA, d)
	// The same transfer encrypted with CURVE (issue 13), beside NULL.
	curve := h.fmqSession("large-curve", d.dir)
	defer curve.close(w)
	if h.fmq.NA == "" {
		var err error
		if curve.serveArgs, curve.syncArgs, err = curveKeys(ctx, h.fmq.Bin, h.runDir); err != nil {
			curve.once.Do(func() { curve.err = err })
		}
	}
	fqCurve := h.fmqContender("fmq sync --once, CURVE", curve, d)
	contenders := []*contender{raw, fq, fqNoSHA, fqCurve}
	// --fmqrun-base: a build before a change, interleaved with the rest.
	var fqBase *contender
	if h.cfg.BaseBin != "" && h.fmq.NA == "" {
		base := h.fmqSession("large-base", d.dir)
		base.bin = h.cfg.BaseBin
		defer base.close(w)
		fqBase = h.fmqContender("fmq sync --once, base binary (--fmqrun-base)", base, d)
		contenders = append(contenders, fqBase)
	}
	h.measure(ctx, "large", contenders)
	share := func(limit float64) target {
		return target{Kind: tMinShare, Limit: limit, Note: "(throughput share of raw TCP)"}
	}
	h.rows = append(h.rows,
		compare(w, raw.s, nil, target{Kind: tBaseline}),
		compare(w, fq.s, raw.s, share(0.60)),
		compare(w, cpuPerGiBSeries("fmq sync: client CPU", fq.s, false), nil, target{Kind: tMaxAbs, AbsMax: 0.8}),
		compare(w, cpuPerGiBSeries("fmq serve: server CPU", fq.s, true), nil, target{Kind: tMaxAbs, AbsMax: 0.4}),
		compare(w, fqNoSHA.s, raw.s, target{Kind: tInfo, Share: true, Note: "(throughput share of raw TCP)"}),
		compare(w, fqCurve.s, fq.s, target{Kind: tMinShare, Limit: 0.50, Note: "(CURVE throughput share of NULL)"}),
	)
	h.noteErrors(w, raw.s, fq.s, fqNoSHA.s, fqCurve.s)
	if fqBase != nil {
		h.rows = append(h.rows,
			compare(w, fqBase.s, raw.s, target{Kind: tInfo, Share: true, Note: "(throughput share of raw TCP)"}),
			compare(w, fq.s, fqBase.s, target{Kind: tInfo, Note: "(time, this build / base)"}),
			compare(w, cpuPerGiBSeries("base binary: client CPU", fqBase.s, false), nil, target{Kind: tInfo}),
			compare(w, cpuPerGiBSeries("base binary: server CPU", fqBase.s, true), nil, target{Kind: tInfo}),
		)
		h.noteErrors(w, fqBase.s)
	}
}

// 3. Many small files: fmq vs rsync daemon; cp -r for context.
func (h *harness) wSmall(ctx context.Context) {
	d := h.data["small"]
	w := fmt.Sprintf("3. many small files (%d x %s)", h.cfg.Sizes.SmallFiles, fmtSize(h.cfg.Sizes.SmallSize))
	sess := h.fmqSession("small", d.dir)
	defer sess.close(w)
	rs := h.rsyncContender("rsync -a (daemon)", d)
	cp := h.cpContender(d)
	fq := h.fmqContender("fmq sync --once", sess, d)
	h.measure(ctx, "small", []*contender{rs, cp, fq})
	h.rows = append(h.rows,
		compare(w, rs.s, nil, target{Kind: tBaseline}),
		compare(w, cp.s, rs.s, target{Kind: tInfo}),
		compare(w, fq.s, rs.s, target{Kind: tMaxRatio, Limit: 0.80}),
	)
	h.noteErrors(w, rs.s, cp.s, fq.s)
}

// 4. Fan-out: one fmq server, N clients at once vs 1 client; rsync daemon
// with the same fan-out for context (what this machine's disk and CPUs allow).
func (h *harness) wFanout(ctx context.Context) {
	d := h.data["tree"]
	n := h.cfg.Sizes.FanOut
	w := fmt.Sprintf("4. fan-out (%d clients, tree of %s)", n, fmtSize(h.cfg.Sizes.TreeBig))
	sess := h.fmqSession("fanout", d.dir)
	defer sess.close(w)
	verify := h.verifier(d)

	fmqOne := func(ctx context.Context, inbox string) error {
		if err := os.MkdirAll(inbox, 0o755); err != nil {
			return err
		}
		_, _, err := sess.syncOnce(ctx, inbox, "fmq-fanout-"+filepath.Base(inbox))
		return err
	}
	rsyncOne := func(ctx context.Context, dest string) error {
		_, err := runProc(ctx, h.cfg.Timeout, h.logPath("rsync-fanout-"+filepath.Base(dest)), h.rsyncBin, "-a", h.rsyncd.url("tree"), dest+"/")
		return err
	}
	mk := func(name string, clients int, na string, one func(context.Context, string) error, srv func(context.Context) (int, bool, error)) *contender {
		s := timeSeries(name, int64(clients)*d.man.Bytes, na)
		s.ShowUtil = true
		return &contender{s: s, mkdir: true, run: fanOut(clients, one), verify: verifyEach(clients, verify), server: srv}
	}
	rsNA := h.rsyncNAReason()
	f1 := mk("fmq, 1 client", 1, h.fmq.NA, fmqOne, sess.pid)
	fN := mk(fmt.Sprintf("fmq, %d clients", n), n, h.fmq.NA, fmqOne, sess.pid)
	r1 := mk("rsync daemon, 1 client", 1, rsNA, rsyncOne, h.rsyncdPID)
	rN := mk(fmt.Sprintf("rsync daemon, %d clients", n), n, rsNA, rsyncOne, h.rsyncdPID)
	cs := []*contender{f1, fN, r1, rN}
	var fM, rM *contender
	if m := h.cfg.Sizes.FanOutMax; m > n {
		fM = mk(fmt.Sprintf("fmq, %d clients", m), m, h.fmq.NA, fmqOne, sess.pid)
		rM = mk(fmt.Sprintf("rsync daemon, %d clients", m), m, rsNA, rsyncOne, h.rsyncdPID)
		cs = append(cs, fM, rM)
	}
	for _, c := range cs {
		if h.rsyncdErr != nil && strings.HasPrefix(c.s.Name, "rsync") {
			c.s.NA, c.s.Err = "", h.rsyncdErr
		}
	}
	h.measure(ctx, "fanout", cs)
	h.rows = append(h.rows,
		compare(w, f1.s, nil, target{Kind: tBaseline}),
		compare(w, fN.s, f1.s, target{Kind: tMaxRatio, Limit: 4.0}),
		compare(w, r1.s, nil, target{Kind: tBaseline}),
		compare(w, rN.s, r1.s, target{Kind: tInfo}),
		compare(w, fN.s, rN.s, target{Kind: tMaxRatio, Limit: 1.0}),
	)
	ss := []*series{f1.s, fN.s, r1.s, rN.s}
	if fM != nil {
		h.rows = append(h.rows,
			compare(w, fM.s, f1.s, target{Kind: tInfo}),
			compare(w, rM.s, r1.s, target{Kind: tInfo}),
			compare(w, fM.s, rM.s, target{Kind: tInfo}),
		)
		ss = append(ss, fM.s, rM.s)
	}
	h.noteErrors(w, ss...)
}

// 5. Memory: peak RSS of fmq server and client for a big file vs a small
// one; the rsync client's peak RSS for context.
func (h *harness) wMemory(ctx context.Context) {
	small, big := h.data["mem-small"], h.data["mem-big"]
	sz := h.cfg.Sizes
	w := fmt.Sprintf("5. memory (peak RSS, %s vs %s file)", fmtSize(sz.MemBig), fmtSize(sz.MemSmall))
	rssSeries := func(name, na string) *series { return &series{Name: name, Unit: unitBytes, NA: na} }
	type pair struct {
		d             *dataset
		serve, client *series
		rsync         *series
	}
	rsNA := h.rsyncNAReason()
	mkPair := func(d *dataset, size int64) *pair {
		p := &pair{d: d,
			serve:  rssSeries(fmt.Sprintf("fmq serve, %s file", fmtSize(size)), h.fmq.NA),
			client: rssSeries(fmt.Sprintf("fmq sync, %s file", fmtSize(size)), h.fmq.NA),
			rsync:  rssSeries(fmt.Sprintf("rsync client, %s file", fmtSize(size)), rsNA)}
		if h.rsyncdErr != nil {
			p.rsync.NA, p.rsync.Err = "", h.rsyncdErr
		}
		return p
	}
	ps, pb := mkPair(small, sz.MemSmall), mkPair(big, sz.MemBig)
	var cs []*contender
	for _, p := range []*pair{ps, pb} {
		p := p
		// A fresh server per run, so its peak RSS covers this one transfer.
		cs = append(cs, &contender{s: p.client, mkdir: true, verify: h.verifier(p.d),
			run: func(ctx context.Context, inbox string) (float64, error) {
				srv, err := startFMQServer(ctx, h.fmq.Bin, h.runDir, "memory-"+p.d.spec.Name, p.d.dir, filepath.Join(h.runDir, "serve.rss"), nil)
				if err != nil {
					return 0, err
				}
				r, err := runProcRSS(ctx, h.cfg.Timeout, h.logPath("fmq-memory"), filepath.Join(h.runDir, "sync.rss"), h.fmq.Bin, syncArgs(srv.Endpoint, inbox)...)
				if err == nil {
					_, err = parseSyncReport(r.Stdout)
				}
				srvRSS, serr := srv.stop()
				if err == nil {
					err = serr
				}
				if err != nil {
					p.serve.fail(err)
					return 0, err
				}
				if !h.warmup {
					p.serve.add(float64(srvRSS))
				}
				return float64(r.MaxRSS), nil
			}})
		cs = append(cs, &contender{s: p.rsync, verify: h.verifier(p.d),
			run: func(ctx context.Context, dest string) (float64, error) {
				r, err := runProcRSS(ctx, h.cfg.Timeout, h.logPath("rsync-memory"), filepath.Join(h.runDir, "rsync.rss"), h.rsyncBin, "-a", h.rsyncd.url(p.d.spec.Name), dest+"/")
				return float64(r.MaxRSS), err
			}})
	}
	h.measure(ctx, "memory", cs)
	if truePath, err := exec.LookPath("true"); err == nil {
		if r, err := runProcRSS(ctx, time.Minute, h.logPath("launcher-floor"), filepath.Join(h.runDir, "floor.rss"), truePath); err == nil {
			h.note("%s: peak RSS is read from getrusage through a small launcher process (see bench/rusage.go); its floor, measured on `true`, is %s, so smaller peaks read as that.", w, fmtBytes(float64(r.MaxRSS)))
		}
	}
	limit := target{Kind: tMaxRatio, Limit: 1.2, AbsMax: 100 * mib}
	h.rows = append(h.rows,
		compare(w, ps.serve, nil, target{Kind: tBaseline}),
		compare(w, pb.serve, ps.serve, limit),
		compare(w, ps.client, nil, target{Kind: tBaseline}),
		compare(w, pb.client, ps.client, limit),
		compare(w, ps.rsync, nil, target{Kind: tBaseline}),
		compare(w, pb.rsync, ps.rsync, target{Kind: tInfo}),
	)
	h.noteErrors(w, ps.serve, pb.serve, ps.client, pb.client, ps.rsync, pb.rsync)
}

// 6. Time to first byte for a client joining an existing tree, as fmq
// reports it; the rsync daemon's first answer (a one-file listing, client
// process start included) for context.
func (h *harness) wTTFB(ctx context.Context) {
	d := h.data["tree"]
	w := "6. time to first byte (join existing tree)"
	sess := h.fmqSession("ttfb", d.dir)
	defer sess.close(w)
	rs := timeSeries("rsync daemon: first answer (--list-only of one file)", 0, h.rsyncNAReason())
	if h.rsyncdErr != nil {
		rs.NA, rs.Err = "", h.rsyncdErr
	}
	rsc := &contender{s: rs, run: func(ctx context.Context, _ string) (float64, error) {
		r, err := runProc(ctx, h.cfg.Timeout, h.logPath("rsync-list"), h.rsyncBin, "--list-only", h.rsyncd.url("tree")+"big.bin")
		return r.Wall.Seconds(), err
	}}
	fq := &contender{s: timeSeries("fmq sync: first_byte_ms", 0, h.fmq.NA), mkdir: true, verify: h.verifier(d),
		run: func(ctx context.Context, inbox string) (float64, error) {
			_, rep, err := sess.syncOnce(ctx, inbox, "fmq-ttfb")
			if err == nil && rep.FirstByteMs <= 0 && rep.Bytes > 0 {
				err = fmt.Errorf("sync report has first_byte_ms %d with %d bytes received", rep.FirstByteMs, rep.Bytes)
			}
			return float64(rep.FirstByteMs) / 1000, err
		}}
	h.measure(ctx, "ttfb", []*contender{rsc, fq})
	h.rows = append(h.rows,
		compare(w, rs, nil, target{Kind: tBaseline}),
		compare(w, fq.s, rs, target{Kind: tMaxAbs, AbsMax: h.cfg.TTFBMax.Seconds(), Note: "(no polling waits)"}),
	)
	h.noteErrors(w, rs, fq.s)
}

// 7. Resume: stop a client with SIGKILL once its partial holds half the
// large file, restart it, and measure the bytes and time of the rest.
func (h *harness) wResume(ctx context.Context) {
	d := h.data["large"]
	size := h.cfg.Sizes.Large
	w := fmt.Sprintf("7. resume (%s, SIGKILL at half)", fmtSize(size))
	sess := h.fmqSession("resume", d.dir)
	defer sess.close(w)

	full := h.fmqContender("fmq, full transfer", sess, d)
	restart := timeSeries("fmq, restart: time for the rest", 0, h.fmq.NA)
	got := &series{Name: "fmq, restart: content bytes received", Unit: unitBytes, NA: h.fmq.NA}
	missing := &series{Name: "missing after kill", Unit: unitBytes, NA: h.fmq.NA}
	var resumed []float64
	window := h.cfg.CreditWindow
	maxExcess := int64(-1 << 62)
	rc := &contender{s: restart, mkdir: true, verify: h.verifier(d),
		run: func(ctx context.Context, inbox string) (float64, error) {
			srv, err := sess.server(ctx)
			if err != nil {
				return 0, err
			}
			part, err := h.killAtHalf(ctx, srv.Endpoint, inbox, "large.bin", size)
			if err != nil {
				return 0, err
			}
			syscall.Sync()
			r, rep, err := sess.syncOnce(ctx, inbox, "fmq-resume")
			if err != nil {
				return 0, err
			}
			if rep.CreditWindow > 0 {
				window = rep.CreditWindow
			}
			if !h.warmup {
				miss := size - part
				got.add(float64(rep.Bytes))
				missing.add(float64(miss))
				resumed = append(resumed, float64(rep.ResumedBytes))
				maxExcess = max(maxExcess, rep.Bytes-miss)
			}
			return r.Wall.Seconds(), nil
		}}
	h.measure(ctx, "resume", []*contender{full, rc})
	if restart.Err != nil { // keep the byte rows consistent with the time row
		got.fail(restart.Err)
	}
	bytesRow := Row{Workload: w, Contender: got.Name, Median: got.cell(), Baseline: missing.Name + ": " + missing.cell(),
		Ratio: "-", Target: fmt.Sprintf("excess <= credit window (%s)", fmtBytes(float64(window)))}
	switch {
	case got.NA != "":
		bytesRow.Result = resNA
	case got.Err != nil || !got.ok():
		bytesRow.Result = resError
	default:
		bytesRow.Ratio = fmt.Sprintf("%.3f", got.median()/missing.median())
		bytesRow.Result = passFail(maxExcess <= window)
		h.note("%s: worst run received %s more than was missing; median resumed_bytes reported by fmq: %s.",
			w, fmtBytes(float64(maxExcess)), fmtBytes(median(resumed)))
	}
	h.rows = append(h.rows,
		compare(w, full.s, nil, target{Kind: tBaseline}),
		compare(w, restart, full.s, target{Kind: tInfo}),
		bytesRow,
	)
	h.noteErrors(w, full.s, restart)
}

// killAtHalf starts a client into inbox, watches the contract's partial file
// of rel, and SIGKILLs the client once the partial holds at least half of
// size. It returns the partial's size after the kill.
func (h *harness) killAtHalf(ctx context.Context, endpoint, inbox, rel string, size int64) (int64, error) {
	logf, err := os.OpenFile(h.logPath("fmq-resume-killed"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(h.fmq.Bin, syncArgs(endpoint, inbox)...)
	cmd.Stdout = io.Discard
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	part := partialName(inbox, rel)
	half := size / 2
	deadline := time.NewTimer(h.cfg.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
watch:
	for {
		select {
		case err := <-done:
			return 0, fmt.Errorf("fmqrun sync ended (%v) before its partial %s reached half of %s; is it written as data arrives?", err, part, fmtBytes(float64(size)))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return 0, ctx.Err()
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-done
			return 0, fmt.Errorf("partial %s did not reach half within %s", part, h.cfg.Timeout)
		case <-tick.C:
		}
		if st, err := os.Stat(part); err == nil && st.Size() >= half {
			break watch
		}
	}
	_ = cmd.Process.Kill()
	<-done
	st, err := os.Stat(part)
	if err != nil {
		return 0, fmt.Errorf("after SIGKILL: no resumable partial: %w", err)
	}
	return st.Size(), nil
}
