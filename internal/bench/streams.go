package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaychain/relaychain/relay"
)

// streamsPerClient is how many of the concurrent streams share one client
// link: below a node's default limit of 1024 streams per inbound link.
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

func (e *env) runStreams(ctx context.Context, rep *Report) error {
	w := e.cfg.StreamsWindow
	streams := e.cfg.Streams
	flags := []string{"--stream-window", sizeArg(int64(w))}
	// The relay pools one link to the origin, so all the streams share it:
	// the origin must take more than its default 1024 streams per link.
	origin, err := e.startNode(ctx, "streams-origin", append(flags, "--root", e.root,
		"--max-streams", fmt.Sprint(streams+1024))...)
	if err != nil {
		return err
	}
	defer e.ps.stop(origin)
	rl, err := e.startNode(ctx, "streams-relay", flags...)
	if err != nil {
		return err
	}
	defer e.ps.stop(rl)
	rt := []string{rl.addr, origin.addr}
	nc := (streams + streamsPerClient - 1) / streamsPerClient
	clients := make([]*relay.Client, nc)
	for i := range clients {
		// The default 30 s idle timeout is not enough here: the first
		// streams' data fills the one relay-origin link, and the later
		// streams' answers queue behind it (see the report).
		cl, err := newClientTimeout(rt, "mux", "crc32c", w, streamsTimeout)
		if err != nil {
			return err
		}
		defer cl.Close()
		if _, err := cl.Get(ctx, fileSmall, io.Discard, nil); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		clients[i] = cl
	}
	// Load the file into the origin's cache.
	if _, err := clients[0].Get(ctx, fileStreams, io.Discard, nil); err != nil {
		return err
	}
	smp := &rssSampler{pid: rl.pid()}
	before := smp.sample()
	e.logf("streams: relay RSS before: %s; opening %d streams over %d links", fmtMiB(before), streams, nc)

	release := make(chan struct{})
	var arrived, failed atomic.Int64
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
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	// Wait until every stream has its first bytes (or failed), then until
	// the relay's RSS stops growing: its buffers are full.
	limit := time.Now().Add(streamsTimeout - 30*time.Second)
	lowMem := false // the machine's memory guard released the streams early
	for arrived.Load()+failed.Load() < int64(streams) && time.Now().Before(limit) && ctx.Err() == nil {
		smp.sample()
		if lowMem = memAvailable() < memGuard; lowMem {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	open := arrived.Load()
	setup := time.Since(t0)
	last, stable := smp.sample(), 0
	for stable < 10 && !lowMem && time.Now().Before(limit) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		lowMem = memAvailable() < memGuard
		v := smp.sample()
		if v-last < last/200 { // under 0.5% growth
			stable++
		} else {
			stable = 0
		}
		last = v
	}
	during := smp.sample()
	peak := smp.peak
	e.logf("streams: %d open (%d failed) after %s; relay RSS %s (peak %s)", open, failed.Load(), setup.Round(time.Millisecond), fmtMiB(during), fmtMiB(peak))
	if lowMem {
		e.note("streams: the machine's available memory fell under %s with %d streams open: released early", fmtMiB(memGuard), open)
	}
	close(release)
	wg.Wait()
	done := time.Since(t0)
	after := smp.sample()
	settle := 5 * time.Second
	if e.cfg.Streams < 1000 {
		settle = 500 * time.Millisecond
	}
	time.Sleep(settle)
	afterSettle := smp.sample()
	if f := failed.Load(); f > 0 {
		err, _ := firstErr.Load().(error)
		e.note("streams: %d of %d GETs failed; first error: %v", f, streams, err)
	}
	bound := 50<<20 + int64(w)*open
	rep.add(Section{
		Title: fmt.Sprintf("Memory: %d concurrent streams through one relay", streams),
		Intro: fmt.Sprintf(`One relay process and one origin process, both --stream-window %s (the
origin also --max-streams %d, since the relay carries every stream over its one
pooled link to it). %d relay.Clients (%d links, <= %d streams each) each GET a %s file
from the origin's cache; the client's writer blocks on its first write until all
streams have data, so every stream stays open with the client's, the relay's and the
origin's buffers full (the file is larger than what the client side buffers). The
clients' idle timeout is %s (not the default 30 s: later streams' answers wait behind
the first streams' data on the one relay-origin link). RSS is VmRSS of the relay
process from /proc/PID/status.`, fmtSize(int64(w)), streams+1024, nc, nc, streamsPerClient, fmtSize(e.cfg.StreamsFile), streamsTimeout),
		Header: []string{"when", "relay RSS"},
		Rows: [][]string{
			{"before (links warm, idle)", fmtMiB(before)},
			{fmt.Sprintf("during: %d streams open, buffers full (after %s)", open, setup.Round(time.Millisecond)), fmtMiB(during)},
			{"peak during", fmtMiB(peak)},
			{fmt.Sprintf("after: all %d GETs done (at %s)", streams-int(failed.Load()), done.Round(time.Millisecond)), fmtMiB(after)},
			{fmt.Sprintf("after + %s idle", settle), fmtMiB(afterSettle)},
			{"bound: 50 MiB + window × open streams", fmtMiB(bound)},
		},
		Text: fmt.Sprintf("Peak per open stream above the idle RSS: %.0f KiB (window %s).",
			float64(peak-before)/float64(max(open, 1))/1024, fmtSize(int64(w))),
	})
	rep.goal(fmt.Sprintf("relay RSS with %d streams", streams), "<= 50 MiB + window × streams = "+fmtMiB(bound),
		fmt.Sprintf("peak %s, %d streams open", fmtMiB(peak), open), peak <= bound && open == int64(streams))
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
