package hitsim

import (
	"fmt"
	"testing"
)

func smallConfig(s float64, huge float64) Config {
	return Config{
		Workload: Workload{
			Files: 2000, Median: 32 << 10, Sigma: 1.5,
			HugeFrac: huge, HugeMin: 4 << 20, HugeMax: 256 << 20,
			S: s, Requests: 100_000,
		},
		Capacity: 64 << 20 / 10,
		Seeds:    []uint64{1},
		Policies: Policies,
		WarmFrac: 0.1,
	}
}

func TestGenerateDeterministicAndSkewed(t *testing.T) {
	w := smallConfig(1.0, 0.01).Workload
	w.Seed = 42
	a, b := Generate(w), Generate(w)
	for i := range a.Reqs {
		if a.Reqs[i] != b.Reqs[i] {
			t.Fatal("same workload, different traces")
		}
	}
	counts := make([]int, w.Files)
	for _, id := range a.Reqs {
		counts[id]++
	}
	maxCount, huge := 0, 0
	for i, c := range counts {
		maxCount = max(maxCount, c)
		if a.Sizes[i] >= 4<<20 {
			huge++
		}
	}
	// Zipf s=1 over 2000 ranks: the top file gets 1/H(2000) ~ 12% of requests.
	if frac := float64(maxCount) / float64(len(a.Reqs)); frac < 0.10 || frac > 0.14 {
		t.Fatalf("top file has %.3f of the requests, want ~0.12", frac)
	}
	if huge < 20 {
		t.Fatalf("%d huge files, want at least 20", huge)
	}
}

// usedOf returns the bytes a policy holds.
func usedOf(p Policy) int64 {
	switch p := p.(type) {
	case *fifo:
		return p.used
	case *lru:
		return p.used
	case *largerFirst:
		return p.used
	case *product:
		return p.s.Bytes()
	}
	panic("unknown policy")
}

func TestPoliciesStayWithinCapacity(t *testing.T) {
	cfg := smallConfig(0.9, 0.01)
	cfg.Seed = 1
	tr := Generate(cfg.Workload)
	for _, name := range Policies {
		p, err := New(name, cfg.Capacity, cfg.Files, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range tr.Reqs[:30000] {
			p.Access(id, tr.Sizes[id])
			if u := usedOf(p); u > cfg.Capacity || u < 0 {
				t.Fatalf("%s: request %d: %d bytes used, capacity %d", name, i, u, cfg.Capacity)
			}
		}
	}
}

// TestSmoke runs a small simulation in seconds and checks the product's
// lead over LRU with margins below the full run's (see BENCHMARKS.md).
func TestSmoke(t *testing.T) {
	for _, huge := range []float64{0, 0.01} {
		for _, s := range []float64{0.9, 1.0, 1.2} {
			t.Run(fmt.Sprintf("huge=%v/s=%v", huge, s), func(t *testing.T) {
				cells, err := Simulate(smallConfig(s, huge))
				if err != nil {
					t.Fatal(err)
				}
				by := map[string]Cell{}
				for _, c := range cells {
					t.Log(c)
					if c.ObjectHit <= 0 || c.ObjectHit >= 1 || c.ByteHit < 0 || c.ByteHit >= 1 {
						t.Errorf("%v: ratio out of range", c)
					}
					by[c.Policy] = c
				}
				if p, l := by["product"], by["LRU"]; p.ObjectHit < l.ObjectHit+0.02 || p.ByteHit < l.ByteHit {
					t.Errorf("product %v does not beat LRU %v", p, l)
				}
			})
		}
	}
}

// BenchmarkHitRatio reports each policy's hit ratios (in percent) on the
// small workload, or with -benchtime=1x and without -short on the full one
// for s = 1.0 (one seed; the full table comes from go run ./cache/cmd/hitsim).
func BenchmarkHitRatio(b *testing.B) {
	cfg := smallConfig(1.0, 0)
	if !testing.Short() {
		cfg.Files, cfg.Capacity, cfg.Requests = 20000, 64<<20, 2_000_000
	}
	var cells []Cell
	for b.Loop() {
		var err error
		if cells, err = Simulate(cfg); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range cells {
		b.ReportMetric(100*c.ObjectHit, c.Policy+"-obj-hit-%")
		b.ReportMetric(100*c.ByteHit, c.Policy+"-byte-hit-%")
	}
}
