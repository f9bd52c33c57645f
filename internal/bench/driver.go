package bench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// loadStats is what one run of the load driver measured.
type loadStats struct {
	ok, errs int
	firstErr error
	elapsed  time.Duration
	p50, p99 time.Duration
	rps      float64 // successful requests per second
}

// drive runs conc goroutines, each sending one request after another with
// do, for dur (or until limit requests were sent in all, when limit > 0),
// and returns the latency percentiles and throughput of the successful
// requests. The same driver runs every system, so they are measured with
// the same goroutine structure and the same clock.
func drive(ctx context.Context, conc int, dur time.Duration, limit int, do func(context.Context) error) loadStats {
	var (
		mu       sync.Mutex
		all      []time.Duration
		st       loadStats
		sent     int
		wg       sync.WaitGroup
		deadline = time.Now().Add(dur)
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if limit > 0 && sent >= limit {
			return false
		}
		sent++
		return true
	}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats := make([]time.Duration, 0, 1024)
			var errs int
			var firstErr error
			for ctx.Err() == nil && (dur == 0 || time.Now().Before(deadline)) && (limit == 0 || take()) {
				t0 := time.Now()
				err := do(ctx)
				d := time.Since(t0)
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lats = append(lats, d)
			}
			mu.Lock()
			all = append(all, lats...)
			st.errs += errs
			if st.firstErr == nil {
				st.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	slices.Sort(all)
	st.ok = len(all)
	st.p50, st.p99 = percentile(all, 50), percentile(all, 99)
	st.rps = float64(st.ok) / st.elapsed.Seconds()
	return st
}

// medianStats is the per-figure median of several runs.
func medianStats(runs []loadStats) (p50, p99 time.Duration, rps float64, errs int) {
	var a, b, c []float64
	for _, r := range runs {
		a = append(a, float64(r.p50))
		b = append(b, float64(r.p99))
		c = append(c, r.rps)
		errs += r.errs
	}
	return time.Duration(median(a)), time.Duration(median(b)), median(c), errs
}
