package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaychain/relaychain/relay"
)

// Cache modes of the bulk suite, as the terminal sees the GET.
const (
	cacheHit        = "hit"                     // served from the cached slice
	cacheMissFirst  = "miss, first send"        // streamed, hashed in user space
	cacheMissMemo   = "miss, digest remembered" // streamed with sendfile
	baselineLabel   = "Go TCP chain (baseline)" // the reference of every ratio
	socatLabel      = "socat -b 131072"         //
	nginxBulkLabel  = "nginx chain + curl"      //
	bulkMeasureTime = 10 * time.Minute          // bound on one transfer
	warmName        = "warm-up GET of the small file"
)

// bulkSystem is one row of the bulk table for one chain length.
type bulkSystem struct {
	label string
	prep  func() error                           // before each measurement
	fetch func(context.Context) (float64, error) // MB/s of one transfer
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func rcLabel(transport, verify, cache string) string {
	return fmt.Sprintf("relaychain %s, %s, %s", transport, verify, cache)
}

// bulkLabels returns the table's row order.
func (e *env) bulkLabels() []string {
	labels := []string{baselineLabel}
	if e.socat != "" {
		labels = append(labels, socatLabel)
	}
	if e.nginx != "" {
		labels = append(labels, nginxBulkLabel)
	}
	for _, t := range e.cfg.Transports {
		for _, v := range e.cfg.Verifies {
			for _, c := range []string{cacheHit, cacheMissFirst, cacheMissMemo} {
				labels = append(labels, rcLabel(t, v, c))
			}
		}
	}
	return labels
}

// rcFetch returns a fetch of name through cl.
func rcFetch(cl *relay.Client, name string, size int64) func(context.Context) (float64, error) {
	return func(ctx context.Context) (float64, error) {
		ctx, cancel := context.WithTimeout(ctx, bulkMeasureTime)
		defer cancel()
		t0 := time.Now()
		info, err := cl.Get(ctx, name, io.Discard, nil)
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if info.Size != size {
			return 0, fmt.Errorf("got %d bytes, want %d", info.Size, size)
		}
		return float64(size) / d.Seconds() / 1e6, nil
	}
}

// tcpFetch returns a fetch of the whole stream from addr.
func tcpFetch(addr string, size int64) func(context.Context) (float64, error) {
	buf := make([]byte, 256<<10)
	return func(ctx context.Context) (float64, error) {
		ctx, cancel := context.WithTimeout(ctx, bulkMeasureTime)
		defer cancel()
		t0 := time.Now()
		if _, err := fetchTCP(ctx, addr, size, buf); err != nil {
			return 0, err
		}
		return float64(size) / time.Since(t0).Seconds() / 1e6, nil
	}
}

// bulkSystems starts what the rows need for a chain of n relays.
func (e *env) bulkSystems(ctx context.Context, n int, clients *[]*relay.Client) ([]bulkSystem, error) {
	size := e.cfg.Size
	var out []bulkSystem
	first, err := e.goChain(ctx, n, fileMiss)
	if err != nil {
		return nil, err
	}
	out = append(out, bulkSystem{label: baselineLabel, fetch: tcpFetch(first, size)})
	if e.socat != "" && n > 0 {
		first, err := e.socatChain(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, bulkSystem{label: socatLabel, fetch: tcpFetch(first, size)})
	}
	if e.nginx != "" {
		url, err := e.nginxURL(ctx, n, fileMiss)
		if err != nil {
			return nil, err
		}
		out = append(out, bulkSystem{label: nginxBulkLabel, fetch: func(ctx context.Context) (float64, error) {
			return curlSpeed(ctx, url, size)
		}})
	}
	hit, err := e.hitOrigin(ctx)
	if err != nil {
		return nil, err
	}
	miss, err := e.missOrigin(ctx)
	if err != nil {
		return nil, err
	}
	missPath := filepath.Join(e.root, fileMiss)
	touch := func() error {
		// A new mtime is a new file version: the terminal's digest memo
		// misses and the next send hashes in user space.
		t := time.Now()
		return os.Chtimes(missPath, t, t)
	}
	// The mux moves a gigabyte in seconds, not in one: outside FullMatrixAt
	// it is measured with crc64 only, and without the first send (which
	// raw shows: it is the terminal's hashing, whatever the transport).
	full := slices.Contains(e.cfg.FullMatrixAt, n)
	for _, t := range e.cfg.Transports {
		for _, v := range e.cfg.Verifies {
			if t == "mux" && v == "sha256" && !full && slices.Contains(e.cfg.Verifies, "crc64") {
				continue
			}
			for _, o := range []struct {
				origin *proc
				name   string
			}{{hit, fileHit}, {miss, fileMiss}} {
				rt, err := e.rcRoute(ctx, n, o.origin)
				if err != nil {
					return nil, err
				}
				cl, err := newClient(rt, t, v, 0)
				if err != nil {
					return nil, err
				}
				*clients = append(*clients, cl)
				// Warm the links (and check the route) with a small GET.
				if _, err := cl.Get(ctx, fileSmall, io.Discard, nil); err != nil {
					return nil, fmt.Errorf("%s through %d relays: %s: %w", t, n, warmName, err)
				}
				f := rcFetch(cl, o.name, size)
				if o.origin == hit {
					out = append(out, bulkSystem{label: rcLabel(t, v, cacheHit), fetch: f})
					continue
				}
				if full || t == "raw" {
					out = append(out, bulkSystem{label: rcLabel(t, v, cacheMissFirst), prep: touch, fetch: f})
				}
				out = append(out, bulkSystem{label: rcLabel(t, v, cacheMissMemo), fetch: f})
			}
		}
	}
	return out, nil
}

// warmHit loads the bulk file into the hit origin's cache.
func (e *env) warmHit(ctx context.Context) error {
	hit, err := e.hitOrigin(ctx)
	if err != nil {
		return err
	}
	cl, err := newClient([]string{hit.addr}, "raw", "crc64", 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	for range 3 {
		if _, err := cl.Get(ctx, fileHit, io.Discard, nil); err != nil {
			return fmt.Errorf("load %s into the cache: %w", fileHit, err)
		}
		fi, err := cl.Stat(ctx, fileHit)
		if err != nil {
			return err
		}
		if fi.Cached {
			return nil
		}
	}
	return fmt.Errorf("the origin does not keep %s in its cache", fileHit)
}

func (e *env) runBulk(ctx context.Context, rep *Report) error {
	if err := e.warmHit(ctx); err != nil {
		return err
	}
	var clients []*relay.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	ns := slices.Clone(e.cfg.Relays)
	systems := map[int][]bulkSystem{}
	for _, n := range ns {
		s, err := e.bulkSystems(ctx, n, &clients)
		if err != nil {
			return fmt.Errorf("start chains of %d relays: %w", n, err)
		}
		systems[n] = s
	}
	samples := map[string]map[int][]float64{}
	for run := 1; run <= e.cfg.Runs; run++ {
		for _, n := range ns {
			for _, s := range systems[n] {
				if s.prep != nil {
					if err := s.prep(); err != nil {
						return err
					}
				}
				v, err := s.fetch(ctx)
				if err != nil {
					return fmt.Errorf("%s through %d relays: %w", s.label, n, err)
				}
				if samples[s.label] == nil {
					samples[s.label] = map[int][]float64{}
				}
				samples[s.label][n] = append(samples[s.label][n], v)
				e.logf("bulk run %d/%d, %d relays, %s: %.0f MB/s", run, e.cfg.Runs, n, s.label, v)
			}
		}
	}

	med := func(label string, n int) float64 { return median(samples[label][n]) }
	header := []string{"system"}
	for _, n := range ns {
		header = append(header, fmt.Sprintf("%d relays MB/s", n), "ratio")
	}
	var rows [][]string
	for _, l := range e.bulkLabels() {
		if samples[l] == nil {
			continue // measured at no chain length
		}
		row := []string{l}
		for _, n := range ns {
			v := med(l, n)
			row = append(row, fmtMBs(v), fmtRatio(v, med(baselineLabel, n)))
		}
		rows = append(rows, row)
	}
	rep.add(Section{
		Title: fmt.Sprintf("Bulk: one %s file through N relays", fmtSize(e.cfg.Size)),
		Intro: fmt.Sprintf(`Median of %d runs; MB/s = 10^6 bytes/s from the request to the last byte
(and trailer); ratio = against the Go TCP chain through the same number of relays,
measured in the same interleaved rounds. Every hop is its own process on loopback.
The Go TCP and socat clients read into a 256 KiB buffer and discard; relaychain's
client (relay.Client in the bench process) writes to io.Discard after checking
CRC-64 (and SHA-256 with sha256); nginx is fetched with `+"`curl -o /dev/null`"+`.
"hit": origin --cache-size %s (the file is in memory); "miss": origin --cache-size 0,
"first send" after a touch of the file (the terminal hashes while it sends),
"digest remembered" right after (the terminal sends with sendfile).
Every combination of transport, verify and cache is measured through %s relays; through
the other chain lengths the mux is measured with crc64, hit and digest remembered
("—": not measured).`, e.cfg.Runs, fmtSize(2*e.cfg.Size+64<<20), ints(e.cfg.FullMatrixAt)),
		Header: header,
		Rows:   rows,
	})

	if slices.Contains(ns, 3) {
		base := med(baselineLabel, 3)
		for _, c := range []string{cacheMissMemo, cacheHit} {
			if slices.Contains(e.cfg.Transports, "raw") && slices.Contains(e.cfg.Verifies, "crc64") {
				v := med(rcLabel("raw", "crc64", c), 3)
				rep.goal("raw, 3 relays, vs Go TCP chain ("+c+")", ">= 0.95",
					fmt.Sprintf("%s MB/s vs %s = %s", fmtMBs(v), fmtMBs(base), fmtRatio3(v, base)), v >= 0.95*base)
				if e.socat != "" {
					s := med(socatLabel, 3)
					rep.goal("raw, 3 relays, vs socat ("+c+")", ">= 1.00",
						fmt.Sprintf("%s MB/s vs %s = %s", fmtMBs(v), fmtMBs(s), fmtRatio3(v, s)), v >= s)
				}
			}
			if slices.Contains(e.cfg.Transports, "mux") && slices.Contains(e.cfg.Verifies, "crc64") {
				v := med(rcLabel("mux", "crc64", c), 3)
				rep.goal("mux, 3 relays, vs Go TCP chain ("+c+")", ">= 0.70",
					fmt.Sprintf("%s MB/s vs %s = %s", fmtMBs(v), fmtMBs(base), fmtRatio3(v, base)), v >= 0.70*base)
			}
		}
	}
	return nil
}
