package relay

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/relaychain/relaychain/route"
)

// Raw link pooling. An idle raw connection is kept for at most rawIdleKeep,
// shorter than the RawIdleTimeout after which a node closes it, so a pooled
// connection is rarely stale; a request that finds it stale anyway is
// retried once on a fresh connection before any byte of it was answered.
const (
	rawIdleKeep    = 20 * time.Second
	rawIdlePerHost = 32
)

// RawIdleTimeout is how long a node keeps an idle raw link open waiting for
// the next request.
const RawIdleTimeout = 60 * time.Second

type pooledConn struct {
	c     net.Conn
	since time.Time
}

// rawPool keeps idle raw connections per address, preface done, for reuse.
// It is safe for concurrent use.
type rawPool struct {
	d *dialer

	mu     sync.Mutex
	idle   map[string][]pooledConn
	closed bool
}

func newRawPool(d *dialer) *rawPool {
	return &rawPool{d: d, idle: make(map[string][]pooledConn)}
}

// get returns an idle connection to addr, or dials one. reused says the
// connection was pooled (and so may turn out stale).
func (p *rawPool) get(ctx context.Context, addr string) (c net.Conn, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errClosed
	}
	var stale []net.Conn
	list := p.idle[addr]
	for len(list) > 0 {
		ic := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(ic.since) < rawIdleKeep {
			c = ic.c
			break
		}
		stale = append(stale, ic.c)
	}
	p.idle[addr] = list
	p.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
	if c != nil {
		return c, true, nil
	}
	c, err = p.d.dial(ctx, addr, route.ModeRaw)
	return c, false, err
}

// put returns a connection whose last exchange completed to the pool.
func (p *rawPool) put(addr string, c net.Conn) {
	c.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed || len(p.idle[addr]) >= rawIdlePerHost {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], pooledConn{c: c, since: time.Now()})
	p.mu.Unlock()
}

// close closes every idle connection and refuses more. It is idempotent.
func (p *rawPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = map[string][]pooledConn{}
	p.mu.Unlock()
	for _, list := range idle {
		for _, ic := range list {
			ic.c.Close()
		}
	}
}
