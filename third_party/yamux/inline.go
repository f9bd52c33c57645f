package yamux

import "errors"

// Serving a stream on the receive loop (relaychain patch).
//
// A relay's work for a small request is to read the REQUEST, open a stream
// to the next hop, send the request on and relay the two streams. Done by a
// goroutine per stream, that costs a goroutine start and, on a multi-core
// host, the scheduler's wake-up of another thread for it, per request and
// per hop. ServeStreams' handler runs on the receive loop once a stream's
// first frame is in, and with these calls, none of which waits, it can do
// all of that there when nothing has to wait: the REQUEST is queued, a
// session to the next hop has room, and the request fits the new stream's
// window. Relay then moves the rest without a goroutine waiting.

// ErrWouldBlock is returned by the calls that never wait (TryOpenStream,
// SendNoWait) for what they could do only by waiting (relaychain patch).
var ErrWouldBlock = errors.New("would block")

// TryOpenStream is OpenStream that never waits (relaychain patch): with
// AcceptBacklog streams still waiting for the peer's ACK it returns
// ErrWouldBlock. Without LazyOpen, OpenStream also sends a window update,
// which waits: TryOpenStream then returns ErrWouldBlock too.
func (s *Session) TryOpenStream() (*Stream, error) {
	if !s.config.LazyOpen {
		return nil, ErrWouldBlock
	}
	return s.openStream(false)
}

// Peek copies up to len(b) of the stream's queued bytes into b, without
// taking them from the queue, and returns how many it copied (relaychain
// patch). It never waits.
func (s *Stream) Peek(b []byte) int {
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	return s.recv.copyOut(b)
}

// SendNoWait sends b as one data frame, with the stream's FIN if fin,
// without waiting for anything (relaychain patch): it writes the frame at
// once, with one non-blocking write (a part the kernel does not take is
// written by a goroutine, which holds the connection meanwhile, so frames
// stay in order). It sends nothing and returns ErrWouldBlock when that
// cannot be done: another writer holds the stream or the connection, the
// connection has no file descriptor to write without waiting (TLS), or the
// send window does not hold all of b; or the stream's error when it is
// closed for writing or reset. A failed write ends the session, as every
// write of the session does.
func (s *Stream) SendNoWait(b []byte, fin bool) error {
	return s.sendNoWait(b, fin, nil)
}

// SendNoWaitFor is SendNoWait for a frame sent from the receive loop of
// src's session, by its ServeStreams handler for src (relaychain patch):
// with Config.HandlerNeverWaits on that session, the frame may be held back
// with the frames that loop passes on to the same connection, and goes
// out with them in one write (cork.go), as soon as the loop would read its
// socket again.
func (s *Stream) SendNoWaitFor(src *Stream, b []byte, fin bool) error {
	from := src.session
	if !from.config.HandlerNeverWaits || from.cork.serving.Load() != src {
		// Not on the receive loop's handler call for src (ServeStreams'
		// goroutine, say): the loop's corks are not this caller's.
		from = nil
	}
	return s.sendNoWait(b, fin, from)
}

// sendNoWait is SendNoWait for a frame that the receive loop of from
// passes on (passOn), which may hold the frame back in a cork (cork.go),
// or for another caller when from is nil.
func (s *Stream) sendNoWait(b []byte, fin bool, from *Session) error {
	if !s.sendLock.TryLock() {
		return ErrWouldBlock
	}
	defer s.sendLock.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if uint32(len(b)) > s.sendWindowNow() {
		return ErrWouldBlock
	}
	sess := s.session
	if sess.rawConn == nil {
		return ErrWouldBlock
	}
	// A cork of from's receive loop holds the connection already.
	corked := from != nil && sess.cork.by.Load() == from
	if corked {
		if sess.IsClosed() {
			return ErrSessionShutdown
		}
	} else if took, err := sess.takeWrite(); !took {
		return ErrWouldBlock
	} else if err != nil {
		return err
	}
	hdr, closing, closeStream := s.frameHeader(uint32(len(b)), fin)
	s.sendWindowUse(uint32(len(b)))
	// Releases the connection once all is written.
	sess.writeFrom(from, corked, hdr, b)
	if closing {
		s.endClose(closeStream)
	}
	return nil
}
