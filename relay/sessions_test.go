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

// TestSessionSet_QueueBoundsWorkers queues more work for a hop than it has
// queue workers, all of it waiting: at most queueWorkers run at once, the
// first ones queued first; all of it runs once released, and the workers
// then end.
func TestSessionSet_QueueBoundsWorkers(t *testing.T) {
	const jobs = 5 * queueWorkers
	ss := &sessionSet{}
	release := make(chan struct{})
	var mu sync.Mutex
	running, most := 0, 0
	var started []int
	var done sync.WaitGroup
	done.Add(jobs)
	for i := range jobs {
		ss.queue(func() {
			defer done.Done()
			mu.Lock()
			running++
			most = max(most, running)
			started = append(started, i)
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := running
		mu.Unlock()
		if n == queueWorkers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs running after 10s, want %d", n, queueWorkers)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for a worker too many to show
	mu.Lock()
	first := append([]int(nil), started...)
	mu.Unlock()
	for _, i := range first {
		if i >= queueWorkers {
			t.Errorf("job %d started while the first %d held every worker: %v", i, queueWorkers, first)
		}
	}
	close(release)
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("queued jobs still not done 10s after the release")
	}
	if most > queueWorkers {
		t.Errorf("%d jobs ran at once, want at most %d", most, queueWorkers)
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		ss.qmu.Lock()
		w, q := ss.workers, len(ss.queued)
		ss.qmu.Unlock()
		if w == 0 && q == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d workers and %d jobs left 10s after all ran", w, q)
		}
	}
}
