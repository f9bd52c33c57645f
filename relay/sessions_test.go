package relay

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// sessionServer accepts yamux sessions on loopback and holds them (and
// the streams they carry, which send nothing) until the test ends.
func sessionServer(t *testing.T) (dial func(context.Context) (*yamux.Session, error)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamuxConfig(256<<10, 256<<10, 0, time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []*yamux.Session
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := yamux.Server(c, cfg)
			if err != nil {
				c.Close()
				return
			}
			mu.Lock()
			held = append(held, s)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, s := range held {
			s.Close()
		}
	})
	return func(ctx context.Context) (*yamux.Session, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		return yamux.Client(c, cfg)
	}
}

// TestSessionSet_TryOpenAtFullHop checks that tryOpen, which serves the
// relay's receive loops, opens a stream wherever open would without a
// dial: on a session with room, and, once the hop has all its sessions and
// every one is full, on the least loaded one, as open does. It must not
// dial: with fewer sessions than sessionsPerHop, all full, it returns nil.
func TestSessionSet_TryOpenAtFullHop(t *testing.T) {
	ss := &sessionSet{dial: sessionServer(t)}
	defer ss.close()
	if st := ss.tryOpen(); st != nil {
		t.Fatal("tryOpen opened a stream with no session: it dialed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var streams []net.Conn
	defer func() {
		for _, st := range streams {
			st.Close()
		}
	}()
	open := func() {
		t.Helper()
		st, err := ss.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	open()
	// Room on the one session: tryOpen takes it.
	st := ss.tryOpen()
	if st == nil {
		t.Fatal("tryOpen found no room on a session with 1 stream")
	}
	streams = append(streams, st)
	for len(streams) < streamsPerSession {
		open()
	}
	if st := ss.tryOpen(); st != nil {
		t.Fatalf("tryOpen opened a stream on a full session, with %d of %d sessions: it should leave the dial to open", 1, sessionsPerHop)
	}
	for len(streams) < streamsPerSession*sessionsPerHop {
		open()
	}
	ss.mu.Lock()
	n := len(ss.sessions)
	ss.mu.Unlock()
	if n != sessionsPerHop {
		t.Fatalf("%d streams on %d sessions, want %d", len(streams), n, sessionsPerHop)
	}
	// Every session full, and no more may be dialed: tryOpen takes the
	// least loaded one, as open would.
	for range 3 {
		st := ss.tryOpen()
		if st == nil {
			t.Fatalf("tryOpen refused with all %d sessions full: the relay would start a goroutine for open to do the same", sessionsPerHop)
		}
		streams = append(streams, st)
	}
	ss.mu.Lock()
	n = len(ss.sessions)
	most := 0
	for _, s := range ss.sessions {
		most = max(most, s.NumStreams())
	}
	ss.mu.Unlock()
	if n != sessionsPerHop || most != streamsPerSession+1 {
		t.Fatalf("after 3 more streams: %d sessions, the fullest with %d streams; want %d and %d (spread over the least loaded)",
			n, most, sessionsPerHop, streamsPerSession+1)
	}
}
