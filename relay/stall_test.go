package relay

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallBound is how long after its last progress a stallWatch of idle may
// take to cut, on a loaded machine: idle plus a check period, plus slack.
func stallBound(idle time.Duration) time.Duration { return idle + idle/stallChecks + 2*time.Second }

// TestStallWatch drives a stallWatch with a counter the test moves: steady
// or slow progress (minIdleChunk per half idle) is never cut, a stall is cut
// once, after idle and not much later, an unreadable counter is cut at the
// first check, and a stopped watch never cuts.
func TestStallWatch(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		step      uint64        // progress per tick
		every     time.Duration // tick
		moveFor   time.Duration // ticks, then nothing
		err       bool          // the counter cannot be read
		stopAt    time.Duration // stop the watch then (0: after the cut)
		wantCut   bool
		minAfter  time.Duration // the cut comes no sooner after the last move
		fromStart bool          // minAfter counts from the start instead
	}{
		{name: "steady", step: 64 << 10, every: 10 * time.Millisecond, moveFor: 5 * idle, stopAt: 5 * idle},
		{name: "slow", step: minIdleChunk, every: idle / 2, moveFor: 5 * idle, stopAt: 5 * idle},
		{name: "stall-after-progress", step: 64 << 10, every: 10 * time.Millisecond, moveFor: 2 * idle, wantCut: true, minAfter: idle - idle/stallChecks},
		{name: "stall-at-once", wantCut: true, minAfter: idle},
		{name: "too-slow", step: minIdleChunk / 4, every: idle / 2, moveFor: 4 * idle, wantCut: true, minAfter: idle, fromStart: true},
		{name: "unreadable", err: true, wantCut: true},
		{name: "stopped", stopAt: idle / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var moved atomic.Uint64
			cuts := make(chan time.Time, 2)
			progress := func() (uint64, error) {
				if tc.err {
					return 0, errors.New("gone")
				}
				return moved.Load(), nil
			}
			start := time.Now()
			w := watchStall(progress, 0, func() { cuts <- time.Now() }, idle)
			lastMove := start
			if tc.step > 0 {
				tick := time.NewTicker(tc.every)
				for time.Since(start) < tc.moveFor {
					<-tick.C
					moved.Add(tc.step)
					lastMove = time.Now()
				}
				tick.Stop()
			}
			if tc.stopAt > 0 {
				time.Sleep(time.Until(start.Add(tc.stopAt)))
				cut := w.stop()
				if cut != tc.wantCut {
					t.Fatalf("stop reports cut %v, want %v", cut, tc.wantCut)
				}
				time.Sleep(idle + idle/stallChecks) // no cut after stop
				if len(cuts) != 0 {
					t.Fatalf("cut %v after the watch was stopped", (<-cuts).Sub(start))
				}
				return
			}
			select {
			case at := <-cuts:
				after := at.Sub(lastMove)
				if tc.fromStart {
					after = at.Sub(start)
				}
				if after < tc.minAfter || after > stallBound(idle) {
					t.Errorf("cut %v after the last progress, want %v to %v", after, tc.minAfter, stallBound(idle))
				}
			case <-time.After(tc.moveFor + stallBound(idle)):
				t.Fatal("no cut")
			}
			if !w.stop() {
				t.Error("stop does not report the cut")
			}
			time.Sleep(idle / stallChecks * 2)
			if len(cuts) != 0 {
				t.Error("cut twice")
			}
		})
	}
}

// TestStallWatchStopWaits stops a watch while its check is reading the
// counter: stop waits for the check, and reports the cut the check made,
// so a caller that saw stop return never sees a cut after it.
func TestStallWatchStopWaits(t *testing.T) {
	t.Parallel()
	const idle = 40 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var cuts atomic.Int32
	w := watchStall(func() (uint64, error) {
		once.Do(func() { close(entered) })
		<-release
		return 0, errors.New("gone") // cut at once
	}, 0, func() { cuts.Add(1) }, idle)
	waitFor(t, entered, 5*time.Second, "the first check")
	stopped := make(chan bool, 1)
	go func() { stopped <- w.stop() }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("stop returned while a check was running")
	default:
	}
	close(release)
	select {
	case cut := <-stopped:
		if !cut || cuts.Load() != 1 {
			t.Fatalf("stop reports cut %v, cuts %d; want true and 1", cut, cuts.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return after the check ended")
	}
}
