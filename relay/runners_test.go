package relay

import (
	"errors"
	"os"
	"os/exec"
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
	p := r.pool
	if err := r.close(time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Running(); n != 0 {
		t.Fatalf("%d pooled goroutines after close", n)
	}
}

// TestRunnersNeverWait fills the pool with tasks that block: one more task
// still runs at once, on a goroutine of its own, and so does a task after
// close. close waits for the busy tasks only up to its timeout. A start
// that waits fails the test rather than hanging it (returns).
func TestRunnersNeverWait(t *testing.T) {
	var r runners
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // also when the test fails: the blocked tasks end
	var busy sync.WaitGroup
	for range maxRunners {
		busy.Add(1)
		returns(t, "start of a task on a pool with room", func() {
			r.start(func() { busy.Done(); <-release })
		})
	}
	returns(t, "the blocking tasks", busy.Wait)
	if n := r.running(); n != maxRunners {
		t.Fatalf("%d pooled goroutines for %d blocked tasks, want %d", n, maxRunners, maxRunners)
	}
	extra := make(chan struct{})
	returns(t, "start with a full pool", func() { r.start(func() { close(extra) }) })
	waitFor(t, extra, 5*time.Second, "a task beyond a full pool")

	err := r.close(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stop pooled goroutines") {
		t.Fatalf("close with %d tasks blocked: got %v, want a timeout", maxRunners, err)
	}
	after := make(chan struct{})
	returns(t, "start after close", func() { r.start(func() { close(after) }) })
	waitFor(t, after, 5*time.Second, "a task after close")
	unblock()
	// The busy runners exit once their tasks end (goleak checks).
}

// returns fails t unless f returns within 5 s. f then goes on in the
// background, and the goroutine leak check reports it.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	waitFor(t, done, 5*time.Second, what)
}

// TestRunnersServeRequests fetches files from a terminal over the mux and
// through a relay: their tasks ran on both nodes' pools, which Close stops.
func TestRunnersServeRequests(t *testing.T) {
	root, files := sharedFiles(t)
	nodes, rt := chain(t, 1, Config{Root: root})
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux, Verify: VerifyCRC64})
	// The medium file fills windows, so the relay's runners move it; it
	// goes last, so that its runners are not yet idle long enough to exit.
	for _, size := range []int64{1, 64<<10 + 1, mediumSize} {
		checkGet(t, testCtx(t, 30*time.Second), c, files[sizeName(size)])
	}
	for i, n := range nodes {
		if n.run.running() == 0 {
			t.Errorf("node %d (the relay, then the terminal): no pooled goroutine after 3 GETs", i)
		}
	}
	c.Close()
	for _, n := range nodes {
		p := n.run.pool
		n.Close()
		if k := p.Running(); k != 0 {
			t.Errorf("%d pooled goroutines after Close", k)
		}
	}
}

// panicChildEnv makes the test binary run a panicking pooled task
// (TestRunnerPanicCrashes).
const panicChildEnv = "RELAY_TEST_PANIC_CHILD"

// TestRunnerPanicCrashes runs a task that panics on a pooled goroutine in
// a child process: the process crashes, as it would with a goroutine of
// its own, and the crash shows the panic's value and the task's frame
// (the pool recovers the panic first, and repanic raises it again).
func TestRunnerPanicCrashes(t *testing.T) {
	if os.Getenv(panicChildEnv) == "1" {
		var r runners
		r.start(panickingTask)
		time.Sleep(10 * time.Second) // the crash ends the process first
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunnerPanicCrashes$")
	cmd.Env = append(os.Environ(), panicChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("the child with a panicking task: %v, want a crash; output:\n%s", err, out)
	}
	for _, want := range []string{"panic: boom from a pooled task", "relay.panickingTask"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the crash does not show %q; output:\n%s", want, out)
		}
	}
}

func panickingTask() { panic("boom from a pooled task") }

// TestCloseConcurrent closes a node twice at once while a pooled task is
// busy: neither Close returns before the first has stopped the pool, which
// waits for the task.
func TestCloseConcurrent(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	started := make(chan struct{})
	n.run.start(func() { close(started); <-release })
	waitFor(t, started, 5*time.Second, "the busy task")
	n.run.mu.RLock()
	p := n.run.pool
	n.run.mu.RUnlock()

	first, second := make(chan struct{}), make(chan struct{})
	go func() { n.Close(); close(first) }()
	// The first Close has begun once it has set closed, under mu.
	for i := 0; !closingBegun(n); i++ {
		if i == 5000 {
			t.Fatal("the first Close did not begin within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	go func() { n.Close(); close(second) }()
	select {
	case <-first:
		t.Fatal("Close returned while a pooled task was busy")
	case <-second:
		t.Fatal("a concurrent Close returned before the first had stopped the pool")
	case <-time.After(200 * time.Millisecond):
	}
	unblock()
	waitFor(t, first, 10*time.Second, "the first Close")
	waitFor(t, second, 5*time.Second, "the concurrent Close")
	if k := p.Running(); k != 0 {
		t.Fatalf("%d pooled goroutines after Close", k)
	}
}

// closingBegun reports whether n's Close has begun.
func closingBegun(n *Node) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
