package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/relaychain/relaychain/relay"
)

// warmTime is how long the driver runs, unmeasured, before each
// configuration, so that links, streams and connections are warm.
const warmTime = 200 * time.Millisecond

// smallGetter returns a GET of the small file through cl for the driver.
func smallGetter(cl *relay.Client, size int64) func(context.Context) error {
	return func(ctx context.Context) error {
		info, err := cl.Get(ctx, fileSmall, io.Discard, nil)
		if err == nil && info.Size != size {
			err = fmt.Errorf("got %d bytes, want %d", info.Size, size)
		}
		return err
	}
}

func (e *env) runLatency(ctx context.Context, rep *Report) error {
	hit, err := e.hitOrigin(ctx)
	if err != nil {
		return err
	}
	size := e.cfg.SmallSize
	maxConc := slices.Max(e.cfg.Concurrency)

	// Concurrency through LatencyRelays relays: relaychain and nginx.
	n := e.cfg.LatencyRelays
	rt, err := e.rcRoute(ctx, n, hit)
	if err != nil {
		return err
	}
	cl, err := newClient(rt, "auto", "sha256", 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	type sys struct {
		name string
		get  func(context.Context) error
	}
	systems := []sys{{"relaychain", smallGetter(cl, size)}}
	if e.nginx != "" {
		url, err := e.nginxURL(ctx, n, fileSmall)
		if err != nil {
			return err
		}
		get, closeIdle := httpGetter(url, size, maxConc)
		defer closeIdle()
		systems = append(systems, sys{"nginx", get})
	}
	results := map[string]map[int][]loadStats{}
	for _, c := range e.cfg.Concurrency {
		for _, s := range systems {
			if st := drive(ctx, c, warmTime, 0, s.get); st.ok == 0 {
				return fmt.Errorf("%s at concurrency %d: no request succeeded: %v", s.name, c, st.firstErr)
			}
		}
		for run := 1; run <= e.cfg.Runs; run++ {
			for _, s := range systems {
				st := drive(ctx, c, e.cfg.LatencyTime, 0, s.get)
				if st.ok == 0 {
					return fmt.Errorf("%s at concurrency %d: no request succeeded: %v", s.name, c, st.firstErr)
				}
				if results[s.name] == nil {
					results[s.name] = map[int][]loadStats{}
				}
				results[s.name][c] = append(results[s.name][c], st)
				e.logf("latency run %d/%d, %d relays, concurrency %d, %s: p50 %s p99 %s %.0f req/s (%d errors)",
					run, e.cfg.Runs, n, c, s.name, fmtDur(st.p50), fmtDur(st.p99), st.rps, st.errs)
				if st.errs > 0 {
					e.logf("  first error: %v", st.firstErr)
				}
			}
		}
	}
	header := []string{"concurrency", "relaychain p50", "p99", "req/s", "errors"}
	if e.nginx != "" {
		header = append(header, "nginx p50", "p99", "req/s", "errors", "relaychain/nginx req/s")
	}
	var rows [][]string
	for _, c := range e.cfg.Concurrency {
		p50, p99, rps, errs := medianStats(results["relaychain"][c])
		row := []string{fmt.Sprint(c), fmtDur(p50), fmtDur(p99), fmt.Sprintf("%.0f", rps), fmt.Sprint(errs)}
		if e.nginx != "" {
			np50, np99, nrps, nerrs := medianStats(results["nginx"][c])
			row = append(row, fmtDur(np50), fmtDur(np99), fmt.Sprintf("%.0f", nrps), fmt.Sprint(nerrs), fmtRatio(rps, nrps))
			if c == 64 {
				rep.goal("64 concurrent small GETs, 3 relays, vs nginx chain", ">= 1.00 (req/s)",
					fmt.Sprintf("%.0f vs %.0f req/s = %s", rps, nrps, fmtRatio(rps, nrps)), rps >= nrps)
			}
		}
		rows = append(rows, row)
	}
	rep.add(Section{
		Title: fmt.Sprintf("Small GETs: %s through %d relays", fmtSize(size), n),
		Intro: fmt.Sprintf(`One load driver in the bench process runs C goroutines, each sending one GET
after another for %s; figures are the median of %d such runs, interleaved between the
systems, after %s of unmeasured warm-up at the same concurrency (warm links). relaychain:
one relay.Client (default transport auto = the mux for small files, default sha256
verify), so all C requests share one yamux link per hop; the origin's cache holds the
file. nginx: net/http with keepalive (up to C connections per hop), the origin serves
from the page cache with sendfile and open_file_cache. Errors are summed over the runs.`,
			e.cfg.LatencyTime, e.cfg.Runs, warmTime),
		Header: header,
		Rows:   rows,
	})
	return e.extraRelayCost(ctx, rep, hit)
}

// hopSystem is one chain of the extra-relay table: the URL of a file
// through n relays (nil for relaychain, which has a client per chain),
// its GET through each chain length, and the runs measured.
type hopSystem struct {
	name string
	url  func(ctx context.Context, n int, name string) (string, error)
	get  map[int]func(context.Context) error
	runs map[int][]loadStats
}

func newHopSystem(name string, url func(context.Context, int, string) (string, error)) *hopSystem {
	return &hopSystem{name: name, url: url, get: map[int]func(context.Context) error{}, runs: map[int][]loadStats{}}
}

// extraRelayCost measures p50 at concurrency 1 through each chain length:
// relaychain, and with nginx, the nginx chain and a chain of baseline Go
// TCP relays in front of the nginx origin (what a bare Go relay adds).
func (e *env) extraRelayCost(ctx context.Context, rep *Report, hit *proc) error {
	size := e.cfg.SmallSize
	ns := slices.Sorted(slices.Values(e.cfg.Relays))
	rc := newHopSystem("relaychain", nil)
	systems := []*hopSystem{rc}
	if e.nginx != "" {
		systems = append(systems, newHopSystem("nginx", e.nginxURL), newHopSystem("Go TCP relays", e.goHTTPURL))
	}
	for _, n := range ns {
		rt, err := e.rcRoute(ctx, n, hit)
		if err != nil {
			return err
		}
		cl, err := newClient(rt, "auto", "sha256", 0)
		if err != nil {
			return err
		}
		defer cl.Close()
		rc.get[n] = smallGetter(cl, size)
		for _, h := range systems[1:] {
			url, err := h.url(ctx, n, fileSmall)
			if err != nil {
				return err
			}
			get, closeIdle := httpGetter(url, size, 1)
			defer closeIdle()
			h.get[n] = get
		}
	}
	for _, n := range ns {
		for _, h := range systems {
			drive(ctx, 1, warmTime, 0, h.get[n])
		}
	}
	for run := 1; run <= e.cfg.Runs; run++ {
		for _, n := range ns {
			for _, h := range systems {
				st := drive(ctx, 1, e.cfg.LatencyTime, 0, h.get[n])
				if st.ok == 0 {
					return fmt.Errorf("%s through %d relays: %v", h.name, n, st.firstErr)
				}
				h.runs[n] = append(h.runs[n], st)
				e.logf("extra-relay run %d/%d, %d relays, %s: p50 %s", run, e.cfg.Runs, n, h.name, fmtDur(st.p50))
			}
		}
	}
	header := []string{"relays"}
	for i, h := range systems {
		added := "added per relay"
		if i == 0 {
			added += fmt.Sprintf(" (vs %d relays)", ns[0])
		}
		header = append(header, h.name+" p50", "p99", added)
	}
	var rows [][]string
	worst := time.Duration(0)
	for _, n := range ns {
		row := []string{fmt.Sprint(n)}
		for _, h := range systems {
			base, _, _, _ := medianStats(h.runs[ns[0]])
			p50, p99, _, _ := medianStats(h.runs[n])
			per := "—"
			if n > ns[0] {
				d := (p50 - base) / time.Duration(n-ns[0])
				per = fmtSignedDur(d)
				if h == rc {
					worst = max(worst, d)
				}
			}
			row = append(row, fmtDur(p50), fmtDur(p99), per)
		}
		rows = append(rows, row)
	}
	intro := fmt.Sprintf(`Median over %d runs of %s each of the p50 latency of one GET at a time
on warm links; "added per relay" = (p50(N) - p50(%d)) / (N - %d).`, e.cfg.Runs, e.cfg.LatencyTime, ns[0], ns[0])
	if len(systems) > 1 {
		intro += `
"Go TCP relays" are the bulk baseline's relays (io.Copy both ways, splice) in front
of the nginx origin, fetched over HTTP keep-alive as the nginx chain is: what a bare
Go relay adds.`
	}
	rep.add(Section{
		Title:  fmt.Sprintf("Extra-relay cost: %s GETs at concurrency 1", fmtSize(size)),
		Intro:  intro,
		Header: header,
		Rows:   rows,
	})
	if len(ns) > 1 && ns[0] == 0 {
		rep.goal("each extra relay adds at p50 (concurrency 1)", "<= 100 µs",
			fmt.Sprintf("worst %s per relay", fmtSignedDur(worst)), worst <= 100*time.Microsecond)
	}
	return nil
}

func fmtSignedDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0 µs"
	case d < 0:
		return "-" + fmtDur(-d)
	}
	return fmtDur(d)
}
