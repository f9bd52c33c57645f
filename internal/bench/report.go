package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured, ready to print as markdown.
type Report struct {
	Config   Config
	Machine  Machine
	Notes    []string
	Sections []Section
	Goals    []Goal
	Elapsed  time.Duration
	Load     []float64 // 1-minute load average, sampled during the run
}

// Machine describes where the run happened.
type Machine struct {
	CPUs   int    // runtime.NumCPU
	CPU    string // model name from /proc/cpuinfo
	Kernel string // uname -r
	Memory string // MemTotal from /proc/meminfo
	Go     string // runtime.Version
	Nginx  string // nginx -v, if installed
	Socat  string // socat -V, if installed
}

// Section is one titled table of the report with its explanation.
type Section struct {
	Title  string
	Intro  string // before the table
	Header []string
	Rows   [][]string
	Text   string // after the table
}

// Goal is one target of the issue and whether this run met it.
type Goal struct {
	Name     string
	Target   string
	Measured string
	Met      bool
}

func (r *Report) add(s Section) { r.Sections = append(r.Sections, s) }

func (r *Report) goal(name, target, measured string, met bool) {
	r.Goals = append(r.Goals, Goal{Name: name, Target: target, Measured: measured, Met: met})
}

// Markdown renders the report; level is the heading level of its sections
// (e.g. 3 for "###").
func (r *Report) Markdown(level int) string {
	h := strings.Repeat("#", level)
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "%s Machine\n\n", h)
	fmt.Fprintf(&b, "- CPU: %s, %d cores (nproc)\n- kernel: %s (uname -r)\n- memory: %s\n- %s",
		m.CPU, m.CPUs, m.Kernel, m.Memory, m.Go)
	if m.Nginx != "" {
		fmt.Fprintf(&b, ", %s", m.Nginx)
	}
	if m.Socat != "" {
		fmt.Fprintf(&b, ", %s", m.Socat)
	}
	fmt.Fprintf(&b, "\n- run took %s\n", r.Elapsed.Round(time.Second))
	if len(r.Load) > 0 {
		s := slices.Clone(r.Load)
		slices.Sort(s)
		fmt.Fprintf(&b, "- load average (1 min) during the run: median %.1f, min %.1f, max %.1f (%d samples, every %s)\n",
			median(s), s[0], s[len(s)-1], len(s), loadEvery)
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s\n\n", n)
	}
	if len(r.Goals) > 0 {
		fmt.Fprintf(&b, "%s Goals\n\n", h)
		rows := make([][]string, len(r.Goals))
		for i, g := range r.Goals {
			met := "missed"
			if g.Met {
				met = "met"
			}
			rows[i] = []string{g.Name, g.Target, g.Measured, met}
		}
		writeTable(&b, []string{"goal", "target", "measured", ""}, rows)
		b.WriteString("\n")
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "%s %s\n\n", h, s.Title)
		if s.Intro != "" {
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Intro))
		}
		if len(s.Header) > 0 {
			writeTable(&b, s.Header, s.Rows)
			b.WriteString("\n")
		}
		if s.Text != "" {
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Text))
		}
	}
	return b.String()
}

func writeTable(b *strings.Builder, header []string, rows [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	b.WriteString("|" + strings.Join(seps, "|") + "|\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	m.Memory = procField("/proc/meminfo", "MemTotal")
	var kb int64
	if _, err := fmt.Sscanf(m.Memory, "%d kB", &kb); err == nil {
		m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if p, err := lookNginx(); err == nil {
		if out, err := exec.Command(p, "-v").CombinedOutput(); err == nil {
			m.Nginx = strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
		}
	}
	if out, err := exec.Command("socat", "-V").CombinedOutput(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "socat version") {
				m.Socat = "socat " + strings.Fields(l)[2]
			}
		}
	}
	return m
}

// loadAvg returns the 1-minute load average from /proc/loadavg.
func loadAvg() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	var v float64
	if _, err := fmt.Sscanf(string(b), "%f", &v); err != nil {
		return 0, false
	}
	return v, true
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// fmtMBs formats a throughput in MB/s (10^6 bytes per second).
func fmtMBs(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtRatio(v, base float64) string {
	if v == 0 || base == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v/base)
}

// fmtRatio3 is fmtRatio with three decimals, for goals: a ratio just
// under its target must not print as the target.
func fmtRatio3(v, base float64) string {
	if v == 0 || base == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", v/base)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fmtSize(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
