package cache

import (
	"sync/atomic"
	"unsafe"
)

// Stats is a snapshot of a Cache's counters. Counters only grow; Bytes and
// Entries are the current contents.
type Stats struct {
	// Hits counts Gets served from an entry already in memory.
	Hits uint64
	// Misses counts Gets of a regular file that were not hits: loaded into
	// memory (by this call or a concurrent one it waited for) or streamed.
	Misses uint64
	// Loads counts files read from disk into memory.
	Loads uint64
	// Streams counts Gets answered with an open file (Object.File).
	Streams uint64
	// Evictions counts cached entries evicted by the size policy.
	Evictions uint64
	// Rejections counts loaded files the policy declined to keep (TinyLFU
	// admission); they were served once from memory and not cached.
	Rejections uint64
	// Stale counts cached entries dropped because the file changed.
	Stale uint64
	// HitBytes is the number of bytes served from memory by hits.
	HitBytes uint64
	// Bytes is the number of bytes currently cached; never above Capacity.
	Bytes int64
	// Entries is the number of files currently cached.
	Entries int64
	// Capacity is Config.MaxBytes.
	Capacity int64
}

// hitStripes is the number of stripes of the hit counters.
const hitStripes = 16

// hitStripe is one stripe of the hit counters, alone on its cache lines.
type hitStripe struct {
	hits     atomic.Uint64
	hitBytes atomic.Uint64
	_        [128 - 16]byte
}

// counters are the Cache's own counters; all fields are atomics. The hit
// counters, updated on every hit, are striped by the address of the entry
// hit, so that parallel hits of different files do not contend on one cache
// line.
type counters struct {
	hit     [hitStripes]hitStripe
	misses  atomic.Uint64
	loads   atomic.Uint64
	streams atomic.Uint64
	stale   atomic.Uint64
}

// Stats returns a snapshot of the counters. It is safe for concurrent use;
// the fields are read one by one, so a snapshot taken during Gets may mix
// instants.
func (c *Cache) Stats() Stats {
	s := Stats{
		Misses:   c.ctr.misses.Load(),
		Loads:    c.ctr.loads.Load(),
		Streams:  c.ctr.streams.Load(),
		Stale:    c.ctr.stale.Load(),
		Capacity: c.max,
	}
	for i := range c.ctr.hit {
		s.Hits += c.ctr.hit[i].hits.Load()
		s.HitBytes += c.ctr.hit[i].hitBytes.Load()
	}
	if c.store != nil {
		s.Evictions = c.store.Evictions()
		s.Rejections = c.store.Rejections()
		s.Bytes = c.store.Bytes()
		s.Entries = c.store.Len()
	}
	return s
}

// countHit counts a hit of size bytes on the entry at p.
func (ctr *counters) countHit(p unsafe.Pointer, size int64) {
	st := &ctr.hit[(uintptr(p)>>7)%hitStripes]
	st.hits.Add(1)
	st.hitBytes.Add(uint64(size))
}
