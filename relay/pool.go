package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// errClosed is returned for work asked of a closed node, pool or client.
var errClosed = errors.New("closed")

// pool holds the yamux sessions to each next hop, reused across requests
// and redialed when they die. It is safe for concurrent use.
type pool struct {
	d    *dialer
	ycfg *yamux.Config

	mu     sync.Mutex
	hops   map[string]*sessionSet
	closed bool
}

func newPool(d *dialer, ycfg *yamux.Config) *pool {
	return &pool{d: d, ycfg: ycfg, hops: make(map[string]*sessionSet)}
}

// hop returns the sessions to addr, made first when create is set, or nil
// when the pool is closed or (without create) has none.
func (p *pool) hop(addr string, create bool) *sessionSet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	ss := p.hops[addr]
	if ss == nil && create {
		ss = &sessionSet{dial: func(ctx context.Context) (*yamux.Session, error) {
			return dialSession(ctx, p.d, addr, p.ycfg)
		}}
		p.hops[addr] = ss
	}
	return ss
}

// open returns a new stream to addr over one of its pooled sessions.
func (p *pool) open(ctx context.Context, addr string) (net.Conn, error) {
	ss := p.hop(addr, true)
	if ss == nil {
		return nil, errClosed
	}
	return ss.open(ctx)
}

// tryOpen returns a new stream to addr when a pooled session has room and
// nothing has to wait for it, else nil (see sessionSet.tryOpen).
func (p *pool) tryOpen(addr string) *yamux.Stream {
	if ss := p.hop(addr, false); ss != nil {
		return ss.tryOpen()
	}
	return nil
}

// queue runs fn on one of the goroutines that do addr's queued work
// (sessionSet.queue), and reports false, having done nothing, when the
// pool is closed. It never waits.
func (p *pool) queue(addr string, fn func()) bool {
	ss := p.hop(addr, true)
	if ss == nil {
		return false
	}
	ss.queue(fn)
	return true
}

// done tells the pool that a stream to addr has ended, so that sessions a
// burst opened and no longer needs are closed.
func (p *pool) done(addr string) {
	if ss := p.hop(addr, false); ss != nil {
		ss.streamDone()
	}
}

// dialSession dials addr in mux mode and starts a yamux client session.
func dialSession(ctx context.Context, d *dialer, addr string, ycfg *yamux.Config) (*yamux.Session, error) {
	conn, err := d.dial(ctx, addr, route.ModeMux)
	if err != nil {
		return nil, err
	}
	s, err := yamux.Client(conn, ycfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start session with %s: %w", addr, err)
	}
	return s, nil
}

// close closes every pooled session. It is idempotent.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	hops := p.hops
	p.hops = map[string]*sessionSet{}
	p.mu.Unlock()
	for _, ss := range hops {
		ss.close()
	}
}
