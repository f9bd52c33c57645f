package relay

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// Several yamux sessions may serve one next hop. A session carrying
// streamsPerSession streams is full: the next stream goes on another
// session, dialed if need be, up to sessionsPerHop of them. So one busy
// user of a hop (or an attacker holding streams open) does not fill the
// per-link stream cap of the next node for everyone else.
const (
	streamsPerSession = 128
	sessionsPerHop    = 16
)

// sessionSet is the live sessions to one address. It is safe for
// concurrent use; no lock is held while dialing.
type sessionSet struct {
	dial func(context.Context) (*yamux.Session, error)

	mu       sync.Mutex
	sessions []*yamux.Session
	dialing  chan struct{} // closed when the dial in progress ends; nil if none
	reaper   *time.Timer   // trims idle sessions a while after a stream ends
	// opening counts streams picked for a session but not yet opened, so
	// that a burst spreads over sessions instead of overfilling one.
	opening map[*yamux.Session]int
	closed  bool

	// queued is work for this hop that a receive loop could not do without
	// a wait (queue), done in order by up to queueWorkers goroutines.
	qmu     sync.Mutex
	queued  []func()
	workers int
}

// queueWorkers bounds the goroutines that do a hop's queued work. With 16,
// 64 concurrent small GETs through 3 relays served about a tenth fewer
// requests (a request that waits for a busy link waits in its worker, and
// fewer of them were batched into one write); 128 is as fast as a
// goroutine each, and still bounds a burst.
const queueWorkers = 128

// queue runs fn on one of the hop's queue workers, after the work queued
// before it, starting a worker when fewer than queueWorkers run. It never
// waits, so a receive loop can call it.
//
// A relay queues here the requests its receive loops cannot forward
// without a wait (no session with room, or the link busy), which each
// took a goroutine of their own before. A burst of 10,000 streams to one
// hop had about 9,600 goroutines at once, whose structs (4.4 MiB) the Go
// runtime never frees; the queue costs a func value per waiting request.
func (ss *sessionSet) queue(fn func()) {
	ss.qmu.Lock()
	ss.queued = append(ss.queued, fn)
	start := ss.workers < queueWorkers
	if start {
		ss.workers++
	}
	ss.qmu.Unlock()
	if start {
		go ss.work()
	}
}

// work does queued work until none is left.
func (ss *sessionSet) work() {
	for {
		ss.qmu.Lock()
		if len(ss.queued) == 0 {
			ss.queued = nil // the burst's backing array goes with it
			ss.workers--
			ss.qmu.Unlock()
			return
		}
		fn := ss.queued[0]
		ss.queued[0] = nil
		ss.queued = ss.queued[1:]
		ss.qmu.Unlock()
		fn()
	}
}

// reapAfter is how long after a stream ends the idle sessions beyond the
// first are closed: streams that end together are all gone by then.
const reapAfter = time.Second

// open opens a stream on the least loaded live session that is not full,
// dialing a new session when all are full (and fewer than sessionsPerHop)
// or none is live. A session that refuses the stream (closed, or shutting
// down with GoAway) is dropped and the choice is made again, once.
func (ss *sessionSet) open(ctx context.Context) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s, err := ss.pick(ctx)
		if err != nil {
			return nil, err
		}
		st, err := s.OpenStream()
		ss.untake(s)
		if err == nil {
			return st, nil
		}
		ss.drop(s)
		if attempt == 1 {
			return nil, fmt.Errorf("open stream: %w", err)
		}
	}
}

// tryOpen is open that never waits: it opens a stream on the session open
// would pick without a dial, the least loaded live one when it has room or
// the hop has all its sessions, if the open needs no wait (TryOpenStream).
// It returns nil otherwise, with nothing dialed or closed; the caller then
// uses open.
//
// With all sessionsPerHop sessions full, open takes the least loaded one
// anyway. Before tryOpen did the same, every stream beyond
// streamsPerSession × sessionsPerHop (2,048) to one hop took a goroutine
// in the relay, only to be opened on that session.
func (ss *sessionSet) tryOpen() *yamux.Stream {
	ss.mu.Lock()
	best, live := ss.lightest()
	if ss.closed || best == nil || !ss.takes(best, live) {
		ss.mu.Unlock()
		return nil
	}
	ss.take(best)
	ss.mu.Unlock()
	st, err := best.TryOpenStream()
	ss.untake(best)
	if err != nil {
		return nil
	}
	return st
}

// pick returns a session with room, dialing one if needed. Concurrent
// callers that all need a new session share one dial.
func (ss *sessionSet) pick(ctx context.Context) (*yamux.Session, error) {
	for {
		ss.mu.Lock()
		if ss.closed {
			ss.mu.Unlock()
			return nil, errClosed
		}
		best := ss.leastLoaded()
		if best != nil && ss.takes(best, len(ss.sessions)) {
			ss.take(best)
			ss.mu.Unlock()
			return best, nil
		}
		if wait := ss.dialing; wait != nil {
			ss.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		ss.dialing = done
		ss.mu.Unlock()

		s, err := ss.dial(ctx)
		ss.mu.Lock()
		ss.dialing = nil
		close(done)
		if err == nil && ss.closed {
			s.Close()
			err = errClosed
		}
		if err == nil {
			ss.sessions = append(ss.sessions, s)
		}
		ss.mu.Unlock()
		if err != nil {
			if best != nil { // all full but one works: use it rather than fail
				ss.mu.Lock()
				ss.take(best)
				ss.mu.Unlock()
				return best, nil
			}
			return nil, err
		}
		ss.mu.Lock()
		ss.take(s)
		ss.mu.Unlock()
		return s, nil
	}
}

// takes reports whether best, the least loaded of live sessions, takes
// the next stream rather than a new session: when it has room, or the
// hop has all its sessions. ss.mu must be held.
func (ss *sessionSet) takes(best *yamux.Session, live int) bool {
	return ss.load(best) < streamsPerSession || live >= sessionsPerHop
}

// load is the streams of s, open or being opened. ss.mu must be held.
func (ss *sessionSet) load(s *yamux.Session) int { return s.NumStreams() + ss.opening[s] }

// take counts a stream about to be opened on s. ss.mu must be held.
func (ss *sessionSet) take(s *yamux.Session) {
	if ss.opening == nil {
		ss.opening = map[*yamux.Session]int{}
	}
	ss.opening[s]++
}

// untake ends the count of take once the stream is opened, or failed to.
func (ss *sessionSet) untake(s *yamux.Session) {
	ss.mu.Lock()
	if ss.opening[s]--; ss.opening[s] <= 0 {
		delete(ss.opening, s)
	}
	ss.mu.Unlock()
}

// leastLoaded drops dead sessions, closes idle ones beyond the first (the
// extra sessions a burst needed), and returns the live one with the fewest
// streams, or nil. ss.mu must be held.
func (ss *sessionSet) leastLoaded() *yamux.Session {
	live, idle := ss.sessions[:0], 0
	for _, s := range ss.sessions {
		if s.IsClosed() {
			continue
		}
		if ss.load(s) == 0 {
			if idle++; idle > 1 {
				s.Close()
				continue
			}
		}
		live = append(live, s)
	}
	clear(ss.sessions[len(live):])
	ss.sessions = live
	best, _ := ss.lightest()
	return best
}

// lightest returns the live session with the fewest streams, or nil, and
// how many sessions are live. It changes nothing (tryOpen runs on a
// receive loop, where closing a session, which waits for its loops, must
// not happen). ss.mu must be held.
func (ss *sessionSet) lightest() (best *yamux.Session, live int) {
	for _, s := range ss.sessions {
		if s.IsClosed() {
			continue
		}
		live++
		if best == nil || ss.load(s) < ss.load(best) {
			best = s
		}
	}
	return best, live
}

// streamDone notes that a stream has ended: with more than one session, a
// trim of the idle ones is (re)scheduled for reapAfter from now.
func (ss *sessionSet) streamDone() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || len(ss.sessions) < 2 {
		return
	}
	if ss.reaper == nil {
		ss.reaper = time.AfterFunc(reapAfter, ss.trim)
	} else {
		ss.reaper.Reset(reapAfter)
	}
}

// trim closes idle sessions beyond the first, after a burst has ended.
func (ss *sessionSet) trim() {
	ss.mu.Lock()
	ss.leastLoaded()
	ss.mu.Unlock()
}

// drop forgets s and closes it.
func (ss *sessionSet) drop(s *yamux.Session) {
	ss.mu.Lock()
	for i, x := range ss.sessions {
		if x == s {
			ss.sessions = append(ss.sessions[:i], ss.sessions[i+1:]...)
			break
		}
	}
	ss.mu.Unlock()
	s.Close()
}

// close closes every session and refuses more. It is idempotent.
func (ss *sessionSet) close() {
	ss.mu.Lock()
	ss.closed = true
	if ss.reaper != nil {
		ss.reaper.Stop()
	}
	sessions := ss.sessions
	ss.sessions = nil
	ss.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
}
