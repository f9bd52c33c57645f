package yamux

import (
	"sync/atomic"
	"time"
)

// Relaying a stream with no goroutine waiting (relaychain patch).
//
// ForwardTo holds a goroutine for as long as it forwards: while the answer
// is awaited, and while the next hop's window is shut. A relay with 10,000
// stalled streams held 10,000 goroutine stacks of about 9 KiB, on top of
// the windows. Relay does the same forwarding from short-lived goroutines:
// a runner starts when something can move (a frame was queued on src, a
// window update came for dst, either changed state, a deadline passed),
// moves what it can, and ends when it would have to wait for data or for
// window. Small frames still go on from the receive loop itself (passon.go)
// when nothing is queued before them.

// relayRun is one Relay in progress; src (relayFrom) and dst (relayTo)
// point to it. A stream may be the source of one Relay and the
// destination of another, as the two directions of a relay's splice.
type relayRun struct {
	src, dst *Stream
	idle     time.Duration
	done     func(int64, error)
	// pending counts kicks not yet seen by a runner; a kick that finds
	// none starts one. After the end it stays above zero, so no runner
	// starts again.
	pending atomic.Int32
	// inflight says a frame is with the destination's session
	// (sendLater), its bytes held in src's queue; sentErr is its outcome
	// and owed says src's window update is due, for the next runner.
	inflight atomic.Bool
	owed     atomic.Bool
	sentErr  atomic.Pointer[error]
	// The frame in flight: its header, its length, src's read deadline
	// when it left, and whether it carried dst's FIN (closing; the next
	// runner finishes the close, as endClose takes the session's
	// streamLock, which the send loop must not wait for). Written by send
	// before inflight is set, read after it is cleared.
	hdr                  [2 * headerSize]byte
	frameLen             int
	frameDeadline        int64 // src's readDeadline.raw()
	closing, closeStream bool
	sentFn               func(error)  // r.sent, made once
	total                atomic.Int64 // bytes the runners passed on
	timer                *time.Timer  // wakes a runner at src's read deadline
	waitFrom             time.Time    // when the queue ran empty, for window growth
	queuedAt             atomic.Int64 // a frame that kickData let wait came then (encodeDeadline), or 0
	holdsClose           bool         // src's close timer is held (holdCloseTimer)
}

// Relay forwards s to dst as ForwardTo does, with s's read deadline as the
// idle rule (with idle > 0 it is set to idle from now, and moved on by each
// frame passed on), but holds no goroutine while it waits (see above).
// done is called once, from a goroutine of its own or before Relay
// returns, with the bytes passed on and nil when s ended cleanly and its
// end went on to dst (dst is then closed for writing), or the error that
// stopped it: ErrTimeout when nothing moved until the read deadline,
// ErrConnectionReset when s was reset, dst's write error, or what cut s.
// The caller resets or closes both streams after done. Nothing else may
// read s meanwhile: its queued chunks are written from in place.
//
// "No goroutine waiting" is about data and window: a runner that sends
// a frame directly, or closes dst, on a link whose socket is full still
// waits for it, up to the connection write timeout (one per link, as
// the others find the link busy and queue their frames).
func (s *Stream) Relay(dst *Stream, idle time.Duration, done func(int64, error)) {
	r := &relayRun{src: s, dst: dst, idle: idle, done: done}
	s.SetPassOn(dst, idle)
	if idle > 0 {
		s.readDeadline.Store(time.Now().Add(idle))
	}
	if ct := s.session.config.StreamCloseTimeout; idle > 0 && idle <= ct {
		r.holdsClose = true
		s.holdCloseTimer(true)
	}
	r.pending.Store(1)
	s.relayFrom.Store(r)
	dst.relayTo.Store(r)
	r.run()
}

// kickRelay tells the Relays of s, if any, that something may move.
func (s *Stream) kickRelay() {
	s.relayFrom.Load().kick()
	s.relayTo.Load().kick()
}

// kick starts a runner unless one is running or r is nil, on the
// goroutines of Config.Go when it is set.
func (r *relayRun) kick() {
	if r != nil && r.pending.Add(1) == 1 {
		if start := r.src.session.config.Go; start != nil {
			start(r.run)
		} else {
			go r.run()
		}
	}
}

// kickData is kick for a frame just queued on src (readData). While dst's
// window is shut a runner could not move it, and the window update that
// opens it kicks one (incrSendWindow, after it adds to the window, which
// this reads after the frame was queued), so none is started; the frame's
// arrival is noted for window growth instead. Before, a relay whose
// streams were stalled on their clients started a goroutine with nothing
// to do for each frame that still came in.
func (r *relayRun) kickData() {
	if r == nil {
		return
	}
	if r.dst.sendWindowNow() > 0 || r.inflight.Load() {
		r.kick()
		return
	}
	if r.src.session.config.WindowGrowth != nil {
		r.queuedAt.CompareAndSwap(0, encodeDeadline(time.Now()))
	}
}

// run steps until a step ends the Relay, or no kick came during the last
// step.
func (r *relayRun) run() {
	for {
		n := r.pending.Load()
		if r.step() {
			return
		}
		if r.pending.Add(-n) == 0 {
			return
		}
	}
}

// step moves what can move without waiting for data or window, and
// reports whether the Relay ended.
func (r *relayRun) step() bool {
	s, d := r.src, r.dst
	queued := r.queuedAt.Swap(0)
	if !r.waitFrom.IsZero() {
		// The wait for data ended when a frame came, which may have been
		// before this runner (kickData).
		end := time.Now()
		if at := decodeDeadline(queued); queued != 0 && at.Before(end) {
			end = at
		}
		s.recvLock.Lock()
		s.grow.waited += max(end.Sub(r.waitFrom), 0)
		s.recvLock.Unlock()
		r.waitFrom = time.Time{}
	}
	for {
		// A frame still being sent holds its bytes in src's queue: nothing
		// moves, nor may the Relay end, until it is out.
		if r.inflight.Load() {
			return false
		}
		if r.closing {
			r.closing = false
			d.endClose(r.closeStream)
		}
		if err := r.sentErr.Load(); err != nil {
			return r.end(*err)
		}
		if r.owed.Swap(false) {
			// As in Read: src's queue is passed on even when its session
			// can no longer take the update (the peer sent all and left);
			// the state below ends the Relay once the queue is empty.
			_ = s.sendWindowUpdate()
		}
		// The state first, as in forward: a FIN seen here has its bytes
		// queued already.
		s.stateLock.Lock()
		state, cut := s.state, s.cutErr
		s.stateLock.Unlock()
		if state == streamReset {
			return r.end(ErrConnectionReset)
		}
		ended := cut == nil && (state == streamRemoteClose || state == streamClosed)
		s.recvLock.Lock()
		empty := s.recv.empty()
		s.recvLock.Unlock()
		if empty {
			switch {
			case cut != nil:
				return r.end(cut)
			case ended:
				return r.end(r.passEnd())
			case s.session.IsClosed():
				return r.end(s.session.cutCause())
			case d.session.IsClosed():
				return r.end(d.session.cutCause())
			case d.writable() == ErrConnectionReset:
				// Not a closed dst: the FIN may have gone on from the
				// receive loop before src's state shows it.
				return r.end(ErrConnectionReset)
			}
			if s.session.config.WindowGrowth != nil {
				r.waitFrom = time.Now()
			}
			return r.wait()
		}
		if err := d.writable(); err != nil {
			return r.end(err)
		}
		if !r.send(ended) {
			return r.wait() // for dst's window
		}
	}
}

// send passes on the head of src's queue, as much as dst's window takes,
// in one frame that also carries dst's FIN when it takes src's last bytes
// after src's FIN. The frame goes with sendLater, so a busy connection
// holds no goroutine: sent finishes it. It reports whether it sent
// anything (a frame still queued counts).
func (r *relayRun) send(ended bool) bool {
	s, d := r.src, r.dst
	d.sendLock.Lock()
	defer d.sendLock.Unlock()
	window := d.sendWindowNow()
	if window == 0 {
		return false
	}
	s.recvLock.Lock()
	b := s.recv.peek(int(window))
	last := ended && s.recv.empty()
	s.recvLock.Unlock()
	hdr, closing, closeStream := d.frameHeader(uint32(len(b)), last)
	// The frame's own copy of the header: it may be written after
	// sendLock is gone, and only one frame is in flight.
	own := header(r.hdr[:copy(r.hdr[:], hdr)])
	d.sendWindowUse(uint32(len(b)))
	r.frameLen, r.frameDeadline = len(b), s.readDeadline.raw()
	r.closing, r.closeStream = closing, closeStream
	if r.sentFn == nil {
		r.sentFn = r.sent // made at the first frame: most small answers pass on
	}
	r.inflight.Store(true)
	d.session.sendLater(own, b, r.sentFn)
	return true
}

// sent finishes a frame of send once its session wrote it or failed to,
// and kicks a runner; it may run on the session's send loop, so it takes
// no lock that waits on the session.
func (r *relayRun) sent(err error) {
	s, k := r.src, r.frameLen
	s.recvLock.Lock()
	if err != nil {
		s.recv.unpeek(k)
	} else {
		s.recv.advance(k)
	}
	s.recvLock.Unlock()
	if err != nil {
		r.sentErr.Store(&err)
	} else {
		r.total.Add(int64(k))
		if r.idle > 0 {
			// Not over a deadline set meanwhile, such as an abort.
			s.readDeadline.CompareAndSwap(r.frameDeadline, time.Now().Add(r.idle))
		}
		r.owed.Store(true)
	}
	r.inflight.Store(false)
	r.kick()
}

// passEnd passes src's clean end on to dst, unless it went on already
// (with the last bytes, or from the receive loop): dst is then closed for
// writing.
func (r *relayRun) passEnd() error {
	d := r.dst
	switch err := d.writable(); err {
	case nil:
		return d.Close()
	case ErrStreamClosed:
		d.stateLock.Lock()
		local := d.localFin
		d.stateLock.Unlock()
		if local {
			return nil // the FIN went on with the last frame
		}
		if d.session.IsClosed() {
			return d.session.cutCause() // closed by its session's end
		}
		return err
	default:
		return err
	}
}

// wait ends the step with nothing more to move, after checking src's read
// deadline and arming the timer for it. It reports whether the Relay ended.
func (r *relayRun) wait() bool {
	dl := r.src.readDeadline.Load()
	if dl.IsZero() {
		return false
	}
	left := time.Until(dl)
	if left <= 0 {
		return r.end(ErrTimeout)
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(left, r.kick)
	} else {
		r.timer.Reset(left)
	}
	return false
}

// end stops the Relay and calls done.
func (r *relayRun) end(err error) bool {
	s := r.src
	s.relayFrom.CompareAndSwap(r, nil)
	r.dst.relayTo.CompareAndSwap(r, nil)
	if r.timer != nil {
		r.timer.Stop()
	}
	s.recvLock.Lock()
	base := s.passBase
	s.passTo = nil
	s.recvLock.Unlock()
	if r.holdsClose {
		s.holdCloseTimer(false)
	}
	r.done(r.total.Load()+s.passed.Load()-base, err)
	return true
}

// holdCloseTimer stops the stream's close timer while a Relay whose idle
// rule is no longer than StreamCloseTimeout reads it (hold), and arms it
// again after (not hold) if the stream still waits for the peer's FIN. The
// idle rule cuts the stream when the Relay passes nothing on for idle; the
// close timer cuts it when, besides, the peer sends nothing for
// StreamCloseTimeout (relaychain sets both to the node's idle timeout): so
// the timer could never cut first, and a relay with 10,000 stalled streams
// held 10,000 timers for nothing.
func (s *Stream) holdCloseTimer(hold bool) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	s.relayIdle = hold
	switch {
	case hold && s.closeTimer != nil:
		s.closeTimer.Stop()
		s.closeTimer = nil
	case !hold && s.closeTimer == nil && s.state == streamLocalClose:
		s.armCloseTimer()
	}
}
