package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"time"

	"github.com/relaychain/relaychain/internal/pki"
	"github.com/relaychain/relaychain/relay"
)

// The TLS suite measures what mutual TLS costs on bulk transfers: the same
// 1 GiB file through the same number of relays, raw and mux, over a chain
// of nodes started with --tls-cert/--tls-key/--tls-ca (every link TLS 1.3,
// the client's too) next to the plaintext chain and the Go TCP baseline.
// With TLS a relay decrypts and re-encrypts every byte in user space
// instead of splicing, and the origin reads the file and encrypts it
// instead of using sendfile.

// tlsSystem is one row of the TLS table.
type tlsSystem struct {
	label string
	fetch func(context.Context) (float64, error)
	pids  []int // the chain's processes (relays and origin), for CPU time
}

// tlsChain starts n relays and a cache-off origin, all with mutual TLS,
// and returns the route and every pid, relays first.
func (e *env) tlsChain(ctx context.Context, n int, ch pki.Chain) ([]string, []int, error) {
	flags := []string{"--tls-cert", ch.NodeCert, "--tls-key", ch.NodeKey, "--tls-ca", ch.CA}
	origin, err := e.startNode(ctx, "tls-origin-miss", append([]string{"--root", e.root, "--cache-size", "0"}, flags...)...)
	if err != nil {
		return nil, nil, err
	}
	var rt []string
	var pids []int
	for i := 1; i <= n; i++ {
		p, err := e.startNode(ctx, fmt.Sprintf("tls-relay%d", i), flags...)
		if err != nil {
			return nil, nil, err
		}
		rt = append(rt, p.addr)
		pids = append(pids, p.pid())
	}
	return append(rt, origin.addr), append(pids, origin.pid()), nil
}

func (e *env) runTLS(ctx context.Context, rep *Report) error {
	n, size := e.cfg.TLSRelays, e.cfg.Size
	ch, err := pki.WriteChain(filepath.Join(e.dir, "tls"), []string{"127.0.0.1", "::1", "localhost"}, 24*time.Hour)
	if err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	id, err := relay.LoadTLS(ch.ClientCert, ch.ClientKey, ch.CA)
	if err != nil {
		return err
	}
	tlsRoute, tlsPids, err := e.tlsChain(ctx, n, ch)
	if err != nil {
		return err
	}

	// The plaintext chain: the shared relays and the cache-off origin.
	miss, err := e.missOrigin(ctx)
	if err != nil {
		return err
	}
	plainRoute, err := e.rcRoute(ctx, n, miss)
	if err != nil {
		return err
	}
	var plainPids []int
	for _, p := range e.rcRelays[:n] {
		plainPids = append(plainPids, p.pid())
	}
	plainPids = append(plainPids, miss.pid())

	first, err := e.goChain(ctx, n, fileMiss)
	if err != nil {
		return err
	}
	goPids := e.goPids[goKey{n, fileMiss}]

	systems := []tlsSystem{{label: baselineLabel, fetch: tcpFetch(first, size), pids: goPids}}
	var clients []*relay.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, t := range []string{"raw", "mux"} {
		for _, withTLS := range []bool{false, true} {
			cfg := relay.ClientConfig{Route: plainRoute, Verify: relay.VerifyCRC64, Transport: relay.TransportRaw}
			label, pids := fmt.Sprintf("relaychain %s, plaintext", t), plainPids
			if t == "mux" {
				cfg.Transport = relay.TransportMux
			}
			if withTLS {
				cfg.Route, cfg.TLS = tlsRoute, id
				label, pids = fmt.Sprintf("relaychain %s, mutual TLS", t), tlsPids
			}
			cl, err := relay.NewClient(cfg)
			if err != nil {
				return err
			}
			clients = append(clients, cl)
			// Warm the links; remember the file's digest at the origin (a
			// first send hashes in user space, which is not what is measured).
			if _, err := cl.Get(ctx, fileSmall, io.Discard, nil); err != nil {
				return fmt.Errorf("%s: %s: %w", label, warmName, err)
			}
			f := rcFetch(cl, fileMiss, size)
			if withTLS && t == "raw" {
				if _, err := f(ctx); err != nil {
					return fmt.Errorf("%s: warm-up: %w", label, err)
				}
			}
			systems = append(systems, tlsSystem{label: label, fetch: f, pids: pids})
		}
	}

	mbs := make([][]float64, len(systems))
	cpus := make([][]float64, len(systems)) // chain CPU s per GiB
	clientCPU := make([][]float64, len(systems))
	for run := 1; run <= e.cfg.Runs; run++ {
		for i, s := range systems {
			c0, self0 := cpuTimes(s.pids), selfCPU()
			v, err := s.fetch(ctx)
			if err != nil {
				return fmt.Errorf("tls: %s through %d relays: %w", s.label, n, err)
			}
			chain, self := cpuTimes(s.pids)-c0, selfCPU()-self0
			gib := float64(size) / (1 << 30)
			mbs[i] = append(mbs[i], v)
			cpus[i] = append(cpus[i], chain.Seconds()/gib)
			clientCPU[i] = append(clientCPU[i], self.Seconds()/gib)
			e.logf("tls run %d/%d, %d relays, %s: %.0f MB/s, chain CPU %.2f s/GiB, client CPU %.2f s/GiB",
				run, e.cfg.Runs, n, s.label, v, chain.Seconds()/gib, self.Seconds()/gib)
		}
	}
	base := median(mbs[0])
	var rows [][]string
	med := map[string]float64{}
	for i, s := range systems {
		v := median(mbs[i])
		med[s.label] = v
		vsPlain := "—"
		if i > 0 && i%2 == 0 { // a TLS row follows its plaintext row
			vsPlain = fmtRatio(v, median(mbs[i-1]))
		}
		rows = append(rows, []string{s.label, fmtMBs(v), fmtRatio(v, base), vsPlain,
			fmt.Sprintf("%.2f", median(cpus[i])), fmt.Sprintf("%.2f", median(clientCPU[i]))})
	}
	rep.add(Section{
		Title: fmt.Sprintf("TLS cost: one %s file through %d relays", fmtSize(size), n),
		Intro: fmt.Sprintf(`Mutual TLS 1.3 on every link (client → relays → origin; certificates from
internal/pki.WriteChain in the work directory; nodes started with --tls-cert, --tls-key,
--tls-ca and the client with the same) against the same chain in plaintext and the Go
TCP chain, in interleaved rounds; median of %d runs. Origin --cache-size 0, the file's
digest remembered (plaintext: sendfile at the origin, splice in the relays); verify
crc64. "chain CPU" is the user + system CPU time of the chain's processes (relays
and origin, from /proc/PID/stat) per GiB moved; "client CPU" that of the bench
process, which runs the client. On %d cores every CPU second per GiB caps throughput.`,
			e.cfg.Runs, runtime.NumCPU()),
		Header: []string{"system", "MB/s", "vs Go TCP", "TLS / plaintext", "chain CPU s/GiB", "client CPU s/GiB"},
		Rows:   rows,
	})
	return nil
}
