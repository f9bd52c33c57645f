package hitsim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/relaychain/relaychain/cache/internal/store"
)

// Policy is a byte-bounded cache being simulated. Access requests file id of
// the given size and reports whether it was a hit; on a miss the policy may
// cache the file. Files larger than the capacity are never cached.
type Policy interface {
	Access(id int32, size int64) bool
}

// Policies lists the simulated policies in report order.
var Policies = []string{"FIFO", "LRU", "larger-first", "product"}

// New returns the named policy with capacity bytes for files 0..files-1.
func New(name string, capacity int64, files int, seed uint64) (Policy, error) {
	switch name {
	case "FIFO":
		return &fifo{capacity: capacity, present: make([]bool, files)}, nil
	case "LRU":
		return newLRU(capacity, files), nil
	case "larger-first":
		return newLargerFirst(capacity, files, seed), nil
	case "product":
		return newProduct(capacity, files)
	}
	return nil, fmt.Errorf("hitsim: unknown policy %q", name)
}

// fifo evicts in insertion order; hits change nothing.
type fifo struct {
	capacity, used int64
	present        []bool
	queue          []int32 // queue[head:] in insertion order
	head           int
	sizes          []int64
}

func (p *fifo) Access(id int32, size int64) bool {
	if p.present[id] {
		return true
	}
	if size > p.capacity {
		return false
	}
	for p.used+size > p.capacity {
		victim := p.queue[p.head]
		p.head++
		p.present[victim] = false
		p.used -= p.sizes[p.head-1]
	}
	if p.head > len(p.queue)/2 && p.head > 1024 {
		p.queue = append(p.queue[:0], p.queue[p.head:]...)
		p.sizes = append(p.sizes[:0], p.sizes[p.head:]...)
		p.head = 0
	}
	p.queue = append(p.queue, id)
	p.sizes = append(p.sizes, size)
	p.present[id] = true
	p.used += size
	return false
}

// lru evicts the least recently used file.
type lru struct {
	capacity, used int64
	prev, next     []int32 // index files+0 is the sentinel; -1 when absent
	size           []int64
	sentinel       int32
}

func newLRU(capacity int64, files int) *lru {
	p := &lru{
		capacity: capacity,
		prev:     make([]int32, files+1),
		next:     make([]int32, files+1),
		size:     make([]int64, files+1),
		sentinel: int32(files),
	}
	for i := range p.prev {
		p.prev[i], p.next[i] = -1, -1
	}
	p.prev[p.sentinel], p.next[p.sentinel] = p.sentinel, p.sentinel
	return p
}

func (p *lru) unlink(id int32) {
	p.next[p.prev[id]] = p.next[id]
	p.prev[p.next[id]] = p.prev[id]
	p.prev[id], p.next[id] = -1, -1
}

func (p *lru) pushFront(id int32) {
	s := p.sentinel
	p.next[id], p.prev[id] = p.next[s], s
	p.prev[p.next[s]] = id
	p.next[s] = id
}

func (p *lru) Access(id int32, size int64) bool {
	if p.prev[id] >= 0 {
		p.unlink(id)
		p.pushFront(id)
		return true
	}
	if size > p.capacity {
		return false
	}
	for p.used+size > p.capacity {
		victim := p.prev[p.sentinel]
		p.used -= p.size[victim]
		p.unlink(victim)
	}
	p.size[id] = size
	p.used += size
	p.pushFront(id)
	return false
}

// largerFirst is the ancestors' policy: when a new file does not fit, evict
// one cached file larger than it if there is any (any one: the ancestors took
// the first a Go map iteration gave, which is random; here a uniformly random
// one), else evict the oldest files until it fits. Hits change nothing.
type largerFirst struct {
	capacity, used int64
	size           []int64 // cached size of each file, 0 when absent
	stamp          []uint32
	bySize         []sized   // cached files sorted by size, then id
	order          []stamped // insertion order from head; entries of evicted files are skipped
	head           int
	r              *rand.Rand
}

type sized struct {
	size int64
	id   int32
}

type stamped struct {
	id    int32
	stamp uint32
}

func cmpSized(a, b sized) int {
	if c := cmp.Compare(a.size, b.size); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func newLargerFirst(capacity int64, files int, seed uint64) *largerFirst {
	return &largerFirst{
		capacity: capacity,
		size:     make([]int64, files),
		stamp:    make([]uint32, files),
		r:        rand.New(rand.NewPCG(seed, 3)),
	}
}

func (p *largerFirst) evict(id int32) {
	s := sized{p.size[id], id}
	i, _ := slices.BinarySearchFunc(p.bySize, s, cmpSized)
	p.bySize = slices.Delete(p.bySize, i, i+1)
	p.used -= s.size
	p.size[id] = 0
	p.stamp[id]++ // its entry in the insertion order is now stale
}

func (p *largerFirst) Access(id int32, size int64) bool {
	if p.size[id] > 0 {
		return true
	}
	if size > p.capacity {
		return false
	}
	if p.used+size > p.capacity {
		i, _ := slices.BinarySearchFunc(p.bySize, sized{size, math.MaxInt32}, cmpSized)
		if i < len(p.bySize) {
			p.evict(p.bySize[i+p.r.IntN(len(p.bySize)-i)].id)
		}
		for p.used+size > p.capacity {
			o := p.order[p.head]
			p.head++
			if p.size[o.id] > 0 && p.stamp[o.id] == o.stamp {
				p.evict(o.id)
			}
		}
	}
	if p.head > 1024 && p.head > len(p.order)/2 {
		p.order = append(p.order[:0], p.order[p.head:]...)
		p.head = 0
	}
	p.order = append(p.order, stamped{id, p.stamp[id]})
	s := sized{size, id}
	i, _ := slices.BinarySearchFunc(p.bySize, s, cmpSized)
	p.bySize = slices.Insert(p.bySize, i, s)
	p.size[id] = size
	p.used += size
	return false
}

// product is the file cache's own core: cache/internal/store over otter.
type product struct {
	s    *store.Store[struct{}]
	keys []string
}

func newProduct(capacity int64, files int) (*product, error) {
	s, err := store.New[struct{}](capacity)
	if err != nil {
		return nil, err
	}
	keys := make([]string, files)
	for i := range keys {
		keys[i] = fmt.Sprintf("f%06d", i)
	}
	return &product{s: s, keys: keys}, nil
}

func (p *product) Access(id int32, size int64) bool {
	key := p.keys[id]
	if _, ok := p.s.Get(key); ok {
		return true
	}
	if size <= p.s.Max() {
		if _, err := p.s.Add(&store.Item[struct{}]{Key: key, Size: size}); err != nil {
			panic(err)
		}
	}
	return false
}
