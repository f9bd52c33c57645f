package multihost

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Ports. Every namespace is new, so fixed ports are free.
const (
	originPort = "7000"
	relay2Port = "7000"
)

// chain is a topology with an origin serving dir and relay2 allowed to
// dial only the origin.
type chain struct {
	*topology
	root   string // the origin's files
	relay2 string // relay2's address on the relay1 link (the next hop relay1 dials)
	origin string // the origin's address on the relay2 link
}

// newChain starts the origin (serving files) and relay2. Relay1 is started
// by each test, because its allow list is what the tests vary.
func newChain(t *testing.T, files map[string][]byte) *chain {
	t.Helper()
	c := &chain{topology: newTopology(t), root: t.TempDir()}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.origin = c.originToR2.addr + ":" + originPort
	c.relay2 = c.r2ToR1.addr + ":" + relay2Port
	startNode(t, c.topology.origin, "origin", "--listen", c.origin, "--root", c.root, "--cache-size", "64MiB")
	startNode(t, c.topology.relay2, "relay2", "--listen", "0.0.0.0:"+relay2Port, "--allow", c.originToR2.addr+"/32")
	return c
}

// startRelay1 starts a relay1 on port with the given --allow entries (none
// means the default list) and returns the address the client dials.
func (c *chain) startRelay1(t *testing.T, name, port string, allow ...string) string {
	t.Helper()
	args := []string{"--listen", "0.0.0.0:" + port}
	for _, a := range allow {
		args = append(args, "--allow", a)
	}
	startNode(t, c.topology.relay1, name, args...)
	return c.r1ToClient.addr + ":" + port
}

// get fetches name from the client namespace through relay1 at first and
// returns the client's result and the directory it saved into.
func (c *chain) get(t *testing.T, first, transport, name string) (result, string) {
	t.Helper()
	dir := t.TempDir()
	r := runClient(t, c.client, "--hop", first, "--hop", c.relay2, "--hop", c.origin,
		"--timeout", "20s", "--transport", transport, "get", "-o", dir, name)
	return r, dir
}

// mustGet is get that fails the test unless the client succeeds and saved
// exactly want; it returns the seconds the client reported.
func (c *chain) mustGet(t *testing.T, first, transport, name string, want []byte) float64 {
	t.Helper()
	r, dir := c.get(t, first, transport, name)
	if r.code != 0 {
		t.Fatalf("get %s over %s via %s: exit status %d, want 0\nstderr: %s", name, transport, first, r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s over %s: got %d bytes, want %d bytes; contents differ", name, transport, len(got), len(want))
	}
	return clientSeconds(t, r.stdout, name, len(want))
}

// clientSeconds parses the client's "NAME\tN bytes\tS.SSSs\tRATE/s" line.
func clientSeconds(t *testing.T, stdout, name string, size int) float64 {
	t.Helper()
	f := strings.Split(strings.TrimSpace(stdout), "\t")
	if len(f) != 4 || f[0] != name || f[1] != fmt.Sprintf("%d bytes", size) || !strings.HasSuffix(f[2], "s") {
		t.Fatalf("client output %q, want \"%s\\t%d bytes\\tSECONDSs\\tRATE/s\"", stdout, name, size)
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "s"), 64)
	if err != nil || secs <= 0 {
		t.Fatalf("client output %q: bad seconds %q", stdout, f[2])
	}
	return secs
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'m', 'h', seed}).Read(b)
	return b
}

// TestFetchAcrossHosts fetches a multi-MiB file from the client namespace
// through two relay namespaces from the origin namespace, over every
// transport, and checks the bytes.
func TestFetchAcrossHosts(t *testing.T) {
	big := randomBytes(6<<20+12345, 1) // above the raw threshold: auto goes raw
	small := randomBytes(100<<10, 2)
	c := newChain(t, map[string][]byte{"big.bin": big, "small.bin": small})
	first := c.startRelay1(t, "relay1", "7000", c.r2ToR1.addr+"/32")
	for _, transport := range []string{"auto", "mux", "raw"} {
		t.Run(transport, func(t *testing.T) {
			secs := c.mustGet(t, first, transport, "big.bin", big)
			t.Logf("%s: %d bytes across 4 hosts in %.3fs", transport, len(big), secs)
			c.mustGet(t, first, transport, "small.bin", small)
		})
	}
}

// TestAllowListNonLoopback checks relay1's next-hop allow list against
// relay2's real (non-loopback) address.
func TestAllowListNonLoopback(t *testing.T) {
	data := randomBytes(1<<20, 3)
	c := newChain(t, map[string][]byte{"f.bin": data})
	tests := []struct {
		name    string
		port    string
		allow   []string // relay1's --allow; none means the default
		allowed bool
	}{
		{"relay2 /32", "7001", []string{c.r2ToR1.addr + "/32"}, true},
		{"relay2 host:port", "7002", []string{c.relay2}, true},
		{"relay2 in a wider CIDR with others", "7003", []string{"192.0.2.1", "10.231.2.0/30"}, true},
		{"another address only", "7004", []string{"10.231.9.9/32"}, false},
		{"relay2 on another port only", "7005", []string{c.r2ToR1.addr + ":7999"}, false},
		{"the other end of the link only", "7006", []string{c.r1ToR2.addr + "/32"}, false},
		{"default (loopback only)", "7007", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := c.startRelay1(t, "relay1-"+tt.port, tt.port, tt.allow...)
			for _, transport := range []string{"mux", "raw"} {
				if tt.allowed {
					c.mustGet(t, first, transport, "f.bin", data)
					continue
				}
				r, dir := c.get(t, first, transport, "f.bin")
				if r.code == 0 {
					t.Fatalf("%s: get succeeded, want relay1 to refuse dialing %s\nstdout: %s", transport, c.relay2, r.stdout)
				}
				for _, want := range []string{"not allowed", "hop 1 (" + c.relay2 + ")"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("%s: client stderr %q does not contain %q", transport, r.stderr, want)
					}
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("%s: a refused get left %d files in the output directory", transport, len(entries))
				}
				t.Logf("%s: %s", transport, strings.TrimSpace(r.stderr))
			}
		})
	}
}

// tbf settings. The queue (latency) is kept short so that the yamux
// stream window (1 MiB per hop) is never what limits the mux transport:
// at 80 Mbit/s, 50 ms of queue is 500 KB.
const (
	tbfBurst   = "64kb"
	tbfLatency = "50ms"
)

// setRate puts a tbf qdisc with rate mbit Mbit/s on every egress towards
// the client (replacing any earlier one).
func (tp *topology) setRate(t *testing.T, mbit int) {
	t.Helper()
	for _, e := range tp.towardsClient() {
		must(t, "ip", "netns", "exec", e.h.ns, "tc", "qdisc", "replace", "dev", e.dev, "root",
			"tbf", "rate", fmt.Sprintf("%dmbit", mbit), "burst", tbfBurst, "latency", tbfLatency)
	}
}

// TestThroughputFollowsTBF limits every link towards the client with tc
// tbf and checks that a fetch runs at the limit, then that it follows the
// limit when the rate is doubled, over the raw and the mux transport.
func TestThroughputFollowsTBF(t *testing.T) {
	requireNetns(t)
	if _, err := command("tc", "-V"); err != nil {
		t.Skipf("tc not available: %v", err)
	}
	const size = 20 << 20
	data := randomBytes(size, 4)
	c := newChain(t, map[string][]byte{"big.bin": data})
	first := c.startRelay1(t, "relay1", "7000", c.r2ToR1.addr+"/32")
	if _, err := command("ip", "netns", "exec", c.topology.origin.ns, "tc", "qdisc", "replace", "dev", c.originToR2.dev,
		"root", "tbf", "rate", "1gbit", "burst", tbfBurst, "latency", tbfLatency); err != nil {
		t.Skipf("tc tbf not available: %v", err)
	}

	const low, high = 40, 80 // Mbit/s
	for _, transport := range []string{"raw", "mux"} {
		t.Run(transport, func(t *testing.T) {
			// tbf is a ceiling: no fetch may beat it. Reaching it needs CPU,
			// which other test packages share under go test ./..., so the
			// floor is checked on the best of up to three fetches.
			rate := map[int]float64{}
			for _, limit := range []int{low, high} {
				c.setRate(t, limit)
				lo, hi := 0.5*float64(limit), 1.1*float64(limit)
				for attempt := 1; attempt <= 3; attempt++ {
					secs := c.mustGet(t, first, transport, "big.bin", data)
					r := float64(size) * 8 / secs / 1e6
					t.Logf("%s: tbf %d mbit, try %d: %d bytes in %.3fs = %.1f Mbit/s (%.0f%% of the limit)",
						transport, limit, attempt, size, secs, r, 100*r/float64(limit))
					if r > hi {
						t.Errorf("%s at tbf %d mbit: measured %.1f Mbit/s, above the limit (max %.0f)", transport, limit, r, hi)
					}
					rate[limit] = max(rate[limit], r)
					if rate[limit] >= lo {
						break
					}
				}
				if rate[limit] < lo {
					t.Errorf("%s at tbf %d mbit: best of 3 fetches %.1f Mbit/s, want at least %.0f", transport, limit, rate[limit], lo)
				}
			}
			ratio := rate[high] / rate[low]
			t.Logf("%s: %d -> %d mbit: throughput x%.2f", transport, low, high, ratio)
			if ratio < 1.4 || ratio > 2.4 {
				t.Errorf("%s: doubling the rate limit changed throughput by x%.2f, want about x2 (1.4..2.4)", transport, ratio)
			}
		})
	}
}
