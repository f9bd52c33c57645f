package relay

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
	"github.com/relaychain/relaychain/third_party/yamux"
)

// inlined returns how many relayed requests each relay of nodes served on
// a receive loop.
func inlined(nodes []*testNode) []int64 {
	out := make([]int64, len(nodes))
	for i, n := range nodes {
		out[i] = n.inlined.Load()
	}
	return out
}

// TestInlineRelay: once a relay's link to the next hop is up, it serves a
// mux request on the receive loop (serveInline), and the files, listings
// and stats come through whole; the first request, which dials the next
// hop, and every raw request go through a goroutine as before.
func TestInlineRelay(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	nodes, rt := chain(t, 2, terminalConfig(root))
	relays := nodes[:2]
	ctx := testCtx(t, 2*time.Minute)
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})

	checkGet(t, ctx, c, files[sizeName(1)]) // dials each next hop
	if got := inlined(relays); got[0] != 0 || got[1] != 0 {
		t.Fatalf("first request: inlined %v, want none (each relay had to dial)", got)
	}
	var n int64
	for _, size := range append(append([]int64{}, matrixSizes...), mixedSizes...) {
		checkGet(t, ctx, c, files[sizeName(size)])
		n++
	}
	if _, err := c.List(ctx); err != nil {
		t.Fatalf("List: %v", err)
	}
	if _, err := c.Stat(ctx, files[sizeName(1000)].Name); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	n += 2
	for i, got := range inlined(relays) {
		if got != n {
			t.Errorf("relay %d: inlined %d of %d requests on a warm link, want all", i, got, n)
		}
	}

	raw := newClient(t, ClientConfig{Route: rt, Transport: TransportRaw})
	before := inlined(relays)
	for range 2 {
		checkGet(t, ctx, raw, files[sizeName(300_000)])
	}
	if got := inlined(relays); got[0] != before[0] || got[1] != before[1] {
		t.Errorf("raw requests: inlined went from %v to %v, want no change", before, got)
	}
}

// TestInlineConcurrent: many requests at once on warm links, served on
// the receive loop (their forwarded requests held back and written
// together when one read brought several) or by goroutines when a link
// to the next hop is busy or full, all arrive whole.
func TestInlineConcurrent(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	nodes, rt := chain(t, 2, terminalConfig(root))
	ctx := testCtx(t, 2*time.Minute)
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	checkGet(t, ctx, c, files[sizeName(1)])
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for _, size := range mixedSizes[:2] {
				checkGet(t, ctx, c, files[sizeName(size)])
			}
		})
	}
	wg.Wait()
	if got := inlined(nodes[:2]); got[0] == 0 || got[1] == 0 {
		t.Errorf("inlined %v, want some requests served on the receive loop", got)
	}
}

// TestInlineWhileBusy: with many streams in flight at a relay (held by a
// client that stops reading), a request on a warm link is still served on
// the receive loop, and so is one after they are over.
func TestInlineWhileBusy(t *testing.T) {
	t.Parallel()
	const held = 8
	root, files := sharedFiles(t)
	big := bigFile(t)
	nodes, rt := chain(t, 1, terminalConfig(root))
	relay := nodes[0]
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	small := files[sizeName(1000)]
	checkGet(t, testCtx(t, time.Minute), c, small) // warm links

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var holding sync.WaitGroup
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	defer free()
	for range held {
		gate := newGate(io.Discard, 64<<10)
		gate.release = release
		holding.Go(func() { c.Get(ctx, big.Name, gate, nil) })
		waitFor(t, gate.reached, time.Minute, "a held GET's first bytes")
	}
	before := relay.inlined.Load()
	checkGet(t, testCtx(t, time.Minute), c, small)
	if got := relay.inlined.Load(); got != before+1 {
		t.Errorf("with %d streams in flight: inlined went from %d to %d, want one more", held+1, before, got)
	}

	cancel()
	free()
	holding.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for relay.streams.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	checkGet(t, testCtx(t, time.Minute), c, small)
	if got := relay.inlined.Load(); got != before+2 {
		t.Errorf("after the held GETs ended (%d streams in flight): inlined went from %d to %d, want two more", relay.streams.Load(), before, got)
	}
}

// TestInlineCancel: a cancel reaches the terminal through relays that
// served the request on their receive loops, and nothing is left running.
func TestInlineCancel(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	big := bigFile(t)
	logs := make([]*logRecorder, 3)
	term := terminalConfig(root)
	logs[2], term.Logger = recordedLogger(t)
	relays := make([]*testNode, 2)
	rt := make([]string, 3)
	for i := range relays {
		var cfg Config
		logs[i], cfg.Logger = recordedLogger(t)
		relays[i] = startNode(t, cfg)
		rt[i] = relays[i].Addr
	}
	rt[2] = startNode(t, term).Addr
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	checkGet(t, testCtx(t, time.Minute), c, files[sizeName(1)]) // warm links

	cancelMidway(t, c, big.Name, 4<<20, 0)
	if missing := waitLogged(logs, big.Name, 5*time.Second); len(missing) > 0 {
		t.Fatalf("5s after the cancel, nodes %v had not finished the request", missing)
	}
	recs := logs[len(rt)-1].requests(big.Name)
	if len(recs) != 1 || recs[0]["err"] == "" {
		t.Errorf("terminal: got %v, want one request line with the send aborted", recs)
	}
	if got := inlined(relays); got[0] != 1 || got[1] != 1 {
		t.Errorf("inlined %v, want the canceled request served on each relay's receive loop", got)
	}
	for i, l := range logs[:len(rt)-1] {
		if recs := l.requests(big.Name); len(recs) != 1 {
			t.Errorf("relay %d: got %d request lines, want 1", i, len(recs))
		}
	}
}

// TestInlineSplitRequest: a request whose frame reaches a relay in two
// parts is not served on the receive loop, which sees only the first part,
// but by a goroutine (serveStream, then forward, which reads the rest),
// and the file comes through whole; on the same warm link, a request sent
// whole is inlined. The link opens its streams lazily, as relay.Client's
// do, so that a stream's first frame carries its first bytes.
func TestInlineSplitRequest(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	nodes, rt := chain(t, 1, terminalConfig(root))
	relay := nodes[0]
	ctx := testCtx(t, time.Minute)
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	f := files[sizeName(300_000)]
	checkGet(t, ctx, c, f) // dials the next hop

	req := route.Request{Op: route.OpGet, Route: rt, Name: f.Name}
	frame, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame = route.AppendStart(frame, 0)
	link := rawLinkWith(t, relay.Addr, func(c *yamux.Config) { c.LazyOpen = true })
	// get sends the request in the given parts, 50 ms apart, the last
	// with the stream's FIN, and checks the answer and the file.
	get := func(what string, parts ...[]byte) {
		t.Helper()
		st, err := link.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.SetDeadline(time.Now().Add(30 * time.Second))
		for i, p := range parts {
			if i == len(parts)-1 {
				_, err = st.WriteClose(p)
			} else {
				_, err = st.Write(p)
				time.Sleep(50 * time.Millisecond) // this part is in, alone
			}
			if err != nil {
				t.Fatalf("%s: write: %v", what, err)
			}
		}
		resp, err := route.ReadResponse(st)
		if err != nil || resp.Status != route.StatusOK || resp.Size != f.Size {
			t.Fatalf("%s: got %v %q, size %d, err %v; want ok, size %d", what, resp.Status, resp.Message, resp.Size, err, f.Size)
		}
		body := make([]byte, f.Size)
		if _, err := io.ReadFull(st, body); err != nil {
			t.Fatalf("%s: read body: %v", what, err)
		}
		if sha256.Sum256(body) != f.Sum {
			t.Fatalf("%s: the body differs from the file", what)
		}
		if _, err := route.ReadTrailer(st); err != nil {
			t.Fatalf("%s: read trailer: %v", what, err)
		}
	}

	before := relay.inlined.Load()
	get("whole request", frame)
	if got := relay.inlined.Load(); got != before+1 {
		t.Fatalf("inlined went from %d to %d for a whole request on a warm link, want one more", before, got)
	}
	get("split request", frame[:3], frame[3:])
	if got := relay.inlined.Load(); got != before+1 {
		t.Errorf("inlined went from %d to %d for a request that came in two parts, want no change", before+1, got)
	}
}
