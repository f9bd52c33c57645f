package faults

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// The cases of this file break a chain of two relays (relay0, relay1) and a
// terminal while a GET of bigFile is under way. proxies[0] is the client's
// hop, proxies[1] is between the relays, proxies[2] between relay1 and the
// terminal. Each runs in procMode from its Test function (in parallel, one
// subtest per transport) and in inprocMode from TestInProcess.

var bigFile = fileSpec{name: "big.bin", size: 8 << 20}

// transports are the client's --transport values the cases run with.
var transports = []string{"mux", "raw"}

// failFast bounds how long after a fault the client may take to fail.
const failFast = 5 * time.Second

// slowRate is the bandwidth (KB/s) that keeps a transfer of bigFile under
// way for seconds: the case breaks it in the middle.
const slowRate = 1000

// breakChain starts the chain of the file's cases; procAt lists the nodes
// that stay processes in inprocMode.
func breakChain(t *testing.T, m mode, procAt ...int) *chain {
	t.Helper()
	return newChain(t, chainSpec{relays: 2, mode: m, procAt: procAt, files: []fileSpec{bigFile}})
}

// midTransfer slows the terminal's hop, starts a GET of bigFile and waits
// until it is under way.
func midTransfer(t *testing.T, c *chain, transport string, global, getFlags []string) (*clientRun, string) {
	t.Helper()
	c.proxies[2].add(t, "bandwidth", "downstream", map[string]any{"rate": slowRate})
	dir := t.TempDir()
	r := c.startGet(t, append([]string{"--transport", transport}, global...), getFlags, dir, bigFile.name)
	waitProgress(t, r, dir, 256<<10, 30*time.Second)
	return r, dir
}

// parallelIf runs t in parallel in procMode.
func parallelIf(t *testing.T, m mode) {
	if m == procMode {
		t.Parallel()
	}
}

// forTransports runs f once per transport, as parallel subtests.
func forTransports(t *testing.T, f func(*testing.T, mode, string)) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { f(t, procMode, tr) })
	}
}

func TestResetPeer(t *testing.T) {
	forTransports(t, func(t *testing.T, m mode, tr string) {
		parallelIf(t, m)
		for _, hop := range []int{1, 0} {
			t.Run(fmt.Sprintf("hop%d", hop), func(t *testing.T) { testResetPeer(t, m, tr, hop) })
		}
		t.Run("resume", func(t *testing.T) { testResetResume(t, m, tr) })
	})
}

// testResetPeer resets the connection through proxies[hop] mid-transfer:
// the client fails at once with an error that names a hop or says the
// transfer was reset or truncated, and leaves no file.
func testResetPeer(t *testing.T, m mode, tr string, hop int) {
	parallelIf(t, m)
	c := breakChain(t, m)
	r, dir := midTransfer(t, c, tr, nil, nil)
	start := time.Now()
	c.proxies[hop].add(t, "reset_peer", "downstream", map[string]any{"timeout": 0})
	r.wait(t, failFast)
	t.Logf("failed %s after the reset: %s", time.Since(start).Round(time.Millisecond), r.stderr.String())
	r.failed(t, `hop \d|reset|truncated`)
	checkOutDir(t, dir, nil, false)
	c.after(t)
}

// testResetResume: a reset with --resume keeps NAME.partial, and a second
// --resume run completes and verifies the file from it.
func testResetResume(t *testing.T, m mode, tr string) {
	parallelIf(t, m)
	c := breakChain(t, m)
	r, dir := midTransfer(t, c, tr, nil, []string{"--resume"})
	c.proxies[1].add(t, "reset_peer", "downstream", map[string]any{"timeout": 0})
	r.wait(t, failFast)
	r.failed(t, `hop \d|reset|truncated`)
	checkOutDir(t, dir, nil, true)
	clearAll(t, c.proxies)
	r = startClient(t, nil, c.args([]string{"--transport", tr}, "get", "-o", dir, "--resume", bigFile.name)...).wait(t, clientTimeout)
	r.ok(t)
	checkOutDir(t, dir, c.want(bigFile.name), false)
	c.after(t)
}

func TestLimitData(t *testing.T) {
	forTransports(t, func(t *testing.T, m mode, tr string) {
		parallelIf(t, m)
		for _, cut := range []string{"mid", "end"} {
			t.Run(cut, func(t *testing.T) { testLimitData(t, m, tr, cut) })
		}
	})
}

// testLimitData cuts the terminal's hop after a number of bytes: in the
// middle of the data, or at its end ("end": on raw links, inside the
// trailer; on the mux, whose framing adds bytes, in the last bytes of
// data). The client fails and leaves no file.
func testLimitData(t *testing.T, m mode, tr, cut string) {
	parallelIf(t, m)
	c := breakChain(t, m)
	limit := bigFile.size / 2
	if cut == "end" {
		// The bytes down the terminal's raw link: RESPONSE (a 5-byte
		// frame header, 23 bytes of fields, the 32-byte digest of a
		// cached file, the hop string), the data, then a 45-byte TRAILER.
		// 20 bytes into the trailer; on the mux, near the end of the data.
		resp := int64(5 + 23 + 32 + len(c.route[2]))
		limit = resp + bigFile.size + 20
	}
	c.proxies[2].add(t, "limit_data", "downstream", map[string]any{"bytes": limit})
	dir := t.TempDir()
	r := c.get(t, []string{"--transport", tr}, dir, bigFile.name)
	t.Logf("cut after %d bytes: exit %d after %s: %s", limit, r.code, r.dur.Round(time.Millisecond), r.stderr.String())
	r.failed(t, `hop \d|reset|truncated|closed|EOF`)
	checkOutDir(t, dir, nil, false)
	c.after(t)
}

func TestMiddleHopKilled(t *testing.T) { forTransports(t, testMiddleKilled) }

// testMiddleKilled kills relay1 (a process) with SIGKILL mid-transfer: the
// client fails within seconds. relay1 is then restarted on its address and
// the chain must serve again (relay0 redials).
func testMiddleKilled(t *testing.T, m mode, tr string) {
	parallelIf(t, m)
	c := breakChain(t, m, 1)
	r, dir := midTransfer(t, c, tr, nil, nil)
	start := time.Now()
	c.nodes[1].kill(t)
	r.wait(t, failFast)
	t.Logf("failed %s after SIGKILL: %s", time.Since(start).Round(time.Millisecond), r.stderr.String())
	r.failed(t, `hop \d|reset|truncated|closed|EOF`)
	checkOutDir(t, dir, nil, false)
	c.nodes[1].restart(t)
	c.after(t)
}

func TestMiddleHopStopped(t *testing.T) { forTransports(t, testMiddleStopped) }

// testMiddleStopped stops relay1 with SIGSTOP mid-transfer; the client,
// with --timeout 3s, fails within that idle timeout (plus the moment the
// bytes already past relay1 take to drain). After SIGCONT nothing is left
// open: every node's descriptors come back to the baseline.
func testMiddleStopped(t *testing.T, m mode, tr string) {
	parallelIf(t, m)
	const idle = 3 * time.Second
	c := breakChain(t, m, 1)
	r, dir := midTransfer(t, c, tr, []string{"--timeout", idle.String()}, nil)
	start := time.Now()
	c.nodes[1].signal(t, syscall.SIGSTOP)
	cont := func() { c.nodes[1].cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(cont)
	r.wait(t, idle+failFast)
	took := time.Since(start)
	t.Logf("failed %s after SIGSTOP: %s", took.Round(time.Millisecond), r.stderr.String())
	r.failed(t, `timed out`)
	if took > idle+2*time.Second {
		t.Errorf("the client failed %s after the middle hop stopped; want within its --timeout %s (+2s to drain)", took, idle)
	}
	checkOutDir(t, dir, nil, false)
	cont()
	c.after(t)
}
