package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// Node is a relaychain node: it relays requests whose route goes on past it
// and, with a Root, serves those that end at it. Its methods are safe for
// concurrent use. Serve runs it; Shutdown or Close stops it.
type Node struct {
	cfg     Config
	allow   *allowList
	pool    *pool    // mux links to next hops
	rawPool *rawPool // idle raw links to next hops
	ycfg    *yamux.Config
	// tlsConfig is the acceptor's TLS config; nil without TLS.
	tlsConfig *tls.Config
	root      *os.Root     // nil for a relay-only node
	src       cache.Source // the files served; nil for a relay-only node
	cache     *cache.Cache // nil for a relay-only node
	// digests remembers whole-file digests of files streamed from disk.
	digests *cache.Digests

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	closers  map[io.Closer]struct{} // listeners, links and sessions
	draining bool
	closed   bool
	// closeDone is closed when the first Close has done its work; a
	// concurrent Close waits for it.
	closeDone chan struct{}

	handlers sync.WaitGroup // one per accepted connection
	active   inflight       // requests in progress
	links    atomic.Int64
	streams  atomic.Int64 // mux streams in progress, over all links
	// bursts watches streams for the end of a burst, which
	// releaseAfterBursts looks for every releaseEvery (release.go), from
	// the first Serve until Close; release gives the memory back, at most
	// once per releaseGap in the process.
	bursts       burstWatch
	releaseEvery time.Duration
	releaseGap   time.Duration
	release      func(min uint64) bool
	startRelease sync.Once
	background   sync.WaitGroup
	// inlined counts the relayed requests served on a receive loop
	// (serveInline).
	inlined atomic.Int64
	// run starts the tasks of requests (serveStream, and the runners of
	// relayed streams through ycfg.Go) on pooled goroutines.
	run runners
}

// New returns a node configured by cfg. It opens Root, if any.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	allow, err := parseAllow(cfg.Allow)
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	n := &Node{
		cfg:     cfg,
		allow:   allow,
		ycfg:    yamuxConfig(cfg.StreamWindow, cfg.StreamWindowMax, cfg.WindowBudget, cfg.IdleTimeout),
		closers: map[io.Closer]struct{}{},

		closeDone: make(chan struct{}),

		releaseEvery: releaseTick,
		releaseGap:   releaseGap,
		release:      releaseMemory,
	}
	n.ycfg.Go = n.run.start
	d := newDialer(allow, cfg.DialTimeout, cfg.TLS)
	n.pool = newPool(d, n.ycfg)
	n.rawPool = newRawPool(d)
	if cfg.TLS != nil {
		n.tlsConfig = cfg.TLS.serverConfig()
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if cfg.Root != "" || cfg.Source != nil {
		if err := n.openRoot(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *Node) openRoot() error {
	n.src = n.cfg.Source
	if n.cfg.Root != "" {
		root, err := os.OpenRoot(n.cfg.Root)
		if err != nil {
			return fmt.Errorf("open root: %w", err)
		}
		n.root = root
		if n.src == nil {
			n.src = root
		}
	}
	c, err := cache.New(cache.Config{MaxBytes: n.cfg.CacheSize, Source: n.src})
	if err != nil {
		if n.root != nil {
			n.root.Close()
		}
		return fmt.Errorf("cache: %w", err)
	}
	n.cache = c
	n.digests = cache.NewDigests(cache.DefaultDigests)
	return nil
}

// Cache returns the terminal's cache, or nil for a relay-only node.
func (n *Node) Cache() *cache.Cache { return n.cache }

// Serve accepts links on ln until the node is shut down, then returns nil.
// It takes ownership of ln.
func (n *Node) Serve(ln net.Listener) error {
	if !n.track(ln) {
		ln.Close()
		return errClosed
	}
	defer n.untrack(ln)
	n.startRelease.Do(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if !n.closed { // else Close may be waiting for background already
			n.background.Add(1)
			go n.releaseAfterBursts()
		}
	})
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if n.stopping() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		if !n.track(conn) {
			conn.Close()
			continue
		}
		n.handlers.Add(1)
		go n.handleConn(conn)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (n *Node) stopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.draining || n.closed
}

// track registers a listener, link or session for Close; it reports false
// once the node is draining or closed.
func (n *Node) track(c io.Closer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining || n.closed {
		return false
	}
	n.closers[c] = struct{}{}
	return true
}

func (n *Node) untrack(c io.Closer) {
	n.mu.Lock()
	delete(n.closers, c)
	n.mu.Unlock()
}

// handleConn runs one inbound link: the preface, then its streams.
func (n *Node) handleConn(conn net.Conn) {
	defer n.handlers.Done()
	defer n.untrack(conn)
	defer conn.Close()
	if err := n.serveConn(conn); err != nil {
		n.cfg.Logger.Debug("link ended", "peer", conn.RemoteAddr().String(), "err", err)
	}
}

func (n *Node) serveConn(conn net.Conn) error {
	defer n.links.Add(-1)
	busy := n.links.Add(1) > int64(n.cfg.MaxLinks)
	if n.cfg.TLS != nil {
		// Even a busy answer goes over TLS, so that the dialer can read it.
		plain, err := refusePlaintext(conn, time.Now().Add(n.cfg.HeaderTimeout))
		if err != nil {
			return err
		}
		if conn, err = handshake(plain, n.tlsConfig, true, time.Now().Add(n.cfg.HeaderTimeout)); err != nil {
			return err
		}
	}
	if busy {
		answerPreface(conn, route.StatusBusy, time.Now().Add(n.cfg.HeaderTimeout))
		return fmt.Errorf("link refused: %w", errBusyLink)
	}
	mode, err := acceptPreface(conn, time.Now().Add(n.cfg.HeaderTimeout))
	if err != nil {
		return err
	}
	if err := answerPreface(conn, route.StatusOK, time.Now().Add(n.cfg.HeaderTimeout)); err != nil {
		return err
	}
	if mode == route.ModeRaw {
		return n.serveRaw(conn)
	}
	sess, err := yamux.Server(conn, n.ycfg)
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	defer sess.Close()
	if !n.track(sess) {
		return errClosed
	}
	defer n.untrack(sess)
	return n.acceptStreams(sess)
}

// acceptStreams serves each stream of sess, answering busy beyond
// MaxStreamsPerLink or MaxStreams rather than queueing. The patched yamux
// hands it each stream on the session's receive loop (ServeStreams), once
// the stream's first frame is in, so accept must not block: a relayed
// request whose forwarding needs no wait is served there (serveInline),
// and any other stream's work runs in its own goroutine. When the session
// ends, yamux wakes every blocked Read and Write of its streams (the
// fork's fix of hashicorp/yamux#176).
func (n *Node) acceptStreams(sess *yamux.Session) error {
	var streams sync.WaitGroup
	defer streams.Wait()
	var inflight atomic.Int64
	var dropped atomic.Bool
	limit := 2*n.cfg.MaxStreamsPerLink + 16
	err := sess.ServeStreams(func(st *yamux.Stream) {
		// Every open stream can hold a window of unread bytes in yamux,
		// served, refused or done and awaiting the peer's FIN: a peer that
		// keeps far more open than it may use is dropped.
		if dropped.Load() || sess.NumStreams() > limit {
			if !dropped.Swap(true) {
				go sess.Close()
			}
			go st.Close()
			return
		}
		streams.Add(1)
		n.active.add()
		// A stream over the link's limit does not count toward the node's,
		// so that one link cannot make the node busy for every other.
		perLink := inflight.Add(1)
		overLink := perLink > int64(n.cfg.MaxStreamsPerLink)
		var total int64
		if !overLink {
			total = n.streams.Add(1)
			n.bursts.opened(total)
		}
		if overLink {
			go func() {
				defer streams.Done()
				defer n.active.done()
				defer inflight.Add(-1)
				n.refuseBusy(st, fmt.Sprintf("more than %d streams on this link", n.cfg.MaxStreamsPerLink))
			}()
			return
		}
		// The stream stops counting toward the limits once its answer is
		// through (it holds no window then, and only waits for the
		// client's close, which may trail the client's next request).
		var once sync.Once
		release := func() { once.Do(func() { n.streams.Add(-1); inflight.Add(-1) }) }
		// end runs when the request is over, maybe after the goroutine
		// that served it, or with none (serveInline, serveStream).
		end := func(err error) {
			release()
			if err != nil {
				n.cfg.Logger.Debug("stream ended", "err", err)
			}
			n.active.done()
			streams.Done()
		}
		if total > int64(n.cfg.MaxStreams) {
			go func() {
				n.refuseBusy(st, fmt.Sprintf("more than %d streams on this node", n.cfg.MaxStreams))
				end(nil)
			}()
			return
		}
		if !n.serveInline(st, release, end) {
			n.run.start(func() { n.serveStream(st, release, end) })
		}
	})
	if dropped.Load() {
		return fmt.Errorf("the peer holds more than %d streams open", limit)
	}
	return err
}

// refuseBusy answers a stream beyond the limit with a busy status.
func (n *Node) refuseBusy(st net.Conn, why string) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	req, err := route.ReadRequest(st, n.cfg.MaxHops)
	if err != nil {
		return
	}
	n.respond(st, &route.Response{Status: route.StatusBusy, HopIndex: req.Depth, Hop: req.Route[0],
		Message: "busy: " + why})
}

// Shutdown stops accepting links and requests, waits until the requests in
// flight finish or ctx is done, and then closes the node.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.draining = true
	for c := range n.closers {
		// *yamux.Session is a net.Listener too: match it first.
		switch c := c.(type) {
		case *yamux.Session:
			c.GoAway() // refuse new streams; in-flight ones go on
		case net.Listener:
			c.Close()
		}
	}
	n.mu.Unlock()
	var err error
	select {
	case <-n.active.zero():
		n.flushLinks(ctx)
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: requests still in flight: %w", ctx.Err())
	}
	return errors.Join(err, n.Close())
}

// flushLinks waits until the peer of every inbound mux link has received
// all this node sent it, or ctx is done. A request is over once its last
// frame is handed to the link, which may still be queued or in flight:
// closing the link then would lose the end of an answer. A ping is
// answered only after the frames before it, so its answer proves them
// delivered.
func (n *Node) flushLinks(ctx context.Context) {
	var wg sync.WaitGroup
	n.mu.Lock()
	for c := range n.closers {
		if sess, ok := c.(*yamux.Session); ok {
			wg.Go(func() { sess.Ping() })
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Close stops the node at once: it closes listeners, links and pooled
// sessions, and waits for every handler to return and for the pooled
// goroutines to stop. It is idempotent: a later or concurrent Close
// returns nil once the first one is done.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		<-n.closeDone
		return nil
	}
	n.closed = true
	defer close(n.closeDone)
	for c := range n.closers {
		c.Close()
	}
	n.mu.Unlock()
	n.cancel()
	n.pool.close()
	n.rawPool.close()
	n.handlers.Wait()
	n.background.Wait()
	if err := n.run.close(runnersStop); err != nil {
		n.cfg.Logger.Warn("close", "err", err)
	}
	if n.cache != nil {
		st := n.cache.Stats()
		n.cfg.Logger.Info("cache stats", "hits", st.Hits, "misses", st.Misses,
			"evictions", st.Evictions, "hit_bytes", st.HitBytes, "cached_bytes", st.Bytes)
		n.cache.Close()
	}
	if n.root != nil {
		return n.root.Close()
	}
	return nil
}
