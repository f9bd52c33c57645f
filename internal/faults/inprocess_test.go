package faults

import "testing"

// TestInProcess runs a subset of the cases with the relays and the
// terminal in the test process (the relay to be killed or stopped is still
// a process), where their goroutines can be counted: after each case the
// test process's goroutines and descriptors must come back to the
// baseline. Under -race the node code runs with the race detector here.
// It is not parallel: the counts are of the whole test process.
func TestInProcess(t *testing.T) {
	const m = inprocMode
	for _, tr := range transports {
		t.Run("reset/"+tr, func(t *testing.T) { testResetPeer(t, m, tr, 1) })
		t.Run("limit/"+tr, func(t *testing.T) { testLimitData(t, m, tr, "mid") })
		t.Run("killed/"+tr, func(t *testing.T) { testMiddleKilled(t, m, tr) })
		t.Run("stopped/"+tr, func(t *testing.T) { testMiddleStopped(t, m, tr) })
		t.Run("cancel/"+tr, func(t *testing.T) { testCancel(t, m, tr) })
	}
	t.Run("refused", func(t *testing.T) { testRefused(t, m) })
	t.Run("slowloris", func(t *testing.T) { testSlowloris(t, m) })
}
