package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/hashicorp/yamux"
	"golang.org/x/sync/singleflight"

	"github.com/relaychain/relaychain/route"
)

// errClosed is returned for work asked of a closed node, pool or client.
var errClosed = errors.New("closed")

// pool holds one yamux session per next hop, reused across requests and
// redialed when it dies. It is safe for concurrent use; no lock is held
// while dialing.
type pool struct {
	d     *dialer
	ycfg  *yamux.Config
	group singleflight.Group

	mu     sync.Mutex
	links  map[string]*yamux.Session
	closed bool
}

func newPool(d *dialer, ycfg *yamux.Config) *pool {
	return &pool{d: d, ycfg: ycfg, links: make(map[string]*yamux.Session)}
}

// open returns a new stream to addr over its pooled session. A session that
// turns out dead is dropped and redialed once.
func (p *pool) open(ctx context.Context, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s, err := p.session(ctx, addr)
		if err != nil {
			return nil, err
		}
		st, err := s.OpenStream()
		if err == nil {
			return st, nil
		}
		p.drop(addr, s)
		if attempt == 1 {
			return nil, fmt.Errorf("open stream to %s: %w", addr, err)
		}
	}
}

// session returns the live session to addr, dialing one if needed.
// Concurrent callers for one addr share a single dial.
func (p *pool) session(ctx context.Context, addr string) (*yamux.Session, error) {
	if s, err := p.live(addr); s != nil || err != nil {
		return s, err
	}
	v, err, _ := p.group.Do(addr, func() (any, error) {
		if s, err := p.live(addr); s != nil || err != nil {
			return s, err
		}
		conn, err := p.d.dial(ctx, addr, route.ModeMux)
		if err != nil {
			return nil, err
		}
		s, err := yamux.Client(conn, p.ycfg)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("start session with %s: %w", addr, err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			s.Close()
			return nil, errClosed
		}
		p.links[addr] = s
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*yamux.Session), nil
}

// live returns the pooled session to addr if it is still open.
func (p *pool) live(addr string) (*yamux.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if s := p.links[addr]; s != nil && !s.IsClosed() {
		return s, nil
	}
	return nil, nil
}

// drop forgets s as the session to addr and closes it.
func (p *pool) drop(addr string, s *yamux.Session) {
	p.mu.Lock()
	if p.links[addr] == s {
		delete(p.links, addr)
	}
	p.mu.Unlock()
	s.Close()
}

// close closes every pooled session. It is idempotent.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	links := p.links
	p.links = map[string]*yamux.Session{}
	p.mu.Unlock()
	for _, s := range links {
		s.Close()
	}
}
