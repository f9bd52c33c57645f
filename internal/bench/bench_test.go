package bench

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the Go TCP baseline's processes,
// as cmd/bench does.
func TestMain(m *testing.M) {
	if RoleRequested() {
		os.Exit(RunRole())
	}
	os.Exit(m.Run())
}

// logWriter sends progress lines to t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestShort runs every suite with the -short configuration: it proves the
// bench starts, measures and stops everything, not how fast anything is.
func TestShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/node and starts processes")
	}
	cfg := ShortConfig()
	cfg.Self = []string{os.Args[0]}
	cfg.Log = logWriter{t}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.env.socat == "" {
		t.Log("socat not installed: socat rows skipped")
	}
	md := rep.Markdown(3)
	if r.env.nginx == "" {
		t.Log("nginx not installed: nginx rows skipped")
	} else if !strings.Contains(md, "Go TCP relays p50") {
		t.Errorf("report lacks the Go TCP relays of the extra-relay table:\n%s", md)
	}
	for _, want := range []string{"### Machine", "### Goals", "### Bulk", "Go TCP chain (baseline)",
		"relaychain raw, crc64, hit", "### TLS cost", "relaychain mux, mutual TLS", "### Mux tuning", "### Small GETs", "### Extra-relay cost",
		"concurrent streams through one relay", "small GETs through one relay"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Run stops every process it started.
	for _, p := range r.env.ps.all {
		if err := syscall.Kill(p.pid(), 0); err == nil && !p.exited() {
			t.Errorf("%s (pid %d) still running", p.name, p.pid())
		}
	}
	if _, err := os.Stat(r.env.dir); !os.IsNotExist(err) {
		t.Errorf("work directory %s not removed", r.env.dir)
	}
	t.Log("\n" + md)
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"suite", func(c *Config) { c.Suites = []string{"nope"} }},
		{"transport", func(c *Config) { c.Transports = []string{"udp"} }},
		{"verify", func(c *Config) { c.Verifies = []string{"md5"} }},
		{"relays", func(c *Config) { c.Relays = []int{-1} }},
		{"tls relays", func(c *Config) { c.TLSRelays = 31 }},
		{"window", func(c *Config) { c.Windows = []TuneWindow{{Start: 1024}} }},
		{"window max", func(c *Config) { c.Windows = []TuneWindow{{Start: 1 << 20, Max: 2 << 30}} }},
		{"self", func(c *Config) { c.Self = nil }},
	} {
		cfg := ShortConfig()
		cfg.Self = []string{"x"}
		tc.edit(&cfg)
		if _, err := NewRunner(cfg); err == nil {
			t.Errorf("%s: got no error", tc.name)
		}
	}
}

func TestStats(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd: got %v, want 2", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even: got %v, want 2.5", got)
	}
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if got := percentile(ds, 50); got != 50 {
		t.Errorf("p50: got %v, want 50", got)
	}
	if got := percentile(ds, 99); got != 99 {
		t.Errorf("p99: got %v, want 99", got)
	}
}
