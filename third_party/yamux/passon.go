package yamux

import (
	"net"
	"time"
)

// Passing frames on from the receive loop (relaychain patch).
//
// A relay forwards each frame of a stream to a stream of another session
// (ForwardTo, or Relay's runners). Done by a goroutine, that costs a
// wake-up per frame: the receive loop queues the frame and wakes (or, for
// Relay, starts) the forwarder, which writes it on. On a small request
// through a chain, those wake-ups are most of what each hop adds. So while
// ForwardTo or Relay runs, a frame that finds nothing queued before it, is
// small, and can go out at once (the destination's send window holds it
// and nobody is writing its session's connection) is written on by the
// receive loop itself: one wake-up less per frame and hop. Anything else
// is queued for the forwarder as before, which keeps the frames in order:
// a frame is passed on only when the queue is empty and the forwarder
// holds nothing.
//
// The receive loop never waits for the destination: its connection is
// written with one non-blocking writev, and what the kernel did not take
// is finished by a goroutine that holds the connection until it is done.
// A destination whose peer stops reading therefore stalls only its own
// session, as with the forwarder.

// passOnMax is the largest frame the receive loop passes on itself. Larger
// frames are bulk, where the forwarder's goroutine pipelines: the receive
// loop reads the next frame while the forwarder writes this one.
const passOnMax = 64 << 10

// SetPassOn lets the next ForwardTo of s have the session's receive loop
// write small frames straight to dst (see above); dst must be the stream
// ForwardTo writes to. With idle > 0, each frame passed on moves the read
// deadline of s to idle from now, as the forwarder's progress would.
// ForwardTo turns it off when it returns. Relay sets it itself.
func (s *Stream) SetPassOn(dst *Stream, idle time.Duration) {
	s.recvLock.Lock()
	s.passTo, s.passIdle = dst, idle
	s.passBase = s.passed.Load()
	s.recvLock.Unlock()
}

// passOn is called by the receive loop with a frame it has read (length
// bytes in b, none for a bare FIN) before queueing it. It reports whether
// the frame went to the pass-on destination, its window then used and the
// bytes counted as forwarded.
func (s *Stream) passOn(b []byte, flags uint16) bool {
	fin := flags&flagFIN != 0
	if len(b) == 0 && !fin || flags&(flagRST|flagSYN) != 0 || len(b) > passOnMax {
		return false
	}
	s.recvLock.Lock()
	dst, idle := s.passTo, s.passIdle
	deadline := s.readDeadline.raw()
	ok := dst != nil && s.recv.len() == 0 &&
		// A frame whose window must go back at once is left to the
		// forwarder, which sends window updates (the receive loop must
		// not wait on its own connection).
		s.owedWindow()+uint32(len(b)) < s.updateStep()
	s.recvLock.Unlock()
	if !ok || dst.sendNoWait(b, fin, s.session) != nil {
		return false
	}
	s.recvLock.Lock()
	s.recvWindow -= uint32(len(b))
	s.recvLock.Unlock()
	s.passed.Add(int64(len(b)))
	if idle > 0 {
		// Not over a deadline set meanwhile, such as a relay's abort.
		s.readDeadline.CompareAndSwap(deadline, time.Now().Add(idle))
	}
	return true
}

// writeNow writes hdr and body to the connection with one non-blocking
// writev. The caller holds writeSem; writeNow releases it once the frame is
// written, which for a part the kernel did not take is done by a goroutine
// (writeRest) with the bytes copied. A write error ends the session.
func (s *Session) writeNow(hdr, body []byte) {
	// The connection's write deadline may have passed since its last
	// write, which would fail the write before it is tried.
	s.deadlineConn.SetWriteDeadline(time.Now().Add(s.config.ConnectionWriteTimeout))
	s.iov = [2][]byte{hdr, body}
	n, err := writeOnce(s.rawConn, s.iov[:])
	s.iov = [2][]byte{}
	if err != nil {
		<-s.writeSem
		s.logger.Printf("[ERR] yamux: Failed to write frame: %v", err)
		go s.exitErr(err)
		return
	}
	if n == len(hdr)+len(body) {
		<-s.writeSem
		return
	}
	rest := make([]byte, 0, len(hdr)+len(body)-n)
	if n < len(hdr) {
		rest = append(append(rest, hdr[n:]...), body...)
	} else {
		rest = append(rest, body[n-len(hdr):]...)
	}
	go s.writeRest(rest)
}

// writeRest writes the rest of a frame writeNow began, and releases
// writeSem.
func (s *Session) writeRest(rest []byte) {
	bufs := net.Buffers{rest}
	err := s.writeConn(&bufs)
	<-s.writeSem
	if err != nil {
		s.logger.Printf("[ERR] yamux: Failed to write frame: %v", err)
		s.exitErr(err)
	}
}
