package relay

import (
	"testing"
	"time"
)

// TestRelayCountsPassedOn fetches small files through two relays on the
// mux. Their answers travel in frames small enough for the patched yamux
// to pass on from its receive loop (passon.go) rather than through the
// relay's copier, and each relay must still log every byte it relayed:
// the same count at both relays, at least the file's size, and no error
// (the client's early end must not look like a cancel).
func TestRelayCountsPassedOn(t *testing.T) {
	dir := t.TempDir()
	var files []testFile
	for _, size := range []int64{1, 4 << 10, 60 << 10} {
		f, err := genFile(dir, sizeName(size), size)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	logs, rt := recordedChain(t, 2, Config{}, Config{Root: dir})
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	ctx := testCtx(t, 30*time.Second)
	for _, f := range files {
		checkGet(t, ctx, c, f)
		var got [2]int64
		for i := range got {
			// A relay logs its request once both directions have ended,
			// a moment after the client has its answer.
			deadline := time.Now().Add(5 * time.Second)
			for len(logs[i].requests(f.Name)) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			recs := logs[i].requests(f.Name)
			if len(recs) != 1 {
				t.Fatalf("%s: relay %d logged %d requests, want 1", f.Name, i, len(recs))
			}
			if e := recs[0]["err"]; e != "" {
				t.Errorf("%s: relay %d logged an error for a GET that succeeded: %s", f.Name, i, e)
			}
			got[i] = loggedBytes(t, recs[0])
		}
		if got[0] != got[1] || got[0] < f.Size {
			t.Errorf("%s (%d bytes): relays logged %d and %d bytes relayed", f.Name, f.Size, got[0], got[1])
		}
	}
}
