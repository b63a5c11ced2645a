//go:build linux

package main

import (
	"fmt"
	"sort"
	"strings"
)

// unit is what a series measures.
type unit int

const (
	unitSeconds unit = iota
	unitBytes
	unitCPUPerGiB // CPU seconds per GiB of payload
)

// series holds the repeated measurements of one contender.
type series struct {
	Name    string
	Unit    unit
	Values  []float64   // seconds or bytes, one per repetition
	Payload int64       // content bytes moved per run, for a throughput figure (0: none)
	Err     error       // first failure; the contender is not run again
	NA      string      // could not run here, and why
	CPU     []cpuSample // CPU cost of each measured run (time series only)
	// ShowUtil adds the server's utilisation (CPU s per wall s) to the CPU cell.
	ShowUtil bool
}

func (s *series) add(v float64) { s.Values = append(s.Values, v) }

func (s *series) fail(err error) {
	if s.Err == nil {
		s.Err = err
	}
}

// ok reports whether the series has a usable median.
func (s *series) ok() bool { return s != nil && s.NA == "" && s.Err == nil && len(s.Values) > 0 }

// active reports whether the contender should still be run.
func (s *series) active() bool { return s.NA == "" && s.Err == nil }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	m := len(c) / 2
	if len(c)%2 == 1 {
		return c[m]
	}
	return (c[m-1] + c[m]) / 2
}

func (s *series) median() float64 { return median(s.Values) }

func (s *series) format(v float64) string {
	switch s.Unit {
	case unitBytes:
		return fmtBytes(v)
	case unitCPUPerGiB:
		return fmt.Sprintf("%.2f CPU-s/GiB", v)
	}
	out := fmtSeconds(v)
	if s.Payload > 0 && v > 0 {
		out += fmt.Sprintf(" (%s/s)", fmtBytes(float64(s.Payload)/v))
	}
	return out
}

// cell renders the median, or why there is none.
func (s *series) cell() string {
	switch {
	case s.NA != "":
		return "n/a (" + s.NA + ")"
	case s.Err != nil:
		return "error (see notes)"
	case len(s.Values) == 0:
		return "n/a (not run)"
	}
	return s.format(s.median())
}

func fmtSeconds(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	case v >= 1:
		return fmt.Sprintf("%.2f s", v)
	case v >= 0.001:
		return fmt.Sprintf("%.1f ms", v*1e3)
	}
	return fmt.Sprintf("%.0f us", v*1e6)
}

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// targetKind says how a row is judged.
type targetKind int

const (
	tBaseline targetKind = iota // the reference row of a workload
	tInfo                       // shown for context, not judged
	tMaxRatio                   // contender/baseline <= Limit (and median <= AbsMax when set)
	tMinShare                   // baseline/contender (a throughput share) >= Limit
	tMaxAbs                     // median <= AbsMax; the ratio is shown for context
)

type target struct {
	Kind   targetKind
	Limit  float64
	AbsMax float64 // in the series' unit; 0 = no absolute limit
	Note   string  // appended to the target text
	// Share: the ratio is baseline/contender (a throughput share), as for
	// tMinShare, on a row of another kind (tInfo).
	Share bool
}

func (t target) text(u unit) string {
	abs := func() string {
		switch u {
		case unitBytes:
			return fmtBytes(t.AbsMax)
		case unitCPUPerGiB:
			return fmt.Sprintf("%.2f CPU-s/GiB", t.AbsMax)
		}
		return fmtSeconds(t.AbsMax)
	}
	var s string
	switch t.Kind {
	case tBaseline:
		s = "baseline"
	case tInfo:
		s = "info"
	case tMaxRatio:
		s = fmt.Sprintf("ratio <= %.2f", t.Limit)
		if t.AbsMax > 0 {
			s += " and < " + abs()
		}
	case tMinShare:
		s = fmt.Sprintf("ratio >= %.2f", t.Limit)
	case tMaxAbs:
		s = "<= " + abs()
	}
	if t.Note != "" {
		s += " " + t.Note
	}
	return s
}

// Row is one line of the results table.
type Row struct {
	Workload, Contender, Median, CPU, Baseline, Ratio, Target, Result string
}

// Result values.
const (
	resPass     = "pass"
	resFail     = "FAIL"
	resInfo     = "info"
	resNA       = "n/a"
	resError    = "error"
	resBaseline = "baseline"
)

// compare builds the row of contender c judged against baseline b.
func compare(workload string, c, b *series, t target) Row {
	r := Row{Workload: workload, Contender: c.Name, Median: c.cell(), CPU: c.cpuCell(), Ratio: "-", Target: t.text(c.Unit)}
	if t.Kind == tBaseline || b == nil {
		r.Baseline = "-"
		switch {
		case c.NA != "":
			r.Result = resNA
		case c.Err != nil:
			r.Result = resError
		case t.Kind == tMaxAbs:
			r.Result = judgeAbs(c.median(), t.AbsMax)
		default:
			r.Result = resBaseline
		}
		return r
	}
	r.Baseline = b.Name + ": " + b.cell()
	switch {
	case c.NA != "":
		r.Result = resNA
		return r
	case c.Err != nil:
		r.Result = resError
		return r
	}
	cm := c.median()
	if !b.ok() || b.median() <= 0 || cm <= 0 {
		r.Ratio = "n/a"
		if t.Kind == tMaxAbs {
			r.Result = judgeAbs(cm, t.AbsMax)
		} else if t.Kind == tInfo {
			r.Result = resInfo
		} else {
			r.Result = resNA
		}
		return r
	}
	ratio := cm / b.median()
	if t.Kind == tMinShare || t.Share {
		ratio = b.median() / cm
	}
	r.Ratio = fmt.Sprintf("%.2f", ratio)
	switch t.Kind {
	case tInfo:
		r.Result = resInfo
	case tMaxRatio:
		r.Result = passFail(ratio <= t.Limit && (t.AbsMax == 0 || cm < t.AbsMax))
	case tMinShare:
		r.Result = passFail(ratio >= t.Limit)
	case tMaxAbs:
		r.Result = judgeAbs(cm, t.AbsMax)
	}
	return r
}

func judgeAbs(v, max float64) string { return passFail(v <= max) }

func passFail(ok bool) string {
	if ok {
		return resPass
	}
	return resFail
}

// tableHeader is the column order of the results table.
var tableHeader = []string{"workload", "contender", "median", "CPU-s/GiB (median)", "baseline", "ratio", "target", "result"}

// Report is the whole output of a run.
type Report struct {
	Title   string
	Machine []string // "key: value" lines
	Rows    []Row
	Notes   []string
}

func cellEscape(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Markdown renders the report: machine facts, the table, then notes.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, m := range r.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\n| " + strings.Join(tableHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(tableHeader)) + "\n")
	for _, row := range r.Rows {
		cpu := row.CPU
		if cpu == "" {
			cpu = "-"
		}
		cells := []string{row.Workload, row.Contender, row.Median, cpu, row.Baseline, row.Ratio, row.Target, row.Result}
		for i := range cells {
			cells[i] = cellEscape(cells[i])
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	return b.String()
}
