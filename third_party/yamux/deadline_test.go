package yamux

import (
	"testing"
	"time"
)

// TestRelaychain_Deadline: a deadline keeps the times it is given (the zero
// time as none, the far past and far future on their side of now, and a
// near one to the nanosecond), and CompareAndSwap sets it only over the
// value read.
func TestRelaychain_Deadline(t *testing.T) {
	var d deadline
	if !d.Load().IsZero() {
		t.Fatalf("new deadline: %v, want none", d.Load())
	}
	now := time.Now()
	for _, tm := range []time.Time{now, now.Add(time.Second), now.Add(-time.Hour)} {
		d.Store(tm)
		if got := d.Load(); !got.Equal(tm) {
			t.Errorf("Store(%v): Load %v", tm, got)
		}
	}
	d.Store(deadlineEpoch) // the one time kept 1 ns late: 0 is none
	if got := d.Load(); got.IsZero() || got.Sub(deadlineEpoch) != 1 {
		t.Errorf("Store(the epoch): Load %v, want it 1 ns late", got)
	}
	d.Store(time.Unix(1, 0)) // how a wake-up in the past is often written
	if !d.Load().Before(now) || d.Load().IsZero() {
		t.Errorf("far past: Load %v, want before now", d.Load())
	}
	d.Store(now.AddDate(300, 0, 0))
	if !d.Load().After(now) {
		t.Errorf("far future: Load %v, want after now", d.Load())
	}
	d.Store(time.Time{})
	if !d.Load().IsZero() {
		t.Errorf("Store(zero): Load %v, want none", d.Load())
	}

	d.Store(now)
	old := d.raw()
	d.Store(now.Add(time.Minute)) // set meanwhile
	if d.CompareAndSwap(old, now.Add(time.Second)) {
		t.Error("CompareAndSwap over a deadline set meanwhile: swapped")
	}
	if !d.CompareAndSwap(d.raw(), now.Add(time.Second)) || !d.Load().Equal(now.Add(time.Second)) {
		t.Errorf("CompareAndSwap: Load %v, want %v", d.Load(), now.Add(time.Second))
	}
}
