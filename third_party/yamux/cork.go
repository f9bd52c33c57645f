package yamux

import "sync/atomic"

// Corked pass-on (relaychain patch).
//
// A receive loop that passes frames on (passon.go) wrote each with a writev
// of its own. Under load, one read of the connection often holds several
// whole frames, and on a relay most of them go to the same next-hop link
// (many streams' answers from one origin link, to one client link). A
// writev on a loopback or LAN socket costs the same for 100 bytes as for
// 4 KiB: the stack's work, and the wake-up of the reader, are per write.
// So while the next frame is already read (its header and body are in the
// buffered reader, so processing it reads nothing from the socket), a frame
// passed on is held back, with the destination's connection (writeSem),
// and the next ones for that connection join it. The lot goes out with one
// writev before the receive loop would read from its socket again, before
// it hands a new stream to ServeStreams' handler (which may write), and
// when it ends. A frame that arrives on its own, as at one request at a
// time, still goes out at once: nothing waits for a read.
//
// Holding a connection's writeSem from another session's receive loop is
// safe because that loop never waits for a write while it holds it: the
// frames it passes on go with SendNoWait's non-blocking tries, whose
// writeSem it either holds (the cork) or tries to take; other writers of
// the held connection queue for the send loop meanwhile, behind the
// corked frames, which keeps each stream's frames in order.

// corkMax is the most bytes held back for one connection; a cork that
// reaches it is written out at once. corkFrameMax is the largest frame
// that starts a cork: a larger one is bulk, whose per-byte cost is what
// counts, and it goes out at once.
const corkMax, corkFrameMax = 64 << 10, 16 << 10

// corkState is a session's part in corking: as the destination
// (by, buf) and as the receive loop that corks (corked).
type corkState struct {
	// by is the session whose receive loop holds this session's
	// writeSem with frames held back in buf, or nil.
	by atomic.Pointer[Session]
	// buf is those frames; writeSem guards it.
	buf *[]byte
	// corked lists the sessions this session's receive loop holds
	// corks of (the receive loop's own).
	corked []*Session
	// serving is the stream whose ServeStreams handler the receive loop
	// is running, or nil: only that call may join the loop's corks
	// (SendNoWaitFor). ServeStreams' own goroutine also calls the handler,
	// for streams that came before it was set.
	serving atomic.Pointer[Stream]
}

// frameBuffered reports whether the next frame is read already, header and
// body, so that processing it reads nothing from the socket. Called by the
// receive loop only.
func (s *Session) frameBuffered() bool {
	h, ok := s.nextHeader()
	return ok && (h.MsgType() != typeData || s.bufRead.Buffered() >= headerSize+int(h.Length()))
}

// writeFrom writes a frame of dst's session (which the caller holds: its
// writeSem, or a cork of from's receive loop) for a frame passed on by
// from's receive loop, or for another caller when from is nil. With a cork
// it joins the cork; when from's next frame is read already, it starts
// one; otherwise it goes out at once (writeNow). writeSem is released once
// the frame (or the cork) is written.
func (s *Session) writeFrom(from *Session, corked bool, hdr, body []byte) {
	switch {
	case corked:
		*s.cork.buf = append(append(*s.cork.buf, hdr...), body...)
		if len(*s.cork.buf) >= corkMax {
			from.flushCorks()
		}
	case from != nil && from != s && len(body) <= corkFrameMax && from.frameBuffered():
		bp := stageBufs.Get().(*[]byte) // a cork is held only while its read is worked through
		*bp = append(append((*bp)[:0], hdr...), body...)
		s.cork.buf = bp
		s.cork.by.Store(from)
		from.cork.corked = append(from.cork.corked, s)
	default:
		s.writeNow(hdr, body)
	}
}

// flushCorks writes out every cork s's receive loop holds, each with one
// writev (writeNow), which releases the connection. Called by the receive
// loop only.
func (s *Session) flushCorks() {
	for i, d := range s.cork.corked {
		s.cork.corked[i] = nil
		bp := d.cork.buf
		d.cork.buf = nil
		d.cork.by.Store(nil)
		d.writeNow(*bp, nil) // copies what the kernel does not take
		if cap(*bp) <= stageKeep {
			stageBufs.Put(bp)
		}
	}
	s.cork.corked = s.cork.corked[:0]
}
