//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return fmtBytes(float64(kb) * 1024)
		}
	}
	return "unknown"
}

func kernel() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "unknown"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// fsType names the file system of path from its statfs magic number.
func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		0xEF53:     "ext4",
		0x01021994: "tmpfs",
		0x9123683E: "btrfs",
		0x58465342: "xfs",
		0x794C7630: "overlayfs",
		0x2FC12FC1: "zfs",
		0x6969:     "nfs",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// freeBytes is the space available to this user on path's file system.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func goToolVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return runtime.Version() + " (harness)"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
}

func gitDescribe(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		s += " (uncommitted changes)"
	}
	return s
}

// machineLines describes the machine and the run for the report header.
func machineLines(ctx context.Context, h *harness) []string {
	mode := "full sizes"
	if h.cfg.Quick {
		mode = "quick sizes (harness test, not for the record)"
	}
	rsync := "not available (" + h.rsyncNA + ")"
	if h.rsyncNA == "" {
		rsync = "rsync " + h.rsyncVersion + " (" + h.rsyncBin + ")"
	}
	return []string{
		"date: " + h.started.UTC().Format(time.RFC3339),
		fmt.Sprintf("machine: %d x %s, %s RAM, Linux %s, %s/%s", runtime.NumCPU(), cpuModel(), memTotal(), kernel(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("work dir: %s (%s); vm dirty limits: %s; load average at start: %s", h.work, fsType(h.work), dirtyLimits(), h.loadAtStart),
		"go: " + goToolVersion(ctx),
		"baseline tools: " + rsync + "; cp from " + cpVersion(ctx),
		"fmq: commit " + gitDescribe(ctx, h.root) + fmqState(h.fmq),
		fmt.Sprintf("mode: %s; %d measured run(s) per contender after %d untimed warm-up round(s), median shown", mode, h.cfg.Runs, h.cfg.Warmup),
	}
}

func fmqState(f fmqTool) string {
	if f.NA != "" {
		return "; fmqrun: " + f.NA
	}
	return "; fmqrun: " + f.Bin
}

func cpVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "cp", "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// dirtyLimits tells when the kernel starts throttling writers, which decides
// whether large copies are disk-bound.
func dirtyLimits() string {
	read := func(name string) string {
		b, err := os.ReadFile("/proc/sys/vm/" + name)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	if b := read("dirty_bytes"); b != "0" && b != "?" {
		return "dirty_bytes " + b + ", dirty_background_bytes " + read("dirty_background_bytes")
	}
	return "dirty_ratio " + read("dirty_ratio") + "%, dirty_background_ratio " + read("dirty_background_ratio") + "%"
}

// loadAverage is the 1, 5 and 15 minute load average: other work on the
// machine skews every contender, so it belongs with the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
