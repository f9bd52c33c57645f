package bench

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/relaychain/relaychain/relay"
)

// tuneConfig is one node binary at one stream window, with its own chain.
type tuneConfig struct {
	label     string
	window    TuneWindow
	hit, miss func(context.Context) (float64, error)
}

// startTuneChain starts n relays and an origin from bin, all with window,
// and returns fetches of the cached and the streamed file over the mux.
// With growing set, the nodes and the client are given window's Max (or,
// for a fixed window, told not to grow); without it, bin is another tree's
// node, which is given only the start window, and the client does not
// grow.
func (e *env) startTuneChain(ctx context.Context, label, bin string, n int, window TuneWindow, growing bool, clients *[]*relay.Client, started *[]*proc) (tuneConfig, error) {
	tc := tuneConfig{label: label, window: window}
	tag := fmt.Sprintf("tune-%s-%s", sanitize(label), sanitize(window.String()))
	flags := []string{"--stream-window", sizeArg(int64(window.Start))}
	if growing {
		flags = append(flags, "--stream-window-max", sizeArg(int64(max(window.Max, window.Start))))
	}
	start := func(name string, args ...string) (*proc, error) {
		p, err := e.startNodeBin(ctx, bin, tag+"-"+name, append(slices.Clone(flags), args...)...)
		if err == nil {
			*started = append(*started, p)
		}
		return p, err
	}
	hit, err := start("origin-hit", "--root", e.root, "--cache-size", sizeArg(e.cfg.TuneSize+64<<20))
	if err != nil {
		return tc, err
	}
	miss, err := start("origin-miss", "--root", e.root, "--cache-size", "0")
	if err != nil {
		return tc, err
	}
	var relays []string
	for i := 1; i <= n; i++ {
		p, err := start(fmt.Sprintf("relay%d", i))
		if err != nil {
			return tc, err
		}
		relays = append(relays, p.addr)
	}
	var fetches [2]func(context.Context) (float64, error)
	for i, o := range []struct {
		origin *proc
		name   string
	}{{hit, fileTune}, {miss, fileTune}} {
		cl, err := newClientGrowth(append(slices.Clone(relays), o.origin.addr), "mux", "crc64", window)
		if err != nil {
			return tc, err
		}
		*clients = append(*clients, cl)
		// Warm: load the cached file; remember the streamed file's digest.
		if _, err := cl.Get(ctx, o.name, io.Discard, nil); err != nil {
			return tc, fmt.Errorf("%s: warm-up: %w", tag, err)
		}
		if o.origin == hit {
			if fi, err := cl.Stat(ctx, fileTune); err != nil || !fi.Cached {
				return tc, fmt.Errorf("%s: %s not cached (%v)", tag, fileTune, err)
			}
		}
		fetches[i] = rcFetch(cl, o.name, e.cfg.TuneSize)
	}
	tc.hit, tc.miss = fetches[0], fetches[1]
	return tc, nil
}

func (e *env) runTune(ctx context.Context, rep *Report) error {
	n := e.cfg.TuneRelays
	first, err := e.goChain(ctx, n, fileTune)
	if err != nil {
		return err
	}
	base := tcpFetch(first, e.cfg.TuneSize)
	var clients []*relay.Client
	var procs []*proc // stopped at the end: their caches hold the file
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		for _, p := range procs {
			e.ps.stop(p)
		}
	}()
	var configs []tuneConfig
	for _, w := range e.cfg.Windows {
		tc, err := e.startTuneChain(ctx, "this tree", e.node, n, w, true, &clients, &procs)
		if err != nil {
			return err
		}
		configs = append(configs, tc)
	}
	for _, v := range e.cfg.Variants {
		w := TuneWindow{Start: v.Window}
		if w.Start == 0 {
			w.Start = relay.DefaultStreamWindow
		}
		tc, err := e.startTuneChain(ctx, v.Name, v.Bin, n, w, false, &clients, &procs)
		if err != nil {
			return err
		}
		configs = append(configs, tc)
	}
	var baseRuns []float64
	hits := make([][]float64, len(configs))
	misses := make([][]float64, len(configs))
	for run := 1; run <= e.cfg.Runs; run++ {
		v, err := base(ctx)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		baseRuns = append(baseRuns, v)
		e.logf("tune run %d/%d, %s: %.0f MB/s", run, e.cfg.Runs, baselineLabel, v)
		for i, tc := range configs {
			h, err := tc.hit(ctx)
			if err != nil {
				return fmt.Errorf("tune %s: %w", tc.label, err)
			}
			m, err := tc.miss(ctx)
			if err != nil {
				return fmt.Errorf("tune %s: %w", tc.label, err)
			}
			hits[i], misses[i] = append(hits[i], h), append(misses[i], m)
			e.logf("tune run %d/%d, %s window %s: hit %.0f MB/s, miss (digest remembered) %.0f MB/s",
				run, e.cfg.Runs, tc.label, tc.window, h, m)
		}
	}
	b := median(baseRuns)
	rows := [][]string{{baselineLabel, "—", fmtMBs(b), "1.00", fmtMBs(b), "1.00"}}
	for i, tc := range configs {
		h, m := median(hits[i]), median(misses[i])
		rows = append(rows, []string{"relaychain mux (" + tc.label + ")", tc.window.String(),
			fmtMBs(h), fmtRatio(h, b), fmtMBs(m), fmtRatio(m, b)})
	}
	rep.add(Section{
		Title: fmt.Sprintf("Mux tuning: %s through %d relays", fmtSize(e.cfg.TuneSize), n),
		Intro: fmt.Sprintf(`Each row is its own chain of node processes started with --stream-window W
(and the client with ClientConfig.StreamWindow = W), transport mux, verify crc64;
"W" is a fixed window (--stream-window-max W), "W:MAX" one that starts at W and
may grow to MAX (--stream-window-max MAX, the default budget); a variant node is
given only --stream-window, and its client's window does not grow;
median of %d interleaved runs; ratio against the Go TCP chain of the same length.
"hit": the file is in the origin's cache; "miss": streamed from disk with its digest
remembered.`, e.cfg.Runs),
		Header: []string{"system", "window", "hit MB/s", "ratio", "miss MB/s", "ratio"},
		Rows:   rows,
	})
	return nil
}
