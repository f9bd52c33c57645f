package relay

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunnersReuse runs tasks one after another: they share at most two
// pooled goroutines (a task's goroutine returns to the pool just after the
// task ends, when the next may already have been started), and close stops
// them.
func TestRunnersReuse(t *testing.T) {
	var r runners
	for range 50 {
		done := make(chan struct{})
		r.start(func() { close(done) })
		waitFor(t, done, 5*time.Second, "a task")
	}
	if n := r.running(); n < 1 || n > 2 {
		t.Fatalf("50 tasks one after another ran on %d pooled goroutines, want 1 or 2", n)
	}
	if err := r.close(time.Second); err != nil {
		t.Fatal(err)
	}
	if n := r.running(); n != 0 {
		t.Fatalf("%d pooled goroutines after close", n)
	}
}

// TestRunnersNeverWait fills the pool with tasks that block: one more task
// still runs at once, on a goroutine of its own, and so does a task after
// close. close waits for the busy tasks only up to its timeout.
func TestRunnersNeverWait(t *testing.T) {
	var r runners
	release := make(chan struct{})
	var busy sync.WaitGroup
	for range maxRunners {
		busy.Add(1)
		r.start(func() { busy.Done(); <-release })
	}
	busy.Wait()
	if n := r.running(); n != maxRunners {
		t.Fatalf("%d pooled goroutines for %d blocked tasks, want %d", n, maxRunners, maxRunners)
	}
	extra := make(chan struct{})
	r.start(func() { close(extra) })
	waitFor(t, extra, 5*time.Second, "a task beyond a full pool")

	err := r.close(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stop pooled goroutines") {
		t.Fatalf("close with %d tasks blocked: got %v, want a timeout", maxRunners, err)
	}
	after := make(chan struct{})
	r.start(func() { close(after) })
	waitFor(t, after, 5*time.Second, "a task after close")
	close(release)
	// The busy runners exit once their tasks end (goleak checks).
}

// TestRunnersServeRequests fetches files from a terminal over the mux and
// through a relay: their tasks ran on both nodes' pools, which Close stops.
func TestRunnersServeRequests(t *testing.T) {
	root, files := sharedFiles(t)
	nodes, rt := chain(t, 1, Config{Root: root})
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux, Verify: VerifyCRC32C})
	// The medium file fills windows, so the relay's runners move it.
	for _, size := range []int64{mediumSize, 64<<10 + 1, 1} {
		checkGet(t, testCtx(t, 30*time.Second), c, files[sizeName(size)])
	}
	for i, n := range nodes {
		if n.run.running() == 0 {
			t.Errorf("node %d (the relay, then the terminal): no pooled goroutine after 3 GETs", i)
		}
	}
	c.Close()
	for _, n := range nodes {
		n.Close()
		if k := n.run.running(); k != 0 {
			t.Errorf("%d pooled goroutines after Close", k)
		}
	}
}

// TestRepanic checks that a task's panic, which the pool recovers, is
// raised again with the stack where it happened.
func TestRepanic(t *testing.T) {
	defer func() {
		p := recover()
		s, _ := p.(string)
		if !strings.Contains(s, "boom") || !strings.Contains(s, "TestRepanic") {
			t.Fatalf("repanic raised %q, want the value and the stack", s)
		}
	}()
	repanic("boom")
}
