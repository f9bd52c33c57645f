package relay

import (
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
	"github.com/relaychain/relaychain/third_party/yamux"
)

// TestBurstWatch checks when a burst counts as over: its high-water mark
// is at least releaseStreams, the streams are down to a quarter of it,
// and the next burst is measured from there.
func TestBurstWatch(t *testing.T) {
	var b burstWatch
	b.opened(releaseStreams - 1)
	if b.over(0) {
		t.Fatal("a high-water mark under releaseStreams ended a burst")
	}
	b.opened(1000)
	b.opened(500) // not a new mark
	if b.over(251) {
		t.Fatal("251 of a mark of 1000 left ended the burst")
	}
	if !b.over(250) {
		t.Fatal("250 of a mark of 1000 left did not end the burst")
	}
	if b.over(0) {
		t.Fatal("the mark after a burst ended is what was left (250), under releaseStreams: no burst to end")
	}
	b.opened(releaseStreams)
	if !b.over(releaseStreams / 4) {
		t.Fatal("a new burst of releaseStreams did not end")
	}
}

// TestReleaseAfterBurst: a node that had a burst of releaseStreams + 44
// streams in flight releases memory once after they end, and not while
// they are in flight; a smaller burst after it releases nothing.
func TestReleaseAfterBurst(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.MaxStreamsPerLink, cfg.MaxStreams = 2*releaseStreams, 2*releaseStreams
	cfg.Logger = testLogger(t)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan uint64, 16)
	n.releaseEvery, n.releaseGap = 20*time.Millisecond, 0
	n.release = func(min uint64) bool { calls <- min; return true }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	t.Cleanup(func() {
		n.Close()
		<-served
	})

	noRelease := func(what string) {
		t.Helper()
		select {
		case <-calls:
			t.Fatalf("released memory %s", what)
		case <-time.After(10 * n.releaseEvery):
		}
	}
	// burst holds count streams in flight, each with a part of a request
	// (their handlers wait for the rest), then ends them all. A link
	// carries at most 128 of them: yamux lets a link have no more than 256
	// streams that are not yet answered.
	burst := func(count int) {
		t.Helper()
		var links []*yamux.Session
		for i := range count {
			if i%128 == 0 {
				links = append(links, rawLink(t, ln.Addr().String()))
			}
			st, err := links[len(links)-1].OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write([]byte{byte(route.FrameRequest), 0}); err != nil {
				t.Fatal(err)
			}
		}
		waitStreams(t, n, int64(count))
		noRelease("while a burst was in flight")
		for _, l := range links {
			l.Close()
		}
		waitStreams(t, n, 0)
	}

	burst(releaseStreams + 44)
	select {
	case min := <-calls:
		if min != releaseMin {
			t.Errorf("released with a minimum of %d bytes, want releaseMin (%d)", min, releaseMin)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no release within 10s after a burst of %d streams ended", releaseStreams+44)
	}
	noRelease("twice for one burst")
	burst(releaseStreams / 2)
	noRelease("after a burst of fewer than releaseStreams streams")
}

// waitStreams waits up to 10s until n has want streams in flight.
func waitStreams(t *testing.T, n *Node, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.streams.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams in flight after 10s, want %d", n.streams.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReleaseMemory checks that releaseMemory does nothing under its
// minimum, and above it frees pooled buffers, which outlive one GC in
// their pool's victim cache, and leaves no free heap pages unreleased. Not
// parallel, so that no other test allocates meanwhile.
func TestReleaseMemory(t *testing.T) {
	if releaseMemory(1 << 62) {
		t.Fatal("released with less than the minimum held")
	}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<20)
	}
	var pool sync.Pool // filled after the allocations, whose GCs empty pools
	for i := range bufs {
		pool.Put(&bufs[i])
	}
	before := heapMetric("/memory/classes/heap/objects:bytes")
	if !releaseMemory(0) {
		t.Fatal("did not release with a minimum of 0")
	}
	runtime.KeepAlive(&pool)
	if after := heapMetric("/memory/classes/heap/objects:bytes"); before < after+48<<20 {
		t.Fatalf("heap objects went from %d to %d bytes: the 64 MiB of pooled buffers were not freed", before, after)
	}
	if free := heapMetric("/memory/classes/heap/free:bytes"); free > 16<<20 {
		t.Fatalf("%d bytes of free heap pages left unreleased, want under 16 MiB", free)
	}
}

// heapMetric returns the runtime metric name, a byte count.
func heapMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
