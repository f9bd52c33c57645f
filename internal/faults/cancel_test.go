package faults

import (
	"syscall"
	"testing"
	"time"
)

// hugeFile is a sparse 1 GiB file: the terminal streams it from disk
// (--cache-size 0), far longer than any case waits.
var hugeFile = fileSpec{name: "huge.bin", size: 1 << 30, sparse: true}

func TestCancelReachesOrigin(t *testing.T) { forTransports(t, testCancel) }

// testCancel interrupts (SIGINT) a client that reads hugeFile slowly
// through two relays. The client stops at once and leaves no file; the
// cancel travels to the end of the chain: within 2s every node's
// descriptors are back to the baseline, and the terminal's log line for
// the request shows it sent a small part of the file.
func testCancel(t *testing.T, m mode, tr string) {
	parallelIf(t, m)
	c := newChain(t, chainSpec{relays: 2, mode: m, term: nodeSpec{noCache: true}, files: []fileSpec{hugeFile}})
	c.proxies[0].add(t, "bandwidth", "downstream", map[string]any{"rate": slowRate})
	dir := t.TempDir()
	r := c.startGet(t, []string{"--transport", tr}, nil, dir, hugeFile.name)
	waitProgress(t, r, dir, 256<<10, 30*time.Second)
	r.signal(t, syscall.SIGINT)
	r.wait(t, 2*time.Second)
	r.failed(t, `interrupted|canceled`)
	checkOutDir(t, dir, nil, false)

	c.settle(t, 2*time.Second)
	l := waitLog(t, c.terminal(), 2*time.Second, func(l logLine) bool {
		return l.str("name") == hugeFile.name && l.str("role") == "terminal" && l.str("op") == "get"
	})
	sent := l.int("bytes")
	t.Logf("the terminal sent %d of %d bytes (%.2f%%): %v", sent, hugeFile.size, 100*float64(sent)/float64(hugeFile.size), l)
	if sent > hugeFile.size/10 {
		t.Errorf("the terminal sent %d of %d bytes after the client was interrupted: the cancel did not reach it", sent, hugeFile.size)
	}
	c.after(t)
}
