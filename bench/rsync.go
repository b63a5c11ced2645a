//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// findRsync locates rsync, installing Debian's package once when allowed.
// It returns the path or a reason why rsync rows are n/a.
func findRsync(ctx context.Context, log *slog.Logger, install bool) (path, version, na string) {
	if p, err := exec.LookPath("rsync"); err == nil {
		return p, rsyncVersion(ctx, p), ""
	}
	if !install {
		return "", "", "rsync not installed"
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", "", "rsync not installed and apt-get not available"
	}
	log.Info("rsync not found; trying apt-get install -y rsync")
	try := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "rsync")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(lastLines(string(out), 3)))
		}
		return nil
	}
	err := try()
	if err != nil {
		// A fresh machine often has no package lists yet: refresh them once.
		log.Info("apt-get install failed; running apt-get update once", "err", err)
		if uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").Run(); uerr == nil {
			err = try()
		}
	}
	if err != nil {
		return "", "", "rsync not installed (apt-get install failed: " + err.Error() + ")"
	}
	p, lerr := exec.LookPath("rsync")
	if lerr != nil {
		return "", "", "rsync not installed (not on PATH after apt-get install)"
	}
	return p, rsyncVersion(ctx, p), ""
}

var rsyncVersionRE = regexp.MustCompile(`rsync\s+version\s+v?(\S+)`)

func rsyncVersion(ctx context.Context, path string) string {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "unknown"
	}
	if m := rsyncVersionRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return "unknown"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// rsyncdConf renders an rsync daemon configuration serving each module
// read-only from its folder, as the current user (no chroot, no privilege
// change), listening on 127.0.0.1:port only.
func rsyncdConf(dir string, port, uid, gid int, modules map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by the fmq bench harness\n")
	fmt.Fprintf(&b, "address = 127.0.0.1\nport = %d\n", port)
	fmt.Fprintf(&b, "pid file = %s\n", filepath.Join(dir, "rsyncd.pid"))
	fmt.Fprintf(&b, "log file = %s\n", filepath.Join(dir, "rsyncd.log"))
	fmt.Fprintf(&b, "use chroot = no\nuid = %d\ngid = %d\n", uid, gid)
	fmt.Fprintf(&b, "reverse lookup = no\ntransfer logging = no\nmax connections = 0\n")
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\n[%s]\n    path = %s\n    read only = yes\n", n, modules[n])
	}
	return b.String()
}

// rsyncd is a running rsync daemon.
type rsyncd struct {
	proc *bgProc
	port int
	bin  string
}

// startRsyncd writes rsyncd.conf in dir and starts the daemon in the
// foreground (--no-detach) so the harness owns it and can stop it.
func startRsyncd(ctx context.Context, bin, dir string, modules map[string]string) (*rsyncd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "rsyncd.conf")
	if err := os.WriteFile(conf, []byte(rsyncdConf(dir, port, os.Getuid(), os.Getgid(), modules)), 0o644); err != nil {
		return nil, err
	}
	p, err := startBg(ctx, filepath.Join(dir, "rsyncd.stderr"), "", nil, bin, "--daemon", "--no-detach", "--config="+conf)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitReady(ctx, 15*time.Second, "listening on "+addr, func() bool { return canDial(addr) }); err != nil {
		p.stop(2 * time.Second)
		return nil, fmt.Errorf("rsync daemon: %w (log %s: %s)", err, filepath.Join(dir, "rsyncd.log"), tailFile(filepath.Join(dir, "rsyncd.log"), 300))
	}
	return &rsyncd{proc: p, port: port, bin: bin}, nil
}

// url is the rsync:// address of a module's root.
func (d *rsyncd) url(module string) string {
	return fmt.Sprintf("rsync://127.0.0.1:%d/%s/", d.port, module)
}

func (d *rsyncd) stop() error {
	_, err := d.proc.stop(5 * time.Second)
	return err
}
