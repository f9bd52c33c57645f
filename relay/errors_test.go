package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
	"github.com/relaychain/relaychain/third_party/yamux"
)

// transports are the two ways a client can send a GET; the relays take a
// different code path for each.
var transports = []struct {
	name string
	tr   Transport
}{
	{"mux", TransportMux},
	{"raw", TransportRaw},
}

// terminalConfig is the production default configuration serving root.
func terminalConfig(root string) Config {
	cfg := DefaultConfig()
	cfg.Root = root
	return cfg
}

// getErr runs a Get that must fail, and checks that no byte was written.
func getErr(t *testing.T, c *Client, name string) error {
	t.Helper()
	var buf bytes.Buffer
	_, err := c.Get(testCtx(t, 30*time.Second), name, &buf, nil)
	if buf.Len() != 0 {
		t.Errorf("Get %q: got %d bytes written (%q...), want none", name, buf.Len(), clip(buf.String(), 40))
	}
	if strings.Contains(fmt.Sprint(err), strings.TrimSpace(outsideSecret)) {
		t.Errorf("Get %q: error %q leaks the outside file", name, err)
	}
	return err
}

func clip(s string, n int) string { return s[:min(len(s), n)] }

func TestErrNotFound(t *testing.T) {
	t.Parallel()
	for _, relays := range []int{0, 2} {
		for _, tp := range transports {
			t.Run(fmt.Sprintf("relays=%d/%s", relays, tp.name), func(t *testing.T) {
				t.Parallel()
				_, rt := chain(t, relays, terminalConfig("testdata/root"))
				c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
				err := getErr(t, c, "no-such-file.txt")
				wantHopError(t, err, ErrNotFound, relays, rt[relays], "not found", "no-such-file.txt")
				_, err = c.Stat(testCtx(t, 30*time.Second), "sub/missing")
				wantHopError(t, err, ErrNotFound, relays, rt[relays], "not found", "sub/missing")
				// The node is fine afterwards.
				if _, _, _, err := getSum(testCtx(t, 30*time.Second), c, "hello.txt"); err != nil {
					t.Errorf("Get after not found: %v", err)
				}
			})
		}
	}
}

// TestErrTraversal sends names that try to leave the root with Client.Get
// (Download refuses them before sending anything).
func TestErrTraversal(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			_, rt := chain(t, 1, terminalConfig(root))
			term := rt[1]
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			for _, tc := range []struct{ name, why string }{
				{"../x", `".." leaves the root`},
				{"a/../../x", `".." leaves the root`},
				{"..", `".." leaves the root`},
				{"/etc/passwd", "absolute path"},
				{`\etc\passwd`, "absolute path"},
				{"x\x00y", "contains NUL"},
				{"", "empty name"},
				{".", "is the root directory"},
				{"sub/..", "is the root directory"},
			} {
				t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
					err := getErr(t, c, tc.name)
					wantHopError(t, err, ErrBadRequest, 1, term, "bad request", "refused name", tc.why)
					if _, _, derr := c.Download(testCtx(t, 10*time.Second), tc.name, t.TempDir(), nil); !errors.Is(derr, errBadName) {
						t.Errorf("Download %q: got %v, want a local refusal (errBadName)", tc.name, derr)
					}
				})
			}
			t.Run("directory", func(t *testing.T) {
				err := getErr(t, c, "sub")
				wantHopError(t, err, ErrNotRegular, 1, term, "not a regular file: sub")
			})
			// Symlinks that leave the root: refused, and never the content.
			for _, name := range []string{"escape-rel", "escape-abs", "escape-dir/secret.txt"} {
				t.Run(name, func(t *testing.T) {
					err := getErr(t, c, name)
					if err == nil {
						t.Fatalf("Get %s: got nil error, want a refusal", name)
					}
					if errors.Is(err, ErrNotFound) {
						// Acceptable to a user, but the node says why.
						t.Logf("Get %s: %v", name, err)
					}
					wantHopError(t, err, ErrBadRequest, 1, term, name)
					if _, err := c.Stat(testCtx(t, 10*time.Second), name); !errors.Is(err, ErrBadRequest) {
						t.Errorf("Stat %s: got %v, want ErrBadRequest", name, err)
					}
				})
			}
			// A ".." that stays inside and a symlink inside are served.
			t.Run("inside", func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				for _, name := range []string{"sub/../" + sizeName(1), "inside-link", "./" + sizeName(1)} {
					sum, n, _, err := getSum(ctx, c, name)
					if f := files[sizeName(1)]; err != nil || n != 1 || sum != f.Sum {
						t.Errorf("Get %s: got %d bytes, sum %x, err %v; want 1 byte %x", name, n, sum, err, f.Sum)
					}
				}
			})
		})
	}
}

func TestErrNoFiles(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			nodes, rt := chain(t, 1, Config{}) // the "terminal" is relay-only
			for i := range nodes {
				c := newClient(t, ClientConfig{Route: rt[i:], Transport: tp.tr})
				err := getErr(t, c, "hello.txt")
				wantHopError(t, err, ErrNoFiles, 1-i, nodes[1].Addr, "serves no files")
			}
		})
	}
}

func TestErrNotAllowed(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name+"/non-loopback", func(t *testing.T) {
			t.Parallel()
			a := startNode(t, Config{DialTimeout: 5 * time.Second})
			const far = "10.255.255.1:80"
			c := newClient(t, ClientConfig{Route: route.Route{a.Addr, far}, Transport: tp.tr})
			start := time.Now()
			err := getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrNotAllowed, 1, far, "not allowed", far)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("refusal took %v, want it before any connect (well under the 5s dial timeout)", d)
			}
		})
		t.Run(tp.name+"/loopback-port", func(t *testing.T) {
			t.Parallel()
			term := startNode(t, terminalConfig("testdata/root"))
			sentinel := startFake(t, recordAll)
			a := startNode(t, Config{Allow: []string{"127.0.0.1:" + port(t, term.Addr)}})

			c := newClient(t, ClientConfig{Route: route.Route{a.Addr, sentinel.Addr}, Transport: tp.tr})
			err := getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrNotAllowed, 1, sentinel.Addr, "not allowed", sentinel.Addr)

			// The allowed port works, through the same relay.
			ok := newClient(t, ClientConfig{Route: route.Route{a.Addr, term.Addr}, Transport: tp.tr})
			if _, _, _, err := getSum(testCtx(t, 30*time.Second), ok, "hello.txt"); err != nil {
				t.Errorf("Get via the allowed hop: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // let a stray connection be accepted
			if n := sentinel.accepted.Load(); n != 0 {
				t.Errorf("the forbidden port saw %d connections, want 0", n)
			}
		})
	}
}

func port(t testing.TB, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrUnreachable(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			nodes, rt := chain(t, 2, terminalConfig("testdata/root"))
			closed := closedAddr(t)

			// The terminal is a closed port: hop 2.
			c := newClient(t, ClientConfig{Route: route.Route{rt[0], rt[1], closed}, Transport: tp.tr})
			err := getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrUnreachable, 2, closed, "refused", closed)

			// The middle hop is a closed port: hop 1.
			c = newClient(t, ClientConfig{Route: route.Route{rt[0], closed, nodes[2].Addr}, Transport: tp.tr})
			err = getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrUnreachable, 1, closed, "refused", closed)

			// The first hop is a closed port: hop 0, found by the client.
			c = newClient(t, ClientConfig{Route: route.Route{closed, rt[0], rt[2]}, Transport: tp.tr})
			err = getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrUnreachable, 0, closed, "refused", closed)
		})
	}
}

// TestErrNotNode routes to plain TCP services: the relay must refuse them
// after the preface, without sending them any byte of the request.
func TestErrNotNode(t *testing.T) {
	t.Parallel()
	garbage := func(c net.Conn, rec io.Writer) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		recordAll(c, rec)
	}
	hangUp := func(c net.Conn, rec io.Writer) { c.Close() }
	// A node of protocol version 1 answers in kind.
	oldNode := func(c net.Conn, rec io.Writer) {
		var in [prefaceSize]byte
		if n, _ := io.ReadFull(c, in[:]); n > 0 {
			rec.Write(in[:n])
		}
		c.Write([]byte("RLYC\x02\x00"))
		recordAll(c, rec)
	}
	silent := recordAll
	for _, tp := range transports {
		preface := "RLYC\x03M"
		if tp.tr == TransportRaw {
			preface = "RLYC\x03R"
		}
		for _, tc := range []struct {
			name     string
			handle   func(net.Conn, io.Writer)
			sentinel error
			msg      string
			preface  string // what the fake must have received
		}{
			{"garbage", garbage, ErrNotNode, "not a relay node", preface},
			{"hang-up", hangUp, ErrNotNode, "not a relay node", ""},
			{"old-version", oldNode, ErrNotNode, "speaks relaychain protocol version 2, this node version 3", preface},
			{"silent", silent, ErrTimeout, "timed out", preface},
		} {
			t.Run(tp.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				a := startNode(t, Config{DialTimeout: 300 * time.Millisecond})
				fake := startFake(t, tc.handle)
				c := newClient(t, ClientConfig{Route: route.Route{a.Addr, fake.Addr}, Transport: tp.tr})
				start := time.Now()
				err := getErr(t, c, "hello.txt")
				wantHopError(t, err, tc.sentinel, 1, fake.Addr, tc.msg)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v, want about the 300ms dial timeout", d)
				}
				// The relay hangs up; then the fake has seen all it will see.
				if !fake.waitEnded(1, 5*time.Second) {
					t.Fatalf("the relay kept its connection to the fake open")
				}
				if got := fake.received(); got != tc.preface {
					t.Errorf("the fake received %q, want only the preface %q", got, tc.preface)
				}

				// The first hop is the fake: the client finds out itself.
				c = newClient(t, ClientConfig{Route: route.Route{fake.Addr, a.Addr}, Transport: tp.tr, DialTimeout: 300 * time.Millisecond})
				err = getErr(t, c, "hello.txt")
				wantHopError(t, err, tc.sentinel, 0, fake.Addr, tc.msg)
			})
		}
	}
}

func TestErrTooManyHops(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			nodes, _ := chain(t, 1, terminalConfig("testdata/root"))
			a, term := nodes[0], nodes[1]

			// 17 hops against the default 16: refused by the first hop.
			rt := make(route.Route, 0, 17)
			for range 16 {
				rt = append(rt, a.Addr)
			}
			rt = append(rt, term.Addr)
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			err := getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrTooManyHops, 0, a.Addr, "too many hops", "route of 17 hops (max 16)")

			// A node with MaxHops 2 refuses a remaining route of 3.
			b := startNode(t, Config{MaxHops: 2})
			c = newClient(t, ClientConfig{Route: route.Route{a.Addr, b.Addr, a.Addr, term.Addr}, Transport: tp.tr})
			err = getErr(t, c, "hello.txt")
			wantHopError(t, err, ErrTooManyHops, 1, b.Addr, "too many hops", "route of 3 hops (max 2)")

			// ... and passes one of 2.
			c = newClient(t, ClientConfig{Route: route.Route{a.Addr, b.Addr, term.Addr}, Transport: tp.tr})
			if _, _, _, err := getSum(testCtx(t, 30*time.Second), c, "hello.txt"); err != nil {
				t.Errorf("Get through MaxHops 2 with 2 hops left: %v", err)
			}
		})
	}
}

// TestErrBusyStreams holds one stream open on a node that allows one per
// link, and sends a second request on the same link.
func TestErrBusyStreams(t *testing.T) {
	t.Parallel()
	// The held file is larger than a stream window: the client sends START
	// along with its request, so a smaller one would be sent whole and its
	// stream would end while the first Get is held.
	root := t.TempDir()
	f, err := genFile(root, "held.bin", 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	cfg := terminalConfig(root)
	cfg.MaxStreamsPerLink = 1
	term := startNode(t, cfg)
	c := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	ctx := testCtx(t, time.Minute)

	// The first Get stops once it has the response: with more data than a
	// window to send, its stream stays open at the terminal.
	held, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() {
		_, firstErr = c.Get(ctx, f.Name, io.Discard, func(FileInfo) {
			close(held)
			<-release
		})
	})
	defer wg.Wait()
	defer close(release)
	waitFor(t, held, 30*time.Second, "first Get answered")

	err = getErr(t, c, f.Name)
	wantHopError(t, err, ErrBusy, 0, term.Addr, "busy", "1 streams")
	if _, err := c.Stat(ctx, f.Name); !errors.Is(err, ErrBusy) {
		t.Errorf("Stat while busy: got %v, want ErrBusy", err)
	}

	release <- struct{}{} // unblocks the first Get (the deferred close is then a no-op)
	wg.Wait()
	if firstErr != nil {
		t.Errorf("first Get: %v", firstErr)
	}
	// The slot frees once the terminal's handler returns, a moment after
	// the client has its trailer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, _, err := getSum(ctx, c, f.Name)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("Get after the first finished: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestErrBusyLinks holds a link to a node that allows one.
func TestErrBusyLinks(t *testing.T) {
	t.Parallel()
	term := startNode(t, Config{Root: "testdata/root", MaxLinks: 1})
	ctx := testCtx(t, 30*time.Second)
	first := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	if _, err := first.Stat(ctx, "hello.txt"); err != nil {
		t.Fatalf("first Stat: %v", err)
	}
	second := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	_, err := second.Stat(ctx, "hello.txt")
	wantHopError(t, err, ErrBusy, 0, term.Addr, "busy")
	first.Close()
	// Once the first link is gone, the second client gets in.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = second.Stat(ctx, "hello.txt")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("Stat after the first link closed: %v", err)
	}
}

// TestTimeoutCause checks which timeouts an exchange reports as "no data
// for" its own idle timeout: its own read deadline, and not a mux link
// that ended on a write timeout of its own, whose streams report that
// cause.
func TestTimeoutCause(t *testing.T) {
	linkTimeout := &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		s    net.Conn
		err  error
		own  bool
	}{
		{"mux read deadline", (*yamux.Stream)(nil), yamux.ErrTimeout, true},
		{"mux link write timeout", (*yamux.Stream)(nil), linkTimeout, false},
		{"raw read deadline", (*net.TCPConn)(nil), &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
	} {
		x := &exchange{s: tc.s}
		if !isTimeout(tc.err) {
			t.Fatalf("%s: %v is not a timeout", tc.name, tc.err)
		}
		if got := x.ownDeadline(tc.err); got != tc.own {
			t.Errorf("%s: ownDeadline = %v, want %v", tc.name, got, tc.own)
		}
	}
}
