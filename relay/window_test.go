package relay

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

// budgetWriter discards what it is given and records, on each write, the
// most window growth any of nodes holds.
type budgetWriter struct {
	nodes []*testNode
	peak  atomic.Int64
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	for _, n := range w.nodes {
		if u := n.ycfg.WindowGrowth.Used(); u > w.peak.Load() {
			w.peak.Store(u)
		}
	}
	return len(p), nil
}

// A file moved over the mux through relays lets stream windows grow at
// the hops whose reader keeps up, within each node's budget, and every
// hop's growth goes back to its budget once the transfer is over. The
// nodes' budget is one doubling of one window, so that it binds.
func TestMuxWindowGrowth(t *testing.T) {
	root, files := sharedFiles(t)
	f := files[sizeName(mediumSize)]
	const budget = DefaultStreamWindow
	nodes := []*testNode{startNode(t, Config{WindowBudget: budget}), startNode(t, Config{WindowBudget: budget}),
		startNode(t, Config{Root: root, CacheSize: -1, WindowBudget: budget})}
	rt := route.Route{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux, Verify: VerifyCRC64})
	ctx := testCtx(t, time.Minute)
	w := &budgetWriter{nodes: nodes}
	var peak int64
	for i := 0; i < 3 && peak == 0; i++ { // a hit once the first GET cached it
		info, err := c.Get(ctx, f.Name, w, nil)
		if err != nil || info.Size != f.Size {
			t.Fatalf("Get %s: %v (size %d, want %d)", f.Name, err, info.Size, f.Size)
		}
		peak = w.peak.Load()
	}
	if peak == 0 {
		t.Fatalf("no node's stream window grew over 3 GETs of %d bytes", f.Size)
	}
	if peak > budget {
		t.Fatalf("a node held %d bytes of growth, above its budget %d", peak, budget)
	}
	for _, n := range nodes {
		if u := n.ycfg.WindowGrowth.Used(); u > budget {
			t.Fatalf("%s holds %d bytes of growth, above its budget %d", n.Addr, u, budget)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for n.ycfg.WindowGrowth.Used() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still holds %d bytes of window growth after the GETs", n.Addr, n.ycfg.WindowGrowth.Used())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("peak growth held by one node: %d bytes", peak)
}

// StreamWindowMax and WindowBudget: growth is on by default, off with a
// negative budget or a max at the start window, and a max above 1 GiB is
// refused, as is a start window below 256 KiB, by nodes and clients alike.
func TestWindowGrowthConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		grows   bool
		wantErr string
	}{
		{"defaults", Config{}, true, ""},
		{"budget off", Config{WindowBudget: -1}, false, ""},
		{"max at the window", Config{StreamWindow: 4 << 20, StreamWindowMax: 4 << 20}, false, ""},
		{"max below the window", Config{StreamWindow: 4 << 20, StreamWindowMax: 1 << 20}, false, ""},
		{"max too large", Config{StreamWindowMax: 1<<30 + 1}, false, "at most 1 GiB"},
		{"window too small", Config{StreamWindow: 128 << 10}, false, "at least 256 KiB"},
	}
	for _, bad := range []struct {
		cfg  ClientConfig
		want string
	}{
		{ClientConfig{StreamWindowMax: 1<<30 + 1}, "at most 1 GiB"},
		{ClientConfig{StreamWindow: 128 << 10}, "at least 256 KiB"},
	} {
		bad.cfg.Route = []string{"127.0.0.1:1"}
		if _, err := NewClient(bad.cfg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("client with windows %d..%d: got %v, want an error with %q", bad.cfg.StreamWindow, bad.cfg.StreamWindowMax, err, bad.want)
		}
	}
	for _, tc := range cases {
		cfg, err := tc.cfg.withDefaults()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got error %v, want one with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		y := yamuxConfig(cfg.StreamWindow, cfg.StreamWindowMax, cfg.WindowBudget, cfg.IdleTimeout)
		if got := y.WindowGrowth != nil; got != tc.grows {
			t.Errorf("%s: growth %v, want %v", tc.name, got, tc.grows)
		}
		if tc.grows && (y.WindowGrowth.Max() != DefaultStreamWindowMax || y.MaxStreamWindowSize != DefaultStreamWindow) {
			t.Errorf("%s: windows %d up to %d, want %d up to %d", tc.name, y.MaxStreamWindowSize, y.WindowGrowth.Max(),
				DefaultStreamWindow, DefaultStreamWindowMax)
		}
	}
}
