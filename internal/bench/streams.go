package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaychain/relaychain/relay"
)

// streamsPerClient is how many of the concurrent streams share one
// relay.Client (which spreads them over sessions of up to 128 streams).
const streamsPerClient = 500

// gateWriter holds every GET at its first write until release is closed,
// so that all streams are open, with their buffers full, at once.
type gateWriter struct {
	once    sync.Once
	arrived func()
	release <-chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(g.arrived)
	<-g.release
	return len(p), nil
}

// streamsTimeout is the client idle timeout of the streams suite.
const streamsTimeout = 5 * time.Minute

// memGuard is the available memory (MemAvailable) under which the streams
// suite stops adding load, so that it never drives the machine out of
// memory.
const memGuard = 3 << 30

// memAvailable returns MemAvailable from /proc/meminfo, or a large value
// when it cannot be read.
func memAvailable() int64 {
	v := procField("/proc/meminfo", "MemAvailable")
	var kb int64
	if _, err := fmt.Sscanf(v, "%d kB", &kb); err != nil {
		return 1 << 62
	}
	return kb << 10
}

// rssSampler tracks a process's RSS.
type rssSampler struct {
	pid  int
	peak int64
}

func (s *rssSampler) sample() int64 {
	v, err := rss(s.pid)
	if err != nil {
		return 0
	}
	s.peak = max(s.peak, v)
	return v
}

// streamsResult is what one gated run of the streams suite measured.
type streamsResult struct {
	before, during, peak, after, afterSettle int64 // relay RSS
	open, failed                             int64
	busy                                     int64 // failures answered busy
	firstErr                                 error
	setup, done, settle                      time.Duration
	lowMem                                   bool
}

// gatedStreams starts an origin and a relay with the given extra flags,
// opens Streams GETs of the streams file through the relay that all block
// at their first write, samples the relay's RSS until it is stable, then
// releases them. It returns the origin (still running, for the caller to
// stop) and what it measured.
func (e *env) gatedStreams(ctx context.Context, tag string, relayFlags, originFlags []string) (*proc, streamsResult, error) {
	var res streamsResult
	w := e.cfg.StreamsWindow
	streams := e.cfg.Streams
	origin, err := e.startNode(ctx, tag+"-origin", append(originFlags, "--root", e.root)...)
	if err != nil {
		return nil, res, err
	}
	rl, err := e.startNode(ctx, tag+"-relay", relayFlags...)
	if err != nil {
		return origin, res, err
	}
	defer e.ps.stop(rl)
	rt := []string{rl.addr, origin.addr}
	nc := (streams + streamsPerClient - 1) / streamsPerClient
	clients := make([]*relay.Client, nc)
	for i := range clients {
		// The default 30 s idle timeout is not always enough here: the
		// first streams' data fills the relay-origin links, and the later
		// streams' answers queue behind it.
		cl, err := newClientTimeout(rt, "mux", "crc64", w, streamsTimeout)
		if err != nil {
			return origin, res, err
		}
		defer cl.Close()
		if _, err := cl.Get(ctx, fileSmall, io.Discard, nil); err != nil {
			return origin, res, fmt.Errorf("warm-up: %w", err)
		}
		clients[i] = cl
	}
	// Load the file into the origin's cache.
	if _, err := clients[0].Get(ctx, fileStreams, io.Discard, nil); err != nil {
		return origin, res, err
	}
	smp := &rssSampler{pid: rl.pid()}
	res.before = smp.sample()
	e.logf("streams (%s): relay RSS before: %s; opening %d streams over %d clients", tag, fmtMiB(res.before), streams, nc)

	release := make(chan struct{})
	var arrived, failed, busy atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := &gateWriter{arrived: func() { arrived.Add(1) }, release: release}
			info, err := clients[i%nc].Get(ctx, fileStreams, gw, nil)
			if err == nil && info.Size != e.cfg.StreamsFile {
				err = fmt.Errorf("got %d bytes", info.Size)
			}
			if err != nil {
				failed.Add(1)
				if errors.Is(err, relay.ErrBusy) {
					busy.Add(1)
				}
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	// Wait until every stream has its first bytes (or failed), then until
	// the relay's RSS stops growing: its buffers are full.
	limit := time.Now().Add(streamsTimeout - 30*time.Second)
	for arrived.Load()+failed.Load() < int64(streams) && time.Now().Before(limit) && ctx.Err() == nil {
		smp.sample()
		if res.lowMem = memAvailable() < memGuard; res.lowMem {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.open = arrived.Load()
	res.setup = time.Since(t0)
	last, stable := smp.sample(), 0
	for stable < 10 && !res.lowMem && time.Now().Before(limit) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		res.lowMem = memAvailable() < memGuard
		v := smp.sample()
		if v-last < last/200 { // under 0.5% growth
			stable++
		} else {
			stable = 0
		}
		last = v
	}
	res.during = smp.sample()
	res.peak = smp.peak
	e.logf("streams (%s): %d open (%d failed, %d busy) after %s; relay RSS %s (peak %s)", tag, res.open,
		failed.Load(), busy.Load(), res.setup.Round(time.Millisecond), fmtMiB(res.during), fmtMiB(res.peak))
	if res.lowMem {
		e.note("streams (%s): the machine's available memory fell under %s with %d streams open: released early", tag, fmtMiB(memGuard), res.open)
	}
	close(release)
	wg.Wait()
	res.done = time.Since(t0)
	res.after = smp.sample()
	res.settle = 5 * time.Second
	if streams < 1000 {
		res.settle = 500 * time.Millisecond
	}
	time.Sleep(res.settle)
	res.afterSettle = smp.sample()
	res.failed, res.busy = failed.Load(), busy.Load()
	res.firstErr, _ = firstErr.Load().(error)
	return origin, res, nil
}

func (e *env) runStreams(ctx context.Context, rep *Report) error {
	w := e.cfg.StreamsWindow
	streams := e.cfg.Streams
	flags := []string{"--stream-window", sizeArg(int64(w))}
	// Every stream must be let in: the node's caps (256 streams per link,
	// 1024 in all by default) are raised on both nodes, so that the relay
	// really holds Streams streams. The relay spreads them over up to 16
	// sessions to the origin, hundreds per session.
	caps := fmt.Sprint(streams + 1024)
	raised := append(slices.Clone(flags), "--max-streams", caps, "--max-streams-total", caps)
	origin, res, err := e.gatedStreams(ctx, "streams", raised, raised)
	if origin != nil {
		defer e.ps.stop(origin)
	}
	if err != nil {
		return err
	}
	// The same load against nodes with the default caps: most streams are
	// answered busy, and the caps bound the relay's memory.
	dorigin, def, err := e.gatedStreams(ctx, "streams-default-caps", flags, flags)
	if dorigin != nil {
		e.ps.stop(dorigin)
	}
	if err != nil {
		return err
	}
	if res.failed > 0 {
		e.note("streams: %d of %d GETs failed (%d busy) with raised caps; first error: %v", res.failed, streams, res.busy, res.firstErr)
	}
	if def.failed > def.busy {
		e.note("streams: with the default caps %d GETs failed other than busy; first error: %v", def.failed-def.busy, def.firstErr)
	}
	bound := func(r streamsResult) int64 { return 50<<20 + int64(w)*r.open }
	col := func(r streamsResult) []string {
		return []string{
			fmtMiB(r.before),
			fmt.Sprintf("%d (after %s)", r.open, r.setup.Round(time.Millisecond)),
			fmt.Sprint(r.busy),
			fmtMiB(r.during),
			fmtMiB(r.peak),
			fmt.Sprintf("%s (%d done at %s)", fmtMiB(r.after), int64(streams)-r.failed, r.done.Round(time.Millisecond)),
			fmtMiB(r.afterSettle),
			fmtMiB(bound(r)),
			fmt.Sprintf("%.0f KiB", float64(r.peak-r.before)/float64(max(r.open, 1))/1024),
		}
	}
	names := []string{"relay RSS before (links warm, idle)", "streams open, buffers full",
		"answered busy", "relay RSS during", "relay RSS peak", "relay RSS after all GETs ended",
		fmt.Sprintf("relay RSS after + %s idle", res.settle), "bound: 50 MiB + window × open streams",
		"peak per open stream above the idle RSS"}
	rr, dr := col(res), col(def)
	var rows [][]string
	for i, n := range names {
		rows = append(rows, []string{n, rr[i], dr[i]})
	}
	rep.add(Section{
		Title: fmt.Sprintf("Memory: %d concurrent streams through one relay", streams),
		Intro: fmt.Sprintf(`One relay process and one origin process, both --stream-window %s; "caps
raised": both nodes also --max-streams %s --max-streams-total %s, so that every stream is
let in; "default caps": --max-streams 256 --max-streams-total 1024, the defaults.
%d relay.Clients (<= %d streams each, spread by the client over sessions of up to 128
streams) each GET a %s file from the origin's cache; the client's writer blocks on its
first write until all streams have data (or were refused), so every open stream stays
open with the client's, the relay's and the origin's buffers full (the file is larger
than what the client side buffers). The clients' idle timeout is %s. RSS is VmRSS of
the relay process from /proc/PID/status.`, fmtSize(int64(w)), caps, caps,
			(streams+streamsPerClient-1)/streamsPerClient, streamsPerClient, fmtSize(e.cfg.StreamsFile), streamsTimeout),
		Header: []string{"", "caps raised", "default caps"},
		Rows:   rows,
	})
	rep.goal(fmt.Sprintf("relay RSS with %d streams (caps raised)", streams), "<= 50 MiB + window × streams = "+fmtMiB(bound(res)),
		fmt.Sprintf("peak %s, %d streams open", fmtMiB(res.peak), res.open), res.peak <= bound(res) && res.open == int64(streams))
	rep.goal(fmt.Sprintf("relay RSS with %d streams offered (default caps)", streams), "<= 50 MiB + window × open streams = "+fmtMiB(bound(def)),
		fmt.Sprintf("peak %s, %d streams open, %d busy", fmtMiB(def.peak), def.open, def.busy), def.peak <= bound(def))
	return e.manyRequests(ctx, rep, flags, origin)
}

// manyRequests sends Requests small GETs through a fresh relay at
// concurrency 64 and samples its RSS every tenth of them.
func (e *env) manyRequests(ctx context.Context, rep *Report, flags []string, origin *proc) error {
	rl, err := e.startNode(ctx, "requests-relay", flags...)
	if err != nil {
		return err
	}
	defer e.ps.stop(rl)
	cl, err := newClient([]string{rl.addr, origin.addr}, "auto", "sha256", 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	get := smallGetter(cl, e.cfg.SmallSize)
	const conc = 64
	total, step := e.cfg.Requests, max(e.cfg.Requests/10, 1)
	rows := [][]string{{"0 (links warm)", "—", fmtMiB(warmRSS(ctx, rl.pid(), get))}}
	var samples []int64
	var last int64
	var errs int
	for done := 0; done < total; {
		k := min(step, total-done)
		st := drive(ctx, conc, 0, k, get)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done += k
		errs += st.errs
		v, err := rss(rl.pid())
		if err != nil {
			return err
		}
		samples = append(samples, v)
		last = v
		rows = append(rows, []string{fmt.Sprint(done), fmt.Sprintf("%.0f", st.rps), fmtMiB(v)})
		e.logf("requests: %d done, %.0f req/s, relay RSS %s", done, st.rps, fmtMiB(v))
		if st.ok == 0 {
			return errors.Join(errors.New("requests: none succeeded"), st.firstErr)
		}
	}
	if errs > 0 {
		e.note("requests: %d of %d small GETs failed", errs, total)
	}
	rep.add(Section{
		Title: fmt.Sprintf("Memory: %d small GETs through one relay", total),
		Intro: fmt.Sprintf(`A fresh relay process (same flags) and the same origin; one relay.Client,
%d concurrent %s GETs at a time; relay RSS after each tenth.`, conc, fmtSize(e.cfg.SmallSize)),
		Header: []string{"requests done", "req/s (this tenth)", "relay RSS"},
		Rows:   rows,
	})
	// GC makes single samples noisy: compare the means of the first and
	// the last three samples.
	head, tail := meanRSS(samples[:min(3, len(samples))]), meanRSS(samples[max(0, len(samples)-3):])
	rep.goal(fmt.Sprintf("relay RSS does not grow over %d requests", total), "mean of last 3 tenths <= mean of first 3 × 1.10",
		fmt.Sprintf("%s → %s (%+.0f%%); %s at the end", fmtMiB(head), fmtMiB(tail), 100*(float64(tail)/float64(head)-1), fmtMiB(last)),
		tail <= head+head/10)
	return nil
}

func meanRSS(xs []int64) int64 {
	var sum int64
	for _, x := range xs {
		sum += x
	}
	return sum / int64(max(len(xs), 1))
}

// warmRSS warms the relay with one request and returns its RSS (0 on error).
func warmRSS(ctx context.Context, pid int, get func(context.Context) error) int64 {
	get(ctx)
	v, _ := rss(pid)
	return v
}
