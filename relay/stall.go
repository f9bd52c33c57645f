package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// stallChecks is how many times per idle timeout a stallWatch samples the
// progress: a stalled copy is cut between idle and idle*(1+1/stallChecks)
// after its last progress.
const stallChecks = 4

// stallWatch cuts a copy off when it makes less than minIdleChunk bytes of
// progress for the idle timeout. It samples a counter of the bytes moved
// (the kernel's count of the bytes the peer acknowledged) on a timer, so
// the copy itself runs with no deadline and no chunks: one splice(2) or
// sendfile(2) loop for the whole transfer, as in a plain io.Copy.
type stallWatch struct {
	progress func() (uint64, error) // bytes moved so far
	cut      func()                 // makes the copy fail at once
	idle     time.Duration

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	fired   bool      // cut was called
	mark    uint64    // progress at the last mark
	since   time.Time // when the mark was taken
}

// watchStall starts watching: progress must grow by minIdleChunk within
// every idle, or cut is called (once, with the watch's lock held, so never
// after stop has returned). mark is progress's value now.
func watchStall(progress func() (uint64, error), mark uint64, cut func(), idle time.Duration) *stallWatch {
	w := &stallWatch{progress: progress, cut: cut, idle: idle, mark: mark, since: time.Now()}
	w.mu.Lock() // check reads w.t
	defer w.mu.Unlock()
	w.t = time.AfterFunc(idle/stallChecks, w.check)
	return w
}

// check samples the progress: a mark when it moved minIdleChunk since the
// last one, the cut when the last mark is idle old (or the counter cannot
// be read: the connection is gone).
func (w *stallWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := time.Now()
	p, err := w.progress()
	switch {
	case err == nil && p-w.mark >= minIdleChunk:
		w.mark, w.since = p, now
	case err != nil || now.Sub(w.since) >= w.idle:
		w.fired = true
		w.cut()
		return
	}
	w.t.Reset(w.idle / stallChecks)
}

// stop ends the watch and reports whether it cut the copy off. No cut
// happens after stop returns.
func (w *stallWatch) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
	return w.fired
}

// copyWatched copies up to n bytes from src to the TCP connection dst in
// one io.Copy (splice(2) from a TCP src, sendfile(2) from a file), under a
// stallWatch of the bytes dst's peer acknowledged: a copy that moves less
// than minIdleChunk in idle is cut off by deadlines in the past, which
// deadlines sets (on dst, and on src when it is a connection); it clears
// them first, and the caller after. It returns ok false, having copied
// nothing, when the kernel does not count
// acknowledged bytes: when it cannot say, or says none were, though the
// peer has by now acknowledged the link's preface and the exchange's
// RESPONSE (a sandbox such as gVisor may leave TCP_INFO's counters at zero,
// which would look like a stall).
func copyWatched(dst *net.TCPConn, src io.Reader, n int64, idle time.Duration, deadlines func(time.Time)) (k int64, ok bool, err error) {
	acked := func() (uint64, error) { return ackedBytes(dst) }
	mark, err := acked()
	if err != nil || mark == 0 {
		return 0, false, nil
	}
	deadlines(time.Time{}) // the copy runs under no deadline but the cut's
	w := watchStall(acked, mark, func() { deadlines(time.Unix(1, 0)) }, idle)
	k, err = copyBuffered(dst, io.LimitReader(src, n))
	if w.stop() && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("moved less than %d bytes in %v: %w", minIdleChunk, idle, err)
	}
	return k, true, err
}
