package yamux

import "sync"

// Frames sent without waiting (relaychain patch).
//
// A Relay's runner must not wait for a connection that is busy: with many
// streams relayed into one congested link, every runner would hold a
// goroutine stack until its frame was written, which is what Relay exists
// to avoid. sendLater writes the frame directly when nobody else is
// writing the connection; otherwise it queues the frame for the send loop
// with a callback, and returns.

// laterQueue is a session's queue of frames for sendLater.
type laterQueue struct {
	mu     sync.Mutex
	q      []*sendReady
	closed bool          // the send loop has stopped: frames fail at once
	ch     chan struct{} // wakes the send loop (capacity 1)
}

// sendLater sends hdr and body as one frame without waiting for a busy
// connection. done gets the outcome, once: before sendLater returns when
// the frame was written directly, else from the send loop. body must not
// change until then.
func (s *Session) sendLater(hdr header, body []byte, done func(error)) {
	if sent, err := s.sendDirect(hdr, body); sent {
		done(err)
		return
	}
	s.later.mu.Lock()
	if s.later.closed {
		s.later.mu.Unlock()
		done(ErrSessionShutdown)
		return
	}
	s.later.q = append(s.later.q, &sendReady{Hdr: hdr, Body: body, Done: done})
	s.later.mu.Unlock()
	asyncNotify(s.later.ch)
}

// takeLater appends up to n queued frames to batch, oldest first.
func (s *Session) takeLater(batch []*sendReady, n int) []*sendReady {
	s.later.mu.Lock()
	defer s.later.mu.Unlock()
	k := len(s.later.q)
	if n < k {
		k = n
	}
	if k <= 0 {
		return batch
	}
	batch = append(batch, s.later.q[:k]...)
	rest := copy(s.later.q, s.later.q[k:])
	clear(s.later.q[rest:])
	s.later.q = s.later.q[:rest]
	if rest > 0 {
		asyncNotify(s.later.ch) // more for the next batch
	}
	return batch
}

// failLater stops the queue when the send loop stops: the frames queued
// fail with err, and so do any sent later.
func (s *Session) failLater(err error) {
	s.later.mu.Lock()
	q := s.later.q
	s.later.q, s.later.closed = nil, true
	s.later.mu.Unlock()
	for _, r := range q {
		r.Done(err)
	}
}
