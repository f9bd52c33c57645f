package yamux

// Resetting a stream, and passing a peer's reset on (relaychain patch).
//
// Upstream has no way to abort a stream: Close is a half-close, and a RST
// is sent only when a close times out. relaychain cancels a request by
// resetting its stream, so that a FIN keeps its plain meaning (the writer
// is done) and a client can send its FIN with its request; a relay passes
// the reset on to the next hop from the receive loop (ResetWith), with no
// goroutine watching the stream.

// Reset aborts the stream both ways: the peer's reads and writes on it
// fail with ErrConnectionReset, and so do this side's from now on (bytes
// still queued are dropped). A stream already closed both ways, or reset,
// is left as it is. Reset never waits for the connection: when the
// session's send queue is full, a goroutine queues the RST.
func (s *Stream) Reset() error {
	s.stateLock.Lock()
	prev := s.state
	if prev == streamClosed || prev == streamReset {
		s.stateLock.Unlock()
		return nil
	}
	s.state = streamReset
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}
	s.stateLock.Unlock()
	s.notifyWaiting()
	s.session.closeStream(s.id)
	if prev == streamInit {
		return nil // LazyOpen, nothing sent: the peer never knew of it
	}
	return s.session.sendRST(s.id)
}

// ResetByPeer reports whether the stream was reset by its peer (a RST
// received) before this side reset it: for relaychain, that the client
// canceled the request, where a reset of this side's own is a failure.
func (s *Stream) ResetByPeer() bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.peerReset
}

// ResetWith makes a reset of s by its peer also reset dst, from the
// session's receive loop. A relay sets it from the client's stream to the
// next hop's, so that a cancel travels on at once even while nothing reads
// the client's stream.
func (s *Stream) ResetWith(dst *Stream) {
	s.resetTo.Store(dst)
	s.stateLock.Lock()
	reset := s.state == streamReset
	s.stateLock.Unlock()
	if reset {
		s.passReset() // the peer's RST came first
	}
}

// passReset resets the stream set by ResetWith, if any. The receive loop
// calls it after a RST from the peer, holding no lock of s.
func (s *Stream) passReset() {
	if dst := s.resetTo.Swap(nil); dst != nil {
		dst.Reset()
	}
}

// PeerClosed reports whether the peer has closed its side cleanly (FIN)
// and every byte it sent has been read, so that a Read returns io.EOF at
// once.
func (s *Stream) PeerClosed() bool {
	if !s.FinReceived() {
		return false
	}
	s.recvLock.Lock()
	defer s.recvLock.Unlock()
	return s.recv.empty()
}

// FinReceived reports whether the peer has closed its side cleanly (FIN),
// so that once the bytes queued are read, a Read returns io.EOF.
func (s *Stream) FinReceived() bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return (s.state == streamRemoteClose || s.state == streamClosed) && s.cutErr == nil
}

// sendRST queues a RST for stream id without waiting: if the send queue is
// full, a goroutine waits for room (as sendNoWait does).
func (s *Session) sendRST(id uint32) error {
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeWindowUpdate, flagRST, id, 0)
	select {
	case s.sendCh <- &sendReady{Hdr: hdr}:
		return nil
	case <-s.shutdownCh:
		return ErrSessionShutdown
	default:
		go s.sendNoWait(hdr)
		return nil
	}
}
