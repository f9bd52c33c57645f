package relay

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Giving back the memory of a burst of streams.
//
// Each stream of a burst may hold a window of received chunks. Once the
// burst is over the chunks go back to their pools, but nothing collects
// them soon: the burst set the heap goal (twice the heap live at the
// last GC), the runtime forces a GC only every 2 minutes, pooled chunks
// outlive one GC (sync.Pool's victim cache), and the scavenger gives
// pages back to the OS a little at a time. A relay that had held 10,000
// stalled streams still had 2,555 MiB of RSS 5 s after they all ended
// (BENCHMARKS.md). So every releaseTick a serving node looks at its
// streams in flight: once they are down to a quarter of their high-water
// mark since the last burst ended (a mark of at least releaseStreams) and
// have stopped falling since the last look (a burst that takes seconds to
// end is released once, at its end), and the heap holds at least
// releaseMin, it runs a GC and then
// debug.FreeOSMemory (a second GC, which frees the pooled chunks, and the
// return of all free pages). The heap is the process's, which a large
// cache or other nodes in the same process also fill, so a process
// releases at most once per releaseGap: a burst that ends sooner after
// the last release waits for the gap.

// Release thresholds: a burst is at least releaseStreams streams in
// flight, a release is worth its two GCs from releaseMin of heap, and one
// process releases at most once per releaseGap.
const (
	releaseTick    = 500 * time.Millisecond
	releaseStreams = 256
	releaseMin     = 256 << 20
	releaseGap     = 30 * time.Second
)

// lastRelease is when this process last released memory (Unix
// nanoseconds; releaseMemory), over all its nodes.
var lastRelease atomic.Int64

// burstWatch tracks the high-water mark of a node's streams in flight.
type burstWatch struct {
	high atomic.Int64 // the most streams in flight since the last burst ended
}

// opened notes that total streams are in flight.
func (b *burstWatch) opened(total int64) {
	for {
		h := b.high.Load()
		if total <= h || b.high.CompareAndSwap(h, total) {
			return
		}
	}
}

// over reports whether a burst has ended, cur streams being in flight; if
// so, the next burst is measured from cur.
func (b *burstWatch) over(cur int64) bool {
	h := b.high.Load()
	if h < releaseStreams || cur > h/4 {
		return false
	}
	return b.high.CompareAndSwap(h, cur)
}

// releaseAfterBursts gives the memory of a burst back once it has ended,
// looking every n.releaseEvery, until the node is closed; a burst that
// ends less than n.releaseGap after the process's last release waits for
// it. n.release does it when the heap holds at least releaseMin
// (releaseMemory; tests count calls instead).
func (n *Node) releaseAfterBursts() {
	defer n.background.Done()
	t := time.NewTicker(n.releaseEvery)
	defer t.Stop()
	pending := false
	prev := int64(0)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		cur := n.streams.Load()
		if cur >= prev && n.bursts.over(cur) { // not still falling
			pending = true
		}
		prev = cur
		if pending && time.Now().UnixNano()-lastRelease.Load() >= int64(n.releaseGap) {
			pending = false
			if n.release(releaseMin) {
				n.cfg.Logger.Debug("gave back the memory of a burst of streams")
			}
		}
	}
}

// heapHeld are the runtime metrics whose sum is the heap's memory that the
// OS has not been given back: objects (live or not yet swept), unused
// space in spans, and free pages not yet released.
var heapHeld = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

// releaseMemory collects and returns free memory to the OS when the heap
// holds at least min bytes, and reports whether it did.
func releaseMemory(min uint64) bool {
	s := make([]metrics.Sample, len(heapHeld))
	for i, name := range heapHeld {
		s[i].Name = name
	}
	metrics.Read(s)
	var held uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			held += x.Value.Uint64()
		}
	}
	if held < min {
		return false
	}
	lastRelease.Store(time.Now().UnixNano())
	runtime.GC()         // pooled chunks move to their pools' victim caches
	debug.FreeOSMemory() // collects them, and returns the free pages
	return true
}
