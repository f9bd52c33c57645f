package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// Sizes every chain must carry byte-identical (plus the big file).
var matrixSizes = []int64{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1}

// Extra sizes for the concurrency test, and the medium file for tests that
// need a transfer that lasts a while without the big file.
var mixedSizes = []int64{1000, 300_000, 1<<20 + 7}

const (
	bigSize    = 200 << 20
	mediumSize = 16 << 20
)

// testFile is a generated file under the shared root.
type testFile struct {
	Name string
	Size int64
	Sum  [32]byte
}

// fx holds the files shared by every test of the binary, generated once in
// a temporary directory that TestMain removes.
var fx struct {
	once    sync.Once
	dir     string // the shared temporary directory
	root    string // dir/root: what terminals serve
	outside string // dir/outside/secret.txt: must never be served
	files   map[string]testFile
	err     error

	bigOnce sync.Once
	big     testFile
	bigErr  error
}

// outsideSecret is the content of the file outside the root.
const outsideSecret = "TOP SECRET: outside the root\n"

func sizeName(size int64) string { return fmt.Sprintf("size-%d", size) }

// sharedFiles returns the shared root with the matrix, mixed and medium
// files, a directory "sub", and symlinks "escape-rel" and "escape-abs" that
// point at a file outside the root, and "inside-link" that points at
// size-1 inside it.
func sharedFiles(t testing.TB) (root string, files map[string]testFile) {
	t.Helper()
	fx.once.Do(func() {
		fx.dir, fx.err = os.MkdirTemp("", "relay-test-")
		if fx.err != nil {
			return
		}
		fx.root = filepath.Join(fx.dir, "root")
		fx.outside = filepath.Join(fx.dir, "outside", "secret.txt")
		fx.files = map[string]testFile{}
		for _, d := range []string{fx.root, filepath.Join(fx.root, "sub"), filepath.Dir(fx.outside)} {
			if fx.err = os.MkdirAll(d, 0o755); fx.err != nil {
				return
			}
		}
		sizes := append(append(append([]int64{}, matrixSizes...), mixedSizes...), mediumSize)
		for _, size := range sizes {
			f, err := genFile(fx.root, sizeName(size), size)
			if err != nil {
				fx.err = err
				return
			}
			fx.files[f.Name] = f
		}
		if fx.err = os.WriteFile(fx.outside, []byte(outsideSecret), 0o644); fx.err != nil {
			return
		}
		if fx.err = os.WriteFile(filepath.Join(fx.root, "sub", "in-sub.txt"), []byte("in sub\n"), 0o644); fx.err != nil {
			return
		}
		links := map[string]string{
			"escape-rel":  filepath.Join("..", "outside", "secret.txt"),
			"escape-abs":  fx.outside,
			"escape-dir":  filepath.Dir(fx.outside),
			"inside-link": sizeName(1),
		}
		for name, target := range links {
			if fx.err = os.Symlink(target, filepath.Join(fx.root, name)); fx.err != nil {
				return
			}
		}
	})
	if fx.err != nil {
		t.Fatalf("generate shared files: %v", fx.err)
	}
	return fx.root, fx.files
}

// bigFile returns the 200 MiB file, generated on first use into the shared
// root. It is streamed to disk and never held in memory.
func bigFile(t testing.TB) testFile {
	t.Helper()
	root, _ := sharedFiles(t)
	fx.bigOnce.Do(func() {
		start := time.Now()
		fx.big, fx.bigErr = genFile(root, "big-200MiB", bigSize)
		if fx.bigErr == nil {
			t.Logf("generated %s in %v", fx.big.Name, time.Since(start).Round(time.Millisecond))
		}
	})
	if fx.bigErr != nil {
		t.Fatalf("generate big file: %v", fx.bigErr)
	}
	return fx.big
}

// genFile writes size deterministic pseudo-random bytes (ChaCha8 seeded
// with the size) to dir/name and returns their digest.
func genFile(dir, name string, size int64) (testFile, error) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(size))
	copy(seed[8:], name)
	rng := rand.NewChaCha8(seed)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return testFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		b := buf[:min(left, int64(len(buf)))]
		rng.Read(b)
		if _, err := w.Write(b); err != nil {
			return testFile{}, err
		}
		left -= int64(len(b))
	}
	tf := testFile{Name: name, Size: size}
	h.Sum(tf.Sum[:0])
	return tf, f.Close()
}

// fileSum returns the SHA-256 and size of the file at path.
func fileSum(t testing.TB, path string) ([32]byte, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n
}

// testNode is a node serving on a loopback listener.
type testNode struct {
	*Node
	Addr string
	done chan error // Serve's result
}

// startNode starts a node for cfg on 127.0.0.1:0. Cleanup closes it and
// checks that Serve returned.
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	tn := &testNode{Node: n, Addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { tn.done <- n.Serve(ln) }()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close %s: %v", tn.Addr, err)
		}
		select {
		case err := <-tn.done:
			if err != nil && !errors.Is(err, errClosed) {
				t.Errorf("Serve %s: got %v, want nil", tn.Addr, err)
			}
			tn.done <- err // for a second look
		case <-time.After(10 * time.Second):
			t.Errorf("Serve %s did not return within 10s of Close", tn.Addr)
		}
	})
	return tn
}

// testLogger sends node logs to t.Log when RELAY_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// chain starts a terminal for term and relays relay-only nodes in front of
// it, and returns the nodes (relays first, terminal last) and the route.
func chain(t testing.TB, relays int, term Config) ([]*testNode, route.Route) {
	t.Helper()
	nodes := make([]*testNode, relays+1)
	nodes[relays] = startNode(t, term)
	for i := range relays {
		nodes[i] = startNode(t, Config{})
	}
	rt := make(route.Route, len(nodes))
	for i, n := range nodes {
		rt[i] = n.Addr
	}
	return nodes, rt
}

// newClient returns a client for cfg, closed by Cleanup.
func newClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx returns a context canceled after d or at the end of the test.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// getSum fetches name with Client.Get into a hash.
func getSum(ctx context.Context, c *Client, name string) ([32]byte, int64, FileInfo, error) {
	h := sha256.New()
	cw := &countWriter{w: h}
	info, err := c.Get(ctx, name, cw, nil)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, cw.n, info, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// checkGet fetches f with Client.Get and checks its bytes.
func checkGet(t testing.TB, ctx context.Context, c *Client, f testFile) {
	t.Helper()
	sum, n, info, err := getSum(ctx, c, f.Name)
	if err != nil {
		t.Fatalf("Get %s: %v", f.Name, err)
	}
	if n != f.Size || info.Size != f.Size {
		t.Errorf("Get %s: got %d bytes (announced %d), want %d", f.Name, n, info.Size, f.Size)
	}
	if sum != f.Sum || info.SHA256 != f.Sum {
		t.Errorf("Get %s: got sha256 %x (info %x), want %x", f.Name, sum, info.SHA256, f.Sum)
	}
}

// checkDownload downloads f into a new temporary directory, checks the
// file, that nothing else is left there, and removes it.
func checkDownload(t testing.TB, ctx context.Context, c *Client, f testFile) {
	t.Helper()
	dir := t.TempDir()
	path, info, err := c.Download(ctx, f.Name, dir, nil)
	if err != nil {
		t.Fatalf("Download %s: %v", f.Name, err)
	}
	if want := filepath.Join(dir, f.Name); path != want {
		t.Errorf("Download %s: got path %s, want %s", f.Name, path, want)
	}
	sum, n := fileSum(t, path)
	if n != f.Size || info.Size != f.Size {
		t.Errorf("Download %s: got %d bytes on disk (announced %d), want %d", f.Name, n, info.Size, f.Size)
	}
	if sum != f.Sum || info.SHA256 != f.Sum {
		t.Errorf("Download %s: got sha256 %x (info %x), want %x", f.Name, sum, info.SHA256, f.Sum)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != f.Name {
		t.Errorf("Download %s: got directory %q, want only %q", f.Name, names, f.Name)
	}
	os.Remove(path) // free the disk early for the big file
}

// dirNames lists dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// wantHopError checks that err wraps sentinel and is a *HopError naming
// hop index at addr, and that its message contains every string in want.
func wantHopError(t testing.TB, err, sentinel error, index int, addr string, want ...string) *HopError {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%q, %v): got false, want true", err, sentinel)
	}
	var he *HopError
	if !errors.As(err, &he) {
		t.Fatalf("got %T %q, want a *HopError", err, err)
	}
	if he.Index != index || he.Addr != addr {
		t.Errorf("got hop %d (%s), want hop %d (%s); err %q", he.Index, he.Addr, index, addr, err)
	}
	if prefix := fmt.Sprintf("hop %d (%s): ", index, addr); !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("got message %q, want prefix %q", err, prefix)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("got message %q, want it to contain %q", err, s)
		}
	}
	return he
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakePeer is a plain TCP listener whose connections run handle. It
// records every byte it was sent. Cleanup closes the listener and every
// connection and waits for the handlers.
type fakePeer struct {
	Addr     string
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	got   bytes.Buffer
	ended int // handlers that returned
}

func startFake(t testing.TB, handle func(c net.Conn, rec io.Writer)) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{Addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				handle(c, lockedWriter{p})
				p.mu.Lock()
				p.ended++
				p.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

type lockedWriter struct{ p *fakePeer }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.got.Write(b)
}

// closeConns closes every connection accepted so far.
func (p *fakePeer) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// received returns what the fake was sent so far.
func (p *fakePeer) received() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String()
}

// waitEnded waits until n handlers have returned, or d has passed.
func (p *fakePeer) waitEnded(n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		e := p.ended
		p.mu.Unlock()
		if e >= n {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// recordAll copies everything c sends into rec until c is closed.
func recordAll(c net.Conn, rec io.Writer) {
	c.SetReadDeadline(time.Now().Add(time.Minute))
	io.Copy(rec, c)
	c.Close()
}

// Preface bytes, pinned here rather than taken from package route.
const (
	dialerMux   = "RLYC\x03M"
	acceptorOK  = "RLYC\x03\x00"
	prefaceSize = 6
)

// rawLink dials addr, completes the link preface by hand and returns a
// yamux client session over it, closed by Cleanup.
func rawLink(t testing.TB, addr string) *yamux.Session {
	t.Helper()
	return rawLinkWith(t, addr, nil)
}

// rawLinkWith is rawLink with the session's config changed by set, if not
// nil.
func rawLinkWith(t testing.TB, addr string, set func(*yamux.Config)) *yamux.Session {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(dialerMux)); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	var in [prefaceSize]byte
	if _, err := io.ReadFull(conn, in[:]); err != nil {
		conn.Close()
		t.Fatalf("read preface: %v", err)
	}
	if string(in[:]) != acceptorOK {
		conn.Close()
		t.Fatalf("got preface %q, want %q", in[:], acceptorOK)
	}
	conn.SetDeadline(time.Time{})
	ycfg := yamux.DefaultConfig()
	ycfg.LogOutput = io.Discard
	if set != nil {
		set(ycfg)
	}
	sess, err := yamux.Client(conn, ycfg)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// gateWriter passes writes to w; once at least after bytes went through it
// closes reached and blocks until release is closed (at most a minute).
type gateWriter struct {
	w       io.Writer
	after   int64
	n       int64
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(w io.Writer, after int64) *gateWriter {
	return &gateWriter{w: w, after: after, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	n, err := g.w.Write(p)
	g.n += int64(n)
	if g.n >= g.after {
		g.once.Do(func() {
			close(g.reached)
			select {
			case <-g.release:
			case <-time.After(time.Minute):
			}
		})
	}
	return n, err
}

// waitFor waits for ch to close, failing the test after d.
func waitFor(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}
