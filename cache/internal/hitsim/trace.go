// Package hitsim replays synthetic request traces against cache eviction
// policies and measures their object and byte hit ratios. The product's policy
// is not a model: it is cache/internal/store, the otter-based core of the
// file cache, driven with sizes instead of file data.
package hitsim

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Workload describes a synthetic trace.
type Workload struct {
	Files    int     // number of distinct files
	Median   float64 // median file size in bytes (log-normal)
	Sigma    float64 // sigma of the log-normal size distribution
	HugeFrac float64 // fraction of files replaced by huge ones, 0 for none
	HugeMin  int64   // huge file sizes are log-uniform in [HugeMin, HugeMax]
	HugeMax  int64
	S        float64 // Zipf exponent of popularity (any s > 0)
	Requests int     // trace length
	Seed     uint64
}

// Trace is a generated trace: file sizes and the sequence of requested files.
type Trace struct {
	Sizes []int64
	Reqs  []int32
}

// Generate builds the trace of w. The same Workload always gives the same
// trace. Popularity rank r (from 1) has weight 1/r^s; ranks map to files
// through a random permutation, so size and popularity are independent.
// Requests are drawn from the cumulative weights by binary search
// (math/rand/v2's Zipf needs s > 1).
func Generate(w Workload) *Trace {
	r := rand.New(rand.NewPCG(w.Seed, 0x5eed))
	sizes := make([]int64, w.Files)
	mu := math.Log(w.Median)
	for i := range sizes {
		sizes[i] = max(1, int64(math.Round(math.Exp(mu+w.Sigma*r.NormFloat64()))))
	}
	if huge := int(math.Round(w.HugeFrac * float64(w.Files))); huge > 0 {
		lo, hi := math.Log(float64(w.HugeMin)), math.Log(float64(w.HugeMax))
		for _, i := range r.Perm(w.Files)[:huge] {
			sizes[i] = int64(math.Exp(lo + (hi-lo)*r.Float64()))
		}
	}

	fileOfRank := r.Perm(w.Files)
	cum := make([]float64, w.Files)
	total := 0.0
	for i := range cum {
		total += math.Pow(float64(i+1), -w.S)
		cum[i] = total
	}
	reqs := make([]int32, w.Requests)
	for i := range reqs {
		rank := sort.SearchFloat64s(cum, r.Float64()*total)
		reqs[i] = int32(fileOfRank[min(rank, w.Files-1)])
	}
	return &Trace{Sizes: sizes, Reqs: reqs}
}
