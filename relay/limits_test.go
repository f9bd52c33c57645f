package relay

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// TestBusyLinks fills a node's only link and checks the busy refusal over
// both transports, with and without TLS (where the busy preface comes
// after the handshake), both when the client dials the full node itself
// (hop 0) and when a relay does (hop 1, reported by the relay).
func TestBusyLinks(t *testing.T) {
	t.Parallel()
	ids := newTLSIDs(t)
	for _, secure := range []bool{false, true} {
		for _, tp := range transports {
			for _, where := range []string{"first-hop", "next-hop"} {
				name := fmt.Sprintf("tls=%v/%s/%s", secure, tp.name, where)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					var id *TLS
					if secure {
						id = ids.node
					}
					cfg := tlsTerminal("testdata/root", id)
					cfg.MaxLinks = 1
					full := startNode(t, cfg)
					var clientID *TLS
					if secure {
						clientID = ids.client
					}
					ctx := testCtx(t, 30*time.Second)
					holder := newClient(t, ClientConfig{Route: route.Route{full.Addr}, Transport: TransportMux, TLS: clientID})
					if _, err := holder.Stat(ctx, "hello.txt"); err != nil {
						t.Fatalf("the first link: %v", err)
					}
					rt, hop := route.Route{full.Addr}, 0
					if where == "next-hop" {
						rt, hop = route.Route{startNode(t, Config{TLS: id}).Addr, full.Addr}, 1
					}
					c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr, TLS: clientID})
					err := getErr(t, c, "hello.txt")
					wantHopError(t, err, ErrBusy, hop, full.Addr, "busy")

					// Once the holder is gone, the link is free.
					holder.Close()
					deadline := time.Now().Add(5 * time.Second)
					for {
						_, _, _, err = getSum(ctx, c, "hello.txt")
						if err == nil || !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
					if err != nil {
						t.Errorf("Get after the first link closed: %v", err)
					}
				})
			}
		}
	}
}

// TestBusyStreamsBehindRelay holds the only stream a node allows per
// link, on a relay and on a terminal behind one, and checks who is named
// busy.
func TestBusyStreamsBehindRelay(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	// The held file is larger than the stream windows on the way: a mux
	// GET sends START with its request, so a smaller file would be sent
	// whole and its streams would end while the holder waits.
	f := files[sizeName(mediumSize)]
	for _, tc := range []struct {
		name string
		// limit is the index of the node with MaxStreamsPerLink 1 in a
		// route of a relay and a terminal.
		limit int
		// sameLink says whether the second request shares the holder's
		// client (and so its link to the relay).
		sameLink bool
	}{
		// The relay counts the streams of the client's link.
		{"relay/same-client", 0, true},
		// A new client is a new link to the relay: not busy.
		{"relay/other-client", 0, false},
		// The relay carries every client's streams to the terminal on
		// one pooled link, so the terminal's limit counts them together.
		{"terminal/other-client", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfgs := []Config{{}, terminalConfig(root)}
			cfgs[tc.limit].MaxStreamsPerLink = 1
			term := startNode(t, cfgs[1])
			relay := startNode(t, cfgs[0])
			rt := route.Route{relay.Addr, term.Addr}
			holder := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
			ctx := testCtx(t, time.Minute)

			// The holder's Get stops once it has the response: with more
			// than the windows to send, its stream stays open at both nodes.
			held, release := make(chan struct{}), make(chan struct{})
			releaseOnce := sync.OnceFunc(func() { close(release) })
			var wg sync.WaitGroup
			var holderErr error
			wg.Go(func() {
				_, holderErr = holder.Get(ctx, f.Name, io.Discard, func(FileInfo) {
					close(held)
					<-release
				})
			})
			defer wg.Wait()
			defer releaseOnce()
			waitFor(t, held, 30*time.Second, "the holder's Get answered")

			c := holder
			if !tc.sameLink {
				c = newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
			}
			_, _, _, err := getSum(ctx, c, f.Name)
			if tc.name == "relay/other-client" {
				if err != nil {
					t.Errorf("Get on another link to the relay: %v", err)
				}
			} else {
				wantHopError(t, err, ErrBusy, tc.limit, rt[tc.limit], "busy", "more than 1 streams")
			}
			releaseOnce()
			wg.Wait()
			if holderErr != nil {
				t.Errorf("the holder's Get: %v", holderErr)
			}
		})
	}
}

// openSilent opens n streams on sess and sends nothing on them.
func openSilent(t *testing.T, sess *yamux.Session, n int) []*yamux.Stream {
	t.Helper()
	var sts []*yamux.Stream
	for range n {
		st, err := sess.OpenStream()
		if err != nil {
			t.Fatalf("open stream %d: %v", len(sts), err)
		}
		sts = append(sts, st)
	}
	return sts
}

// TestStreamLimitSparesOtherLinks holds every stream one link may have,
// silent: a further stream on that link is refused busy at once, and
// another link is served as usual.
func TestStreamLimitSparesOtherLinks(t *testing.T) {
	t.Parallel()
	cfg := terminalConfig("testdata/root")
	cfg.MaxStreamsPerLink = 4
	term := startNode(t, cfg)
	sess := rawLink(t, term.Addr)
	openSilent(t, sess, cfg.MaxStreamsPerLink)
	time.Sleep(50 * time.Millisecond) // let the node accept them

	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := st.Write(requestFrame(t, term.Addr, "hello.txt")); err != nil {
		t.Fatal(err)
	}
	resp, err := route.ReadResponse(st)
	if err != nil || resp.Status != route.StatusBusy {
		t.Errorf("a stream over the limit: got %v %q, err %v; want busy", resp.Status, resp.Message, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("busy answer after %v, want at once", d)
	}

	c := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	start = time.Now()
	if _, _, _, err := getSum(testCtx(t, 30*time.Second), c, "hello.txt"); err != nil {
		t.Errorf("Get on another link: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Get on another link took %v, want at once", d)
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestManyStreamsOneLink opens 10,000 streams on one link and reads none
// of them: 2,500 send nothing (the node waits for their headers, serving
// or refusing them busy; more than the node's MaxStreams), 100 ask for a
// file larger than the stream window (the terminal blocks on flow
// control), and the rest ask for a small file. The node keeps serving another
// client meanwhile, and once the link is closed its goroutines go back to
// about where they were. Not parallel: it counts goroutines.
//
// Under -race it opens 1,000 streams, 300 of them silent, against limits
// an eighth of the defaults: each silent stream holds a goroutine until
// the link closes, and with hundreds of them blocked at once the race
// detector (on a loaded machine) can take a minute to wake them.
func TestManyStreamsOneLink(t *testing.T) {
	root, files := sharedFiles(t)
	cfg := terminalConfig(root)
	cfg.HeaderTimeout = time.Minute // only the close may free the silent streams
	if raceEnabled() {
		cfg.MaxStreamsPerLink, cfg.MaxStreams = DefaultMaxStreamsPerLink/8, DefaultMaxStreams/8
	}
	term := startNode(t, cfg)
	good := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	ctx := testCtx(t, time.Minute)
	small, large := files[sizeName(1000)], files[sizeName(300_000)]
	checkGet(t, ctx, good, small) // warm: link up, both files cached
	checkGet(t, ctx, good, large)
	baseline := runtime.NumGoroutine()

	total, blocking, silent := 10_000, 100, 2_500
	if raceEnabled() {
		total, blocking, silent = 1_000, 50, 300
	}
	sess := rawLink(t, term.Addr)
	start := time.Now()
	// open opens n streams and writes req on each (nothing if nil). A node
	// may close a link that opens streams without end: then it stops.
	opened, dropped := 0, false
	open := func(req []byte, n int) {
		for ; n > 0 && !dropped; n-- {
			st, err := sess.OpenStream()
			if err == nil && req != nil {
				st.SetWriteDeadline(time.Now().Add(10 * time.Second))
				_, err = st.Write(req)
			}
			if err != nil {
				select {
				case <-sess.CloseChan():
					t.Logf("the node closed the link after %d streams: %v", opened, err)
					dropped = true
					return
				case <-time.After(5 * time.Second):
					t.Fatalf("stream %d: %v", opened, err)
				}
			}
			opened++
		}
	}
	ask := func(name string) []byte {
		return append(requestFrame(t, term.Addr, name), route.AppendStart(nil, 0)...)
	}
	open(ask(large.Name), blocking)
	open(ask(small.Name), total-blocking-silent)
	open(nil, silent)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("opening %d streams took %v", opened, d)
	}
	t.Logf("opened %d streams in %v; goroutines: %d (baseline %d)", opened, time.Since(start).Round(time.Millisecond), runtime.NumGoroutine(), baseline)

	// Let the node accept the silent streams (a goroutine each) before the
	// other client comes.
	for deadline := time.Now().Add(10 * time.Second); !dropped && runtime.NumGoroutine() < baseline+silent/2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	// Another client, on another link, is served at once.
	lap := time.Now()
	sum, got, _, err := getSum(ctx, good, large.Name)
	if err == nil {
		_, err = good.Stat(ctx, small.Name)
	}
	t.Logf("another client's Get and Stat took %v", time.Since(lap).Round(time.Millisecond))
	switch {
	case errors.Is(err, ErrBusy) && strings.Contains(err.Error(), "on this node"):
		t.Errorf("%s (regressed): %v", nodeBusyBug, err)
	case err != nil:
		t.Errorf("another client's Get and Stat: %v", err)
	case got != large.Size || sum != large.Sum:
		t.Errorf("another client's Get: got %d bytes, sha256 %x; want %d, %x", got, sum, large.Size, large.Sum)
	}
	if d := time.Since(lap); d > 5*time.Second {
		t.Errorf("another client's Get took %v with the link full of streams, want a few seconds at most", d)
	}

	closed := time.Now()
	sess.Close()
	const slack = 10
	drained := func(within time.Duration) (int, bool) {
		n := runtime.NumGoroutine()
		for n > baseline+slack && time.Since(closed) < within {
			time.Sleep(20 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		return n, n <= baseline+slack
	}
	// Tens of ms on an idle machine. (yamux v0.1.2 spun every blocked Read
	// and Write until Close reached its stream, hashicorp/yamux#176, which
	// took seconds here; the patched yamux wakes them with the shutdown.)
	n, ok := drained(10 * time.Second)
	t.Logf("%d goroutines %v after the close (baseline %d)", n, time.Since(closed).Round(time.Millisecond), baseline)
	if !ok {
		t.Errorf("%v after the link closed: %d goroutines, want at most %d + %d", time.Since(closed).Round(time.Second), n, baseline, slack)
	}
	// And the node is still fine.
	checkGet(t, testCtx(t, 30*time.Second), good, small)
}

// nodeBusyBug describes a known bug that TestManyStreamsOneLink detects.
const nodeBusyBug = "bug: streams refused for the per-link limit still count toward the node-wide MaxStreams " +
	"(each holds a goroutine until its request header arrives or HeaderTimeout), so one link that opens " +
	"MaxStreams silent streams makes the node refuse every other client as busy; fix: in acceptStreams, count a " +
	"stream toward n.streams only once it passed the per-link check (relay/node.go)"
