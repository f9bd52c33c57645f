package yamux

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

type streamState uint8

const (
	streamInit streamState = iota
	streamSYNSent
	streamSYNReceived
	streamEstablished
	streamLocalClose
	streamRemoteClose
	streamClosed
	streamReset
)

// Stream is used to represent a logical stream
// within a session.
type Stream struct {
	// relaychain patch: the fields are ordered for size, as a relay holds
	// two streams per request.
	recvWindow uint32
	sendWindow uint32

	id uint32
	// recvFrames counts the data frames received, and closeSeen (under
	// stateLock) its value when closeTimer was last armed: the close
	// timeout runs from the peer's last frame (relaychain patch, see
	// closeTimeout).
	recvFrames atomic.Uint32
	closeSeen  uint32

	state streamState
	// ackPending says the peer opened this stream and has not had its ACK
	// yet, and cutErr is what a reader gets once the queue is empty after
	// forceClose cut the stream short (relaychain patch; both under
	// stateLock).
	ackPending bool
	// localFin says this side closed the stream for writing (beginClose),
	// as opposed to a session's end closing it (relaychain patch; under
	// stateLock).
	localFin bool
	// relayIdle says a Relay with an idle rule reads the stream, which
	// then needs no close timer (relaychain patch, relay.go; under
	// stateLock).
	relayIdle bool
	stateLock sync.Mutex
	cutErr    error

	session *Session

	recv     recvQueue
	grow     growth // relaychain patch, growth.go
	recvLock sync.Mutex

	// passTo and passIdle are SetPassOn's, under recvLock; passed counts
	// the bytes the receive loop passed on (relaychain patch, passon.go).
	passTo   *Stream
	passIdle time.Duration
	passed   atomic.Int64
	passBase int64 // passed when SetPassOn was called

	// resetTo is the stream a reset of this one passes on to (relaychain
	// patch, reset.go: ResetWith).
	resetTo atomic.Pointer[Stream]

	// relayFrom and relayTo are the Relays this stream is the source and
	// the destination of (relaychain patch, relay.go).
	relayFrom, relayTo atomic.Pointer[relayRun]

	// relaychain patch: the headers start in the stream's own arrays, so
	// that a stream costs fewer allocations, and the error channels come
	// from a pool when a send waits (waitForSend).
	// The headers are pointers to the arrays rather than slices of them
	// (relaychain patch): 32 bytes less put the stream in the 352-byte
	// size class. A header left in the send queue by a failed send is
	// replaced by a new array.
	controlHdr     *[headerSize]byte
	controlHdrLock sync.Mutex
	controlBuf     [headerSize]byte
	// peerReset says the reset came from the peer's RST, not from this
	// side (relaychain patch, reset.go: ResetByPeer; under stateLock).
	// Here it fills the padding after controlBuf.
	peerReset bool

	sendHdr  *[2 * headerSize]byte
	sendLock sync.Mutex
	sendBuf  [2 * headerSize]byte

	// relaychain patch: made at the first wait (notify.go).
	recvNotify notifier
	sendNotify notifier

	readDeadline  deadline // relaychain patch: deadline.go
	writeDeadline deadline
	writeIdle     atomic.Int64 // time.Duration; relaychain patch, SetWriteIdle

	// establishCh is notified if the stream is established or being closed.
	// relaychain patch: only setOpenTimeout waits on it, so it is made only
	// with a StreamOpenTimeout (a notify of a nil channel does nothing).
	establishCh chan struct{}

	// closeTimer is set with stateLock held to honor the StreamCloseTimeout
	// setting on Session.
	closeTimer *time.Timer
	closeMoved uint64 // recv.moved when closeTimer was last armed
}

// newStream is used to construct a new stream within
// a given session for an ID
func newStream(session *Session, id uint32, state streamState) *Stream {
	s := &Stream{
		id:         id,
		session:    session,
		state:      state,
		recvWindow: initialStreamWindow,
		sendWindow: initialStreamWindow,
	}
	s.controlHdr = &s.controlBuf
	s.sendHdr = &s.sendBuf
	if session.config.StreamOpenTimeout > 0 {
		s.establishCh = make(chan struct{}, 1)
	}
	s.ackPending = state == streamSYNReceived
	s.grow.window = session.config.MaxStreamWindowSize
	return s
}

// Session returns the associated stream session
func (s *Stream) Session() *Session {
	return s.session
}

// StreamID returns the ID of this stream
func (s *Stream) StreamID() uint32 {
	return s.id
}

// Read is used to read from the stream
func (s *Stream) Read(b []byte) (n int, err error) {
	defer s.recvNotify.notify()
	if err := s.awaitData(); err != nil {
		return 0, err
	}
	s.recvLock.Lock()
	n = s.recv.read(b)
	s.recvLock.Unlock()

	// Send a window update potentially. relaychain patch: one that cannot
	// be sent does not fail this read, nor lose what is queued after it:
	// the bytes arrived. A session that failed ends the stream once its
	// queue is read (awaitData): with EOF when the peer's FIN came, else
	// with the cause.
	_ = s.sendWindowUpdate()
	return n, nil
}

// WriteTo writes the stream's data to w until EOF, handing w each received
// frame's buffer in one Write without copying it (relaychain patch). A
// frame's bytes count against the receive window until w.Write returns, so
// a stream whose writer stalls holds at most one window. It returns nil at
// EOF, and the first error otherwise.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	return s.forward(w, nil)
}

// ForwardTo is WriteTo that also passes the end on (relaychain patch): the
// bytes that arrived with the peer's FIN go to w with w.WriteClose, which
// for a Stream puts its FIN on the same frame. w must close itself for
// writing in WriteClose; when the stream ends with no bytes left to pass,
// ForwardTo returns nil without calling it, and the caller closes w.
func (s *Stream) ForwardTo(w interface {
	io.Writer
	WriteClose([]byte) (int, error)
}) (int64, error) {
	return s.forward(w, w)
}

// forward is WriteTo, and ForwardTo when wc is not nil.
func (s *Stream) forward(w io.Writer, wc interface{ WriteClose([]byte) (int, error) }) (total int64, err error) {
	defer s.recvNotify.notify()
	defer func() {
		// From SetPassOn on: frames passed before ForwardTo began count.
		// One still being passed as an error ends it may be missed.
		s.recvLock.Lock()
		base := s.passBase
		s.passTo = nil
		s.recvLock.Unlock()
		total += s.passed.Load() - base
	}()
	for {
		if err := s.awaitData(); err != nil {
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		// The state first: a frame's bytes are queued before its FIN is
		// processed, so if the peer had closed by now, its last bytes are
		// queued, and a queue emptied by this take means this chunk ends
		// the stream. (Looking at the state after the take would let a
		// FIN that arrives in between close the next hop one chunk early.)
		s.stateLock.Lock()
		ended := s.cutErr == nil && (s.state == streamRemoteClose || s.state == streamClosed)
		s.stateLock.Unlock()
		s.recvLock.Lock()
		c := s.recv.take()
		last := ended && s.recv.empty()
		s.recvLock.Unlock()

		var k int
		var werr error
		if last && wc != nil {
			// The peer's FIN came with these bytes: pass both on in one
			// frame (w is, or wraps, a Stream).
			k, werr = wc.WriteClose(c.b)
		} else {
			k, werr = w.Write(c.b)
		}
		total += int64(k)
		s.recvLock.Lock()
		s.recv.release(len(c.b))
		s.recvLock.Unlock()
		putChunk(c.buf)
		if werr == nil && k < len(c.b) {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			return total, werr
		}
		_ = s.sendWindowUpdate() // as in Read: the queue still counts
	}
}

// awaitData blocks until data is queued (nil), the stream ends (io.EOF or
// ErrConnectionReset), the read deadline passes (ErrTimeout) or the session
// shuts down with nothing queued (what ended the session: a connection
// error, or ErrSessionShutdown after a local Close).
func (s *Stream) awaitData() error {
	var waited time.Duration // counted for window growth with the queue's lock
	var notified chan struct{}
	shutdown := false
	for {
		// If the stream is closed and there's no data buffered, return EOF
		s.stateLock.Lock()
		state, cut := s.state, s.cutErr
		s.stateLock.Unlock()
		s.recvLock.Lock()
		empty := s.recv.empty()
		s.grow.waited += waited
		s.recvLock.Unlock()
		waited = 0
		// relaychain patch: once the session has shut down, upstream went
		// back to the top and spun until Close had force-closed the stream
		// (hashicorp/yamux#176). Return what is queued, then stop: with EOF
		// if the peer's FIN came before the end (the receive loop processed
		// it before shutdownCh closed), else with why the session ended.
		switch {
		case !empty && (shutdown || state != streamReset):
			return nil
		case state == streamReset:
			return ErrConnectionReset
		case cut != nil:
			return cut
		case state == streamRemoteClose || state == streamClosed:
			return io.EOF
		case shutdown:
			return s.session.cutCause()
		}
		if notified == nil {
			// Made before the checks above run again, so that a wake-up
			// after them is not lost (notify.go).
			notified = s.recvNotify.wait()
			continue
		}

		var timeout <-chan time.Time
		var timer *time.Timer
		now := time.Now()
		if readDeadline := s.readDeadline.Load(); !readDeadline.IsZero() {
			timer = timerPool.Get().(*time.Timer)
			timer.Reset(readDeadline.Sub(now))
			timeout = timer.C
		}
		select {
		case <-s.session.shutdownCh:
			shutdown = true
		case <-notified:
		case <-timeout:
			timerPool.Put(timer)
			if s.readDeadline.Load().After(time.Now()) {
				continue // moved on meanwhile, as passOn does
			}
			return ErrTimeout
		}
		if timer != nil {
			timer.Stop()
			timerPool.Put(timer)
		}
		if s.session.config.WindowGrowth != nil {
			waited = time.Since(now) // the reader waited for data
		}
	}
}

// Write is used to write to the stream
func (s *Stream) Write(b []byte) (n int, err error) {
	return s.writeAll(b, false)
}

// writeAll writes all of b, a frame at a time, and with fin closes the
// stream with the frame that carries its end (relaychain patch: Write and
// WriteClose).
func (s *Stream) writeAll(b []byte, fin bool) (int, error) {
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	total := 0
	for total < len(b) {
		s.renewWriteIdle()
		n, err := s.writeFin(b[total:], fin)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// writeFin writes one frame of b, as much as the send window allows; with
// fin, the frame that carries the end of b also closes the stream.
func (s *Stream) writeFin(b []byte, fin bool) (n int, err error) {
START:
	if err := s.writable(); err != nil {
		return 0, err
	}

	// If there is no data available, block
	window := s.sendWindowNow()
	if window == 0 {
		goto WAIT
	}
	return s.sendFrame(b[:min(window, uint32(len(b)))], fin && window >= uint32(len(b)))

WAIT:
	notified := s.sendNotify.wait()
	if s.sendWindowNow() > 0 || s.writable() != nil {
		goto START // changed before the channel was made (notify.go)
	}
	var timeout <-chan time.Time
	var timer *time.Timer
	writeDeadline := s.writeDeadline.Load()
	if !writeDeadline.IsZero() {
		timer = timerPool.Get().(*time.Timer) // relaychain patch: pooled
		timer.Reset(time.Until(writeDeadline))
		timeout = timer.C
	}
	select {
	case <-s.session.shutdownCh:
		// relaychain patch: return rather than spin until Close has
		// force-closed the stream (hashicorp/yamux#176).
		err = ErrSessionShutdown
	case <-notified:
	case <-timeout:
		err = ErrTimeout
	}
	if timer != nil {
		timer.Stop()
		timerPool.Put(timer)
	}
	if err != nil {
		return 0, err
	}
	goto START
}

// writable returns why the stream cannot be written, if it cannot: it is
// closed for writing or reset.
func (s *Stream) writable() error {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	switch s.state {
	case streamLocalClose, streamClosed:
		return ErrStreamClosed
	case streamReset:
		return ErrConnectionReset
	}
	return nil
}

// sendFrame sends body as one data frame, which with fin also closes the
// stream, and takes it from the send window. The caller holds sendLock
// and has checked the state and the window.
func (s *Stream) sendFrame(body []byte, fin bool) (int, error) {
	hdr, closing, closeStream := s.frameHeader(uint32(len(body)), fin)
	if closing {
		defer s.endClose(closeStream)
	}
	if err := s.session.waitForSend(hdr, body); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.sendHdr = new([2 * headerSize]byte)
		}
		return 0, err
	}
	s.sendWindowUse(uint32(len(body)))
	return len(body), nil
}

// frameHeader encodes, in sendHdr, the header of a data frame of n bytes:
// with the SYN or ACK a lazily opened stream still owes (behind a window
// update carrying its growth, if any), and with fin the FIN, the stream's
// state moved for the close (beginClose). closing says the FIN is in it,
// and closeStream that the caller must finish the close with endClose
// once the frame is sent. The caller holds sendLock.
func (s *Stream) frameHeader(n uint32, fin bool) (hdr header, closing, closeStream bool) {
	flags := s.sendFlags()
	hdr = s.sendHdr[:headerSize]
	if flags != 0 {
		// LazyOpen: this frame opens (SYN) or accepts (ACK) the stream.
		// Window growth, if any, goes in a window update in front of it.
		if delta := s.openDelta(); delta > 0 {
			hdr.encode(typeWindowUpdate, flags, s.id, delta)
			hdr, flags = s.sendHdr[:2*headerSize], 0
		}
	}
	if fin {
		var openFlags uint16
		closing, openFlags, closeStream = s.beginClose()
		if closing {
			flags |= openFlags | flagFIN
		}
	}
	header(hdr[len(hdr)-headerSize:]).encode(typeData, flags, s.id, n)
	return hdr, closing, closeStream
}

// sendWindowNow returns what the send window lets the stream send.
func (s *Stream) sendWindowNow() uint32 { return atomic.LoadUint32(&s.sendWindow) }

// sendWindowUse takes n sent bytes from the send window.
func (s *Stream) sendWindowUse(n uint32) { atomic.AddUint32(&s.sendWindow, ^uint32(n-1)) }

// sendFlags determines any flags that are appropriate
// based on the current stream state
func (s *Stream) sendFlags() uint16 {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	var flags uint16
	switch s.state {
	case streamInit:
		flags |= flagSYN
		s.state = streamSYNSent
	case streamSYNReceived:
		s.state = streamEstablished
	}
	// relaychain patch: the ACK also when the peer's FIN came first (with
	// LazyOpen the stream is then remote-closed and not yet ACKed), or the
	// opener would keep it as an unanswered open.
	if s.ackPending {
		flags |= flagACK
		s.ackPending = false
	}
	return flags
}

// sendWindowUpdate potentially sends a window update enabling
// further writes to take place. Must be invoked with the lock.
func (s *Stream) sendWindowUpdate() error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	// Determine the delta update
	s.recvLock.Lock()
	delta := s.owedWindow()

	// LazyOpen: a small update does not go out just to carry the SYN or
	// ACK; those ride on the stream's first frame (relaychain patch). Nor
	// does the growth past the initial window of a stream not yet ACKed
	// while most of the initial window is left: it rides on the first
	// frame out too (openDelta), so that a request and its answer stay one
	// frame each way at any window size.
	if s.session.config.LazyOpen {
		skip := delta < s.updateStep()
		if !skip && s.recvWindow >= initialStreamWindow/2 {
			// Only a large update looks at the state (Read calls this on
			// every read).
			s.stateLock.Lock()
			skip = s.ackPending || s.state == streamInit
			s.stateLock.Unlock()
		}
		if skip {
			s.recvLock.Unlock()
			return nil
		}
	}

	// Determine the flags if any
	flags := s.sendFlags()

	// Check if we can omit the update
	if delta < s.updateStep() && flags == 0 {
		s.recvLock.Unlock()
		return nil
	}

	if s.session.config.WindowGrowth != nil && delta >= s.updateStep() {
		// A full update goes out: the epoch ends, and may grow the window
		// (relaychain patch, growth.go).
		s.maybeGrow(time.Now(), delta)
		delta = s.owedWindow()
	}

	// Update our window
	s.recvWindow += delta
	s.recvLock.Unlock()

	// Send the header
	hdr := header(s.controlHdr[:])
	hdr.encode(typeWindowUpdate, flags, s.id, delta)
	if err := s.session.waitForSend(hdr, nil); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = new([headerSize]byte)
		}
		return err
	}
	return nil
}

// openDelta takes the window growth still to announce when a lazily
// opened stream sends its first frame (relaychain patch).
func (s *Stream) openDelta() uint32 {
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	delta := s.owedWindow()
	if delta < s.updateStep() {
		return 0 // not worth a header yet, as in sendWindowUpdate
	}
	s.recvWindow += delta
	return delta
}

// owedWindow returns the receive window the peer has not been given back:
// the window less what is queued and what the peer may still send
// (relaychain patch). The caller holds recvLock.
func (s *Stream) owedWindow() uint32 {
	return (s.grow.window - uint32(s.recv.len())) - s.recvWindow
}

// Buffered returns the number of received bytes a Read would return
// without blocking (relaychain patch).
func (s *Stream) Buffered() int {
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	return s.recv.n
}

// sendClose is used to send a FIN
func (s *Stream) sendClose(openFlags uint16) error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	flags := s.sendFlags() | openFlags
	flags |= flagFIN
	var delta uint32
	if openFlags != 0 {
		delta = s.openDelta() // LazyOpen: the close is the first frame
	}
	hdr := header(s.controlHdr[:])
	hdr.encode(typeWindowUpdate, flags, s.id, delta)
	if err := s.session.waitForSend(hdr, nil); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = new([headerSize]byte)
		}
		return err
	}
	return nil
}

// Close is used to close the stream
func (s *Stream) Close() error {
	fin, openFlags, closeStream := s.beginClose()
	if !fin {
		return nil
	}
	s.sendClose(openFlags)
	s.endClose(closeStream)
	return nil
}

// beginClose moves the stream's state for a local close. It reports
// whether a FIN must be sent, the SYN or ACK flag a lazily opened stream
// still owes, and whether the stream is then closed both ways.
func (s *Stream) beginClose() (fin bool, openFlags uint16, closeStream bool) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	switch s.state {
	case streamInit:
		// LazyOpen, nothing sent yet: the FIN carries the SYN.
		openFlags = flagSYN
		s.state = streamLocalClose
	// Opened means we need to signal a close
	case streamSYNSent:
		s.state = streamLocalClose
	case streamSYNReceived:
		s.state = streamLocalClose
	case streamEstablished:
		s.state = streamLocalClose
	case streamRemoteClose:
		s.state = streamClosed
		closeStream = true
	case streamLocalClose, streamClosed, streamReset:
		return false, 0, false
	default:
		panic("unhandled state")
	}
	if s.ackPending { // not accepted, or LazyOpen: not yet ACKed
		openFlags |= flagACK
		s.ackPending = false
	}
	s.localFin = true

	// This shouldn't happen (the more realistic scenario to cancel the
	// timer is via processFlags) but just in case this ever happens, we
	// cancel the timer to prevent dangling timers.
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}

	// If we have a StreamCloseTimeout set we start the timeout timer.
	// We do this only if we're not already closing the stream since that
	// means this was a graceful close.
	//
	// This prevents memory leaks if one side (this side) closes and the
	// remote side poorly behaves and never responds with a FIN to complete
	// the close. After the specified timeout, we clean our resources up no
	// matter what.
	if !closeStream && !s.relayIdle {
		s.armCloseTimer()
	}
	return true, openFlags, closeStream
}

// armCloseTimer starts the close timer, if the session has a
// StreamCloseTimeout. The caller holds stateLock.
func (s *Stream) armCloseTimer() {
	if s.session.config.StreamCloseTimeout <= 0 {
		return
	}
	s.closeSeen = s.recvFrames.Load()
	s.closeMoved = s.recv.moved.Load()
	s.closeTimer = time.AfterFunc(s.session.config.StreamCloseTimeout, s.closeTimeout)
}

// endClose finishes a local close once the FIN is sent.
func (s *Stream) endClose(closeStream bool) {
	s.notifyWaiting()
	if closeStream {
		s.session.closeStream(s.id)
	}
}

// WriteClose writes b and closes the stream as Close does, the FIN riding
// on the frame that carries the end of b, which saves a frame (relaychain
// patch). An empty b is a Close.
func (s *Stream) WriteClose(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, s.Close()
	}
	return s.writeAll(b, true)
}

// closeTimeout is called after StreamCloseTimeout during a close to
// close this stream.
//
// relaychain patch: only a peer that stays silent that long is cut off.
// Upstream counted from the local close, so a stream that sent its FIN
// with its request, as every relaychain request does, was cut in the
// middle of any answer that took longer than the timeout to arrive.
func (s *Stream) closeTimeout() {
	if s.closeWaitGoesOn() {
		return
	}
	// Close our side forcibly
	s.forceClose(ErrTimeout)

	// Free the stream from the session map
	s.session.closeStream(s.id)

	// Send a RST so the remote side closes too (relaychain patch: with
	// sendRST, reset.go).
	_ = s.session.sendRST(s.id)
}

// closeWaitGoesOn re-arms the close timer and reports true when the
// stream is not idle: since the timer was armed the peer sent a data
// frame, or this side's reader took bytes out of the queue (the peer may
// have been held by a full window). It also reports true when the stream
// ended meanwhile. A peer silent, and a reader stopped, for the whole
// timeout get the stream cut, as upstream: a reader that walked away
// from a queue, or a peer that sends and never closes into a stream
// nobody reads, must not hold it forever.
func (s *Stream) closeWaitGoesOn() bool {
	seen, moved := s.recvFrames.Load(), s.recv.moved.Load()
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if s.state == streamClosed || s.state == streamReset || s.closeTimer == nil {
		return true
	}
	active := seen != s.closeSeen || moved != s.closeMoved
	s.closeSeen, s.closeMoved = seen, moved
	if active {
		s.closeTimer.Reset(s.session.config.StreamCloseTimeout)
	}
	return active
}

// forceClose is used for when the session is exiting
//
// relaychain patch: cause, if the peer had not finished sending (no FIN
// yet), is what a reader gets once it has read what is queued, rather than
// the io.EOF of a stream that ended cleanly.
func (s *Stream) forceClose(cause error) {
	s.stateLock.Lock()
	if s.state != streamRemoteClose && s.state != streamClosed && s.state != streamReset {
		s.cutErr = cause
	}
	s.state = streamClosed
	s.stateLock.Unlock()
	s.notifyWaiting()
	s.endGrowth()
}

// processFlags is used to update the state of the stream
// based on set flags, if any. Lock must be held
func (s *Stream) processFlags(flags uint16) error {
	if flags == 0 {
		return nil // most frames (relaychain patch: no lock for them)
	}
	if flags&flagRST != 0 {
		defer s.passReset() // runs last, with stateLock released
	}
	s.stateLock.Lock()
	defer s.stateLock.Unlock()

	// Close the stream without holding the state lock
	closeStream := false
	defer func() {
		if closeStream {
			if s.closeTimer != nil {
				// Stop our close timeout timer since we gracefully closed
				s.closeTimer.Stop()
			}

			s.session.closeStream(s.id)
		}
	}()

	if flags&flagACK == flagACK {
		if s.state == streamSYNSent {
			s.state = streamEstablished
		}
		asyncNotify(s.establishCh)
		s.session.establishStream(s.id)
	}
	if flags&flagFIN == flagFIN {
		switch s.state {
		case streamSYNSent:
			fallthrough
		case streamSYNReceived:
			fallthrough
		case streamEstablished:
			s.state = streamRemoteClose
			s.notifyWaiting()
		case streamLocalClose:
			s.state = streamClosed
			closeStream = true
			s.notifyWaiting()
		case streamReset:
			// relaychain patch: this side reset the stream (Reset) after
			// the receive loop had looked the frame's stream up; the
			// peer's FIN crossed the RST. Upstream called it a protocol
			// error and ended the session, every stream on the link.
		default:
			s.session.logger.Printf("[ERR] yamux: unexpected FIN flag in state %d", s.state)
			return ErrUnexpectedFlag
		}
	}
	if flags&flagRST == flagRST {
		if s.state != streamReset {
			s.peerReset = true
		}
		s.state = streamReset
		closeStream = true
		s.notifyWaiting()
	}
	return nil
}

// notifyWaiting notifies all the waiting channels
func (s *Stream) notifyWaiting() {
	s.recvNotify.notify()
	s.sendNotify.notify()
	asyncNotify(s.establishCh)
	s.kickRelay()
}

// incrSendWindow updates the size of our send window
func (s *Stream) incrSendWindow(hdr header, flags uint16) error {
	if flags&flagFIN != 0 {
		s.passOn(nil, flags) // Close sends its FIN on a window update
	}
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Increase window, unblock a sender
	atomic.AddUint32(&s.sendWindow, hdr.Length())
	s.sendNotify.notify()
	// relaychain patch: only the Relay that writes to s waits for its
	// window (a FIN or RST kicked both in processFlags). Kicking the one
	// that reads s too started a runner with nothing to do for every
	// answer, whose first frame a window update opens.
	s.relayTo.Load().kick()
	return nil
}

// readData is used to handle a data frame
func (s *Stream) readData(hdr header, flags uint16, conn io.Reader) error {
	length := hdr.Length()
	if length == 0 {
		s.passOn(nil, flags) // a FIN on an empty frame
		return s.processFlags(flags)
	}

	// Check that our recv window is not exceeded
	s.recvLock.Lock()
	if length > s.recvWindow {
		s.session.logger.Printf("[ERR] yamux: receive window exceeded (stream: %d, remain: %d, recv: %d)", s.id, s.recvWindow, length)
		s.recvLock.Unlock()
		return ErrRecvWindowExceeded
	}
	s.recvLock.Unlock()

	s.recvFrames.Add(1) // the peer is alive, for closeTimeout

	// relaychain patch: read the frame into a pooled chunk without holding
	// recvLock (only this goroutine lowers recvWindow), then queue it.
	buf := getChunk(int(length))
	if _, err := io.ReadFull(conn, *buf); err != nil {
		putChunk(buf)
		s.session.logger.Printf("[ERR] yamux: Failed to read stream data: %v", err)
		return err
	}
	if s.passOn(*buf, flags) {
		putChunk(buf)
		return s.processFlags(flags)
	}
	s.recvLock.Lock()
	s.recv.push(chunk{buf: buf, b: *buf})
	s.recvWindow -= length
	if s.recvWindow == 0 {
		s.grow.exhausted = true // the peer sent all the window let it
	}
	s.recvLock.Unlock()

	// relaychain patch: flags after the data, so that a reader woken by a
	// FIN on this frame finds the frame's bytes queued, not an early EOF.
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Unblock any readers
	s.recvNotify.notify()
	s.relayFrom.Load().kickData()
	return nil
}

// SetDeadline sets the read and write deadlines
func (s *Stream) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	if err := s.SetWriteDeadline(t); err != nil {
		return err
	}
	return nil
}

// SetReadDeadline sets the deadline for blocked and future Read calls.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.readDeadline.Store(t)
	s.recvNotify.notify()
	s.kickRelay()
	return nil
}

// SetWriteIdle makes the write deadline an idle one (relaychain patch): with
// d > 0, Write and WriteClose set the write deadline to d from now before
// each frame they send, so that a write of many frames that keeps moving
// (at whatever pace the peer's window updates allow) is never cut off, and
// one that moves nothing for d fails with ErrTimeout. Zero turns it off.
// SetWriteDeadline still moves the deadline of a write in progress, as to
// wake a blocked writer.
func (s *Stream) SetWriteIdle(d time.Duration) {
	s.writeIdle.Store(int64(d))
}

// renewWriteIdle moves the write deadline to the write idle time from now,
// when one is set.
func (s *Stream) renewWriteIdle() {
	if d := s.writeIdle.Load(); d > 0 {
		s.writeDeadline.Store(time.Now().Add(time.Duration(d)))
	}
}

// SetWriteDeadline sets the deadline for blocked and future Write calls
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.writeDeadline.Store(t)
	s.sendNotify.notify()
	s.kickRelay()
	return nil
}

// Shrink is used to compact the amount of buffers utilized
// This is useful when using Yamux in a connection pool to reduce
// the idle memory utilization. (relaychain patch: received data is held
// in pooled per-frame chunks that are freed as they are read, so there is
// nothing to shrink.)
func (s *Stream) Shrink() {}

// updDiv: a window update goes out once the window to give back reaches
// max/updDiv.
const updDiv = 2

// updateStep returns how much window a stream gives back at least in one
// update: half the configured window, also once its window has grown
// (relaychain patch), so that a grown stream whose reader slows down still
// moves at steps of the configured window's half: a sender blocked on a
// half of a 16 MiB window would see no progress for as long as 8 MiB takes
// the reader. (A window starts at the configured size and only grows.)
func (s *Stream) updateStep() uint32 {
	return s.session.config.MaxStreamWindowSize / updDiv
}
