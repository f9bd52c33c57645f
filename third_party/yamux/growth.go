package yamux

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// relaychain patch: receive windows that grow while they limit a stream.
//
// A stream's receive window caps its throughput at one window per round
// trip of a window update, and on a busy host that round trip includes the
// scheduling delays of every process in a chain of hops. A window large
// enough for bulk transfers, given to every stream, would make every
// stalled stream hold that much. So a stream starts at
// Config.MaxStreamWindowSize and, when Config.WindowGrowth is set, doubles
// its window, up to the budget's Max, each time an epoch (the time between
// two full window updates it sends) shows that the window, not the reader
// or the sender, held it back: the sender used up the whole window (its
// writes were cut to what the window allowed), yet the reader spent at
// least a quarter of the epoch waiting for data. A larger window then lets the sender send larger
// frames and fewer of them, with fewer window updates, which on a
// CPU-bound chain of hops is what limits a bulk stream. A reader that is
// itself the bottleneck (a slow writer behind a relay, a client that
// stopped reading) does not wait for data; a sender slower than the window
// allows never uses all of it; a stream that moves little sends no full
// update: none of them grows. The signal is a proxy, and it fires mostly
// at the start of a bulk transfer, while the hops' buffers fill. So the
// first doubling waits until limited epochs have moved two windows: a
// download whose client reads its first window and then stalls (busy with
// those bytes, or gone) looks limited at every relay while the relay
// passes the client's two windows on (the one the client holds and the
// one it read), which is less than two windows after the first update
// starts the first epoch; each such stream would then hold its grown
// window until the budget ran out (a relay with 10,000 stalled streams
// held 64 grown windows, 16 MiB, that way). A bulk transfer moves a window
// or two more before its first doubling; a stream that has grown doubles
// at each limited epoch, as before. The growth is drawn from a budget that
// sessions may share, such as every session of one node, and goes back to
// it when the stream closes, so that at most the budget's Total is granted
// above the base windows. (A closed stream's queue can still hold bytes
// of its grown window until its reader drains or drops it.)

// WindowBudget bounds the receive-window growth of the streams of the
// sessions that share it (relaychain patch).
type WindowBudget struct {
	max   uint32
	total int64
	used  atomic.Int64
}

// NewWindowBudget returns a budget that lets one stream's window grow to
// max bytes, and all its streams' windows together grow by total bytes
// above their base windows.
func NewWindowBudget(max uint32, total int64) *WindowBudget {
	return &WindowBudget{max: max, total: total}
}

// Max returns the largest window a stream may grow to.
func (b *WindowBudget) Max() uint32 { return b.max }

// Used returns the bytes of growth its streams hold now.
func (b *WindowBudget) Used() int64 { return b.used.Load() }

// take draws n bytes from the budget, or reports false when they do not
// fit.
func (b *WindowBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.total {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// giveBack returns n bytes to the budget.
func (b *WindowBudget) giveBack(n int64) { b.used.Add(-n) }

// growth is a stream's window-growth state. window, exhausted, waited,
// proven and epoch are under the stream's recvLock; grown and ended under
// mu, which is taken last (endGrowth runs under the stream's stateLock,
// which is taken after recvLock elsewhere, so it must not take recvLock).
// The fields are ordered for size: a relay holds two streams per request.
type growth struct {
	window    uint32        // the window the stream grants now
	grown     uint32        // window bytes drawn from the budget
	waited    time.Duration // the reader's wait for data this epoch
	epoch     int64         // when the epoch began, encoded as a deadline (deadline.go); 0 before the first
	mu        sync.Mutex
	proven    uint32 // bytes given back at the end of limited epochs, before the first growth; then proved
	exhausted bool   // the sender used the whole window this epoch
	ended     bool   // the growth was given back: no more
}

// proved is growth.proven once limited epochs have moved two windows.
const proved = math.MaxUint32

// maybeGrow doubles the window when this epoch shows that the window held
// the stream back. The caller holds recvLock and is about to send a full
// window update of delta bytes, which ends the epoch.
func (s *Stream) maybeGrow(now time.Time, delta uint32) {
	g, b := &s.grow, s.session.config.WindowGrowth
	at := encodeDeadline(now)
	limited := g.exhausted && g.epoch != 0 && g.waited*4 >= time.Duration(at-g.epoch)
	g.exhausted, g.waited, g.epoch = false, 0, at
	if !limited || b == nil || g.window >= b.max {
		return
	}
	if base := uint64(s.session.config.MaxStreamWindowSize); uint64(g.window) <= base && g.proven != proved {
		// The first growth takes two windows moved in limited epochs.
		if p := uint64(g.proven) + uint64(delta); p < 2*base && p < proved {
			g.proven = uint32(p)
			return
		}
		g.proven = proved
	}
	add := min(g.window, b.max-g.window) // double, up to max
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended || !b.take(int64(add)) {
		return
	}
	g.window += add
	g.grown += add
}

// endGrowth gives the stream's window growth back to the budget; it is
// called when the stream is closed or cut, and is safe to call again.
func (s *Stream) endGrowth() {
	s.grow.mu.Lock()
	n := s.grow.grown
	s.grow.grown, s.grow.ended = 0, true
	s.grow.mu.Unlock()
	if n > 0 {
		s.session.config.WindowGrowth.giveBack(int64(n))
	}
}
