package hitsim

import (
	"fmt"
	"runtime"
	"sync"
)

// Result is one policy's score on one trace, warm-up excluded.
type Result struct {
	Policy         string
	Requests, Hits int64
	Bytes          int64 // bytes requested
	HitBytes       int64 // bytes served by hits
}

// ObjectHit is the fraction of requests that hit.
func (r Result) ObjectHit() float64 { return float64(r.Hits) / float64(r.Requests) }

// ByteHit is the fraction of requested bytes served by hits.
func (r Result) ByteHit() float64 { return float64(r.HitBytes) / float64(r.Bytes) }

// Replay runs p over t, counting only the requests after the first warmup.
func Replay(t *Trace, warmup int, name string, p Policy) Result {
	res := Result{Policy: name}
	for i, id := range t.Reqs {
		size := t.Sizes[id]
		hit := p.Access(id, size)
		if i < warmup {
			continue
		}
		res.Requests++
		res.Bytes += size
		if hit {
			res.Hits++
			res.HitBytes += size
		}
	}
	return res
}

// Config is one simulation run: a workload and a budget, replayed for each
// seed and each policy.
type Config struct {
	Workload
	Capacity int64
	Seeds    []uint64
	Policies []string
	WarmFrac float64 // fraction of the trace excluded as warm-up
}

// Cell is the score of one policy on one workload, averaged over seeds.
type Cell struct {
	Policy               string
	ObjectHit, ByteHit   float64 // means
	ObjectMin, ObjectMax float64
	ByteMin, ByteMax     float64
}

// Simulate replays cfg for every seed and policy, using up to GOMAXPROCS
// goroutines, and returns one Cell per policy in cfg.Policies order.
func Simulate(cfg Config) ([]Cell, error) {
	type job struct{ seed, pol int }
	results := make([][]Result, len(cfg.Seeds))
	traces := make([]*Trace, len(cfg.Seeds))
	for i := range results {
		results[i] = make([]Result, len(cfg.Policies))
	}
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				w := cfg.Workload
				w.Seed = cfg.Seeds[j.seed]
				mu.Lock()
				tr := traces[j.seed]
				mu.Unlock()
				p, err := New(cfg.Policies[j.pol], cfg.Capacity, w.Files, w.Seed)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				results[j.seed][j.pol] = Replay(tr, int(cfg.WarmFrac*float64(len(tr.Reqs))), cfg.Policies[j.pol], p)
			}
		})
	}
	for s, seed := range cfg.Seeds {
		w := cfg.Workload
		w.Seed = seed
		traces[s] = Generate(w) // generated before its jobs are queued
		for pol := range cfg.Policies {
			jobs <- job{s, pol}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	cells := make([]Cell, len(cfg.Policies))
	for pol, name := range cfg.Policies {
		c := Cell{Policy: name, ObjectMin: 2, ByteMin: 2, ObjectMax: -1, ByteMax: -1}
		for s := range cfg.Seeds {
			r := results[s][pol]
			o, b := r.ObjectHit(), r.ByteHit()
			c.ObjectHit += o / float64(len(cfg.Seeds))
			c.ByteHit += b / float64(len(cfg.Seeds))
			c.ObjectMin, c.ObjectMax = min(c.ObjectMin, o), max(c.ObjectMax, o)
			c.ByteMin, c.ByteMax = min(c.ByteMin, b), max(c.ByteMax, b)
		}
		cells[pol] = c
	}
	return cells, nil
}

// String formats c as percentages.
func (c Cell) String() string {
	return fmt.Sprintf("%s: object %.2f%% byte %.2f%%", c.Policy, 100*c.ObjectHit, 100*c.ByteHit)
}
