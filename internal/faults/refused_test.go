package faults

import (
	"regexp"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

// refusedWithin is how fast a refused hop must be reported.
const refusedWithin = time.Second

// TestRefused is not parallel: it times the client, which other cases
// running at once on a small machine would slow.
func TestRefused(t *testing.T) { testRefused(t, procMode) }

// testRefused sends GETs along routes one hop of which refuses
// connections: a dead port after relay0, the first hop itself, and a
// middle hop whose proxy is switched off. Each fails in under a second with
// an error naming the refusing HOST:PORT and its hop index.
func testRefused(t *testing.T, m mode) {
	c := newChain(t, chainSpec{relays: 1, mode: m})
	dead := deadAddr(t)
	for _, tc := range []struct {
		name  string
		route []string
		hop   string // the refusing hop's "hop N (ADDR)"
	}{
		{"next", []string{c.route[0], dead}, "hop 1 (" + dead + ")"},
		{"first", []string{dead, c.route[1]}, "hop 0 (" + dead + ")"},
		{"proxy-off", c.route, "hop 1 (" + c.route[1] + ")"},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr, func(t *testing.T) {
				if tc.name == "proxy-off" {
					c.proxies[1].setEnabled(t, false)
					defer c.proxies[1].setEnabled(t, true)
				}
				var args []string
				for _, h := range tc.route {
					args = append(args, "--hop", h)
				}
				dir := t.TempDir()
				r := runClient(t, append(args, "--transport", tr, "get", "-o", dir, checkFile.name)...)
				t.Logf("%s in %s", r.stderr.String(), r.dur.Round(time.Millisecond))
				r.failed(t, regexp.QuoteMeta(tc.hop)+`: refused: .*connection refused`)
				if r.dur >= refusedWithin {
					t.Errorf("the client took %s to report a refused hop; want under %s", r.dur, refusedWithin)
				}
				checkOutDir(t, dir, nil, false)
			})
		}
	}
	c.after(t)
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}
