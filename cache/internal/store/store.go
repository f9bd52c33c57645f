// Package store is the byte-bounded index at the core of the file cache: an
// otter W-TinyLFU cache of items weighted by their size, wrapped so that the
// bytes it holds never exceed its budget, not even for an instant.
//
// It knows nothing of files: package cache keeps file data in it, and the
// hit-ratio simulator (cache/internal/hitsim) drives the very same code with
// sizes only.
package store

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
)

// MaxItemSize is the largest size an item may have: otter weighs entries with
// a uint32.
const MaxItemSize = math.MaxUint32

// The life of an item: pending while Add decides whether the policy keeps it,
// live once published, gone once removed. Only live items are visible.
const (
	statePending uint32 = iota
	stateLive
	stateGone
)

// Item is one entry. Key, Size and Value are set before Add and never change
// afterwards; an Item is added at most once.
type Item[V any] struct {
	// Key is the entry's key.
	Key string
	// Size is the entry's weight in bytes.
	Size int64
	// Value is the caller's payload.
	Value V

	state atomic.Uint32
}

// Live reports whether the item is published and not yet removed.
func (it *Item[V]) Live() bool { return it.state.Load() == stateLive }

// Store is a byte-bounded set of items with otter's W-TinyLFU policy.
//
// All methods are safe for concurrent use. Lookups do not block each other;
// Add calls are serialised by a mutex (they are the slow path of a miss).
//
// The bound is kept by construction, not by hoping otter's eviction keeps up:
//
//   - otter sees an item first as pending: inserted with its weight but not
//     visible to Get, and not counted in Bytes;
//   - Add then runs otter's maintenance synchronously (CleanUp), so the policy
//     evicts until its weighted size, which includes the new item, is within
//     the budget; the policy may evict the new item itself (TinyLFU admission);
//   - only then, and only if Bytes()+Size is still within the budget, is the
//     item published (made live) and added to Bytes.
//
// Bytes only grows in that last step, under the mutex, after the check, and
// every other change lowers it, so Bytes() <= MaxBytes holds at every instant,
// and so does the sum of the sizes of the live items.
type Store[V any] struct {
	max int64
	oc  *otter.Cache[string, *Item[V]]

	mu     sync.Mutex // serialises Add and Clear
	closed bool       // guarded by mu

	bytes      atomic.Int64
	entries    atomic.Int64
	evictions  atomic.Uint64
	rejections atomic.Uint64
}

// New returns a Store that holds at most maxBytes bytes of items.
func New[V any](maxBytes int64) (*Store[V], error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("store: maximum %d bytes: must be positive", maxBytes)
	}
	s := &Store[V]{max: maxBytes}
	oc, err := otter.New(&otter.Options[string, *Item[V]]{
		InitialCapacity: expectedItems(maxBytes),
		MaximumWeight:   uint64(maxBytes),
		Weigher: func(_ string, it *Item[V]) uint32 {
			// An entry of weight 0 is never evicted for size; give empty
			// items a weight of 1 so that their number stays bounded too.
			return uint32(max(it.Size, 1))
		},
		OnAtomicDeletion: s.onDeletion,
		// Maintenance runs on the calling goroutine: no goroutines to leak or
		// to stop, no allocation for it on a hit, and Add can make it finish
		// before it publishes.
		Executor: func(fn func()) { fn() },
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.oc = oc
	return s, nil
}

// onDeletion runs under otter's bucket lock whenever an item leaves the map.
func (s *Store[V]) onDeletion(e otter.DeletionEvent[string, *Item[V]]) {
	it := e.Value
	switch it.state.Swap(stateGone) {
	case stateLive:
		s.bytes.Add(-it.Size)
		s.entries.Add(-1)
		if e.Cause == otter.CauseOverflow {
			s.evictions.Add(1)
		}
	case statePending:
		if e.Cause == otter.CauseOverflow {
			s.rejections.Add(1)
		}
	}
}

// Max returns the budget in bytes.
func (s *Store[V]) Max() int64 { return s.max }

// Get returns the live item under key and records the access with the policy.
// It does not allocate.
func (s *Store[V]) Get(key string) (*Item[V], bool) {
	it, ok := s.oc.GetIfPresent(key)
	if !ok || !it.Live() {
		return nil, false
	}
	return it, true
}

// Peek is Get without recording an access.
func (s *Store[V]) Peek(key string) (*Item[V], bool) {
	e, ok := s.oc.GetEntryQuietly(key)
	if !ok || !e.Value.Live() {
		return nil, false
	}
	return e.Value, true
}

// ErrTooLarge is returned by Add for an item larger than the budget or than
// MaxItemSize.
var ErrTooLarge = errors.New("store: item larger than the budget")

// ErrClosed is returned by Add after Clear.
var ErrClosed = errors.New("store: closed")

// Add offers it to the policy and reports whether it was kept (it is then
// live and visible to Get). An item the policy declines is counted in
// Rejections and is simply not cached. Add replaces any item under the same
// key. It never makes Bytes exceed the budget.
func (s *Store[V]) Add(it *Item[V]) (bool, error) {
	if it.Size < 0 || it.Size > s.max || it.Size > MaxItemSize {
		return false, fmt.Errorf("%w: %d bytes, budget %d", ErrTooLarge, it.Size, s.max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	s.oc.Set(it.Key, it)
	// Synchronous maintenance: replay the write and evict until the policy's
	// weighted size, which counts this pending item, is within the budget.
	s.oc.CleanUp()
	if it.state.Load() != statePending {
		return false, nil // the policy evicted it (counted as a rejection)
	}
	if s.bytes.Load()+it.Size > s.max {
		// Only possible if otter's accounting lagged (e.g. its write buffer
		// overflowed under a storm of removals). Never exceed the bound:
		// withdraw the item instead.
		s.remove(it)
		s.rejections.Add(1)
		return false, nil
	}
	if !it.state.CompareAndSwap(statePending, stateLive) {
		return false, nil
	}
	s.bytes.Add(it.Size)
	s.entries.Add(1)
	return true, nil
}

// Remove removes it if it is still the item under its key, and reports
// whether it did. A newer item under the same key is left alone.
func (s *Store[V]) Remove(it *Item[V]) bool {
	return s.remove(it)
}

func (s *Store[V]) remove(it *Item[V]) bool {
	removed := false
	s.oc.ComputeIfPresent(it.Key, func(old *Item[V]) (*Item[V], otter.ComputeOp) {
		if old != it {
			return old, otter.CancelOp
		}
		removed = true
		return nil, otter.InvalidateOp
	})
	return removed
}

// All returns the live items, in no particular order. It is weakly
// consistent, like otter's iterators.
func (s *Store[V]) All() iter.Seq[*Item[V]] {
	return func(yield func(*Item[V]) bool) {
		for it := range s.oc.Values() {
			if it.Live() && !yield(it) {
				return
			}
		}
	}
}

// Bytes returns the total size of the live items. It never exceeds Max.
func (s *Store[V]) Bytes() int64 { return s.bytes.Load() }

// Len returns the number of live items.
func (s *Store[V]) Len() int64 { return s.entries.Load() }

// Evictions returns how many live items the policy has evicted.
func (s *Store[V]) Evictions() uint64 { return s.evictions.Load() }

// Rejections returns how many added items the policy declined to keep.
func (s *Store[V]) Rejections() uint64 { return s.rejections.Load() }

// Clear removes every item and makes later Adds fail with ErrClosed. It is
// idempotent.
func (s *Store[V]) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.oc.InvalidateAll()
}

// expectedItems is the InitialCapacity given to otter: one item per KiB of
// budget, within [64, 1<<20]. Besides presizing the hash table it sizes
// TinyLFU's frequency sketch, whose width also sets how often the sketch ages
// (every 10 x capacity accesses). Left to otter, a weighted cache sizes the
// sketch from the number of entries it holds (~1,500 in the 64 MiB simulation,
// for 20,000 files): too narrow, it blurs frequencies, ages too fast and
// varies from run to run with the hash seed. One item per KiB (65,536 for 64
// MiB) gave the best hit ratios in the simulation, 1-1.5 points above 16,384
// and above 262,144 (which ages too slowly), for about 4% of the budget in
// memory (2.5 MiB at 64 MiB). See BENCHMARKS.md.
func expectedItems(maxBytes int64) int {
	return int(min(max(maxBytes>>10, 64), 1<<20))
}
