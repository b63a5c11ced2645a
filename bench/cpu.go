//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPU accounting (issue 14): every timed run records the CPU time its client
// processes used (user + system, from the reaped children's rusage) and the
// CPU time its server used meanwhile (from /proc/PID/stat, before and after
// the run, children the server reaped included: the rsync daemon forks one
// per client). The table shows both per GiB of content moved, and for the
// fan-out rows the server's utilisation (CPU seconds per wall second).

// cpuSample is what one timed run cost in CPU seconds.
type cpuSample struct {
	Client, Server float64
	HasClient      bool
	HasServer      bool
	// Total is set instead of Client and Server when both ran in the
	// harness's own process (the raw TCP copy).
	Total    float64
	HasTotal bool
	Wall     float64 // the run's measured seconds, for the utilisation
}

// cpuAcc collects the CPU of the client processes of one run; fan-out runs
// add to it from several goroutines.
type cpuAcc struct {
	mu     sync.Mutex
	client float64
	n      int
}

type cpuAccKey struct{}

func withCPUAcc(ctx context.Context, a *cpuAcc) context.Context {
	return context.WithValue(ctx, cpuAccKey{}, a)
}

// addClientCPU charges a reaped child's CPU to the run in ctx, if any.
func addClientCPU(ctx context.Context, ps *os.ProcessState) {
	a, _ := ctx.Value(cpuAccKey{}).(*cpuAcc)
	if a == nil || ps == nil {
		return
	}
	s := (ps.UserTime() + ps.SystemTime()).Seconds()
	a.mu.Lock()
	a.client += s
	a.n++
	a.mu.Unlock()
}

func (a *cpuAcc) clientCPU() (float64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client, a.n > 0
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// procCPU returns the CPU seconds a live process used so far: utime, stime,
// cutime and cstime of /proc/PID/stat (its reaped children included).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU reads fields 14-17 of a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are
// counted from the last ')'.
func parseProcStatCPU(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command name in %q", truncate(s, 60))
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 15 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name", len(f))
	}
	var ticks int64
	for k := 14; k <= 17; k++ {
		n, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat field %d: %w", k, err)
		}
		ticks += n
	}
	return float64(ticks) / clockTicks, nil
}

// selfCPU is the harness's own CPU time (user + system, all threads).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// perGiB turns CPU seconds into CPU seconds per GiB of payload.
func perGiB(cpu float64, payload int64) float64 {
	return cpu / (float64(payload) / gib)
}

// cpuCell renders the medians of a series' CPU samples: CPU seconds per GiB
// of client and server, and with showUtil the server's utilisation.
func (s *series) cpuCell() string {
	if s.NA != "" || s.Err != nil || len(s.CPU) == 0 || s.Payload <= 0 {
		return "-"
	}
	var cl, sv, tot, util []float64
	for _, c := range s.CPU {
		if c.HasClient {
			cl = append(cl, perGiB(c.Client, s.Payload))
		}
		if c.HasServer {
			sv = append(sv, perGiB(c.Server, s.Payload))
			if c.Wall > 0 {
				util = append(util, c.Server/c.Wall)
			}
		}
		if c.HasTotal {
			tot = append(tot, perGiB(c.Total, s.Payload))
		}
	}
	var parts []string
	if len(tot) > 0 {
		parts = append(parts, fmt.Sprintf("both (one process) %.2f", median(tot)))
	}
	if len(cl) > 0 {
		parts = append(parts, fmt.Sprintf("client %.2f", median(cl)))
	}
	if len(sv) > 0 {
		parts = append(parts, fmt.Sprintf("server %.2f", median(sv)))
	}
	if len(parts) == 0 {
		return "-"
	}
	out := strings.Join(parts, " / ")
	if s.ShowUtil && len(util) > 0 {
		out += fmt.Sprintf("; server busy %.2f cores", median(util))
	}
	return out
}

// cpuPerGiBSeries derives a judged series (CPU-s/GiB per run) from the CPU
// samples of s: the client's (server false) or the server's.
func cpuPerGiBSeries(name string, s *series, server bool) *series {
	out := &series{Name: name, Unit: unitCPUPerGiB, NA: s.NA, Err: s.Err}
	for _, c := range s.CPU {
		switch {
		case server && c.HasServer:
			out.add(perGiB(c.Server, s.Payload))
		case !server && c.HasClient:
			out.add(perGiB(c.Client, s.Payload))
		}
	}
	return out
}
