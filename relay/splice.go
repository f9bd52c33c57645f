package relay

import (
	"io"
	"net"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// Pooled copy buffers, for copies whose source is not a yamux stream: a
// file into a stream at the terminal, and a stream into the client's sinks.
// A relayed mux stream needs none: the patched yamux (third_party/yamux)
// hands each received frame to the next hop with Stream.ForwardTo, and a
// TCP-to-TCP copy splices in the kernel.
const copyBufSize = 256 << 10

// muxCopyBufSize is the buffer of a copy from a file into a yamux stream:
// each read becomes one frame (up to the stream's window), and on a
// CPU-bound chain of hops larger frames move more bytes per wake-up and
// per window update at every hop (idleChunkMux says why not larger).
const muxCopyBufSize = 512 << 10

var copyBufs, muxCopyBufs = newBufPool(copyBufSize), newBufPool(muxCopyBufSize)

// copyBuffered is io.CopyBuffer with a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.get()
	defer copyBufs.put(bp)
	return io.CopyBuffer(dst, src, (*bp)[:copyBufSize])
}

// copyToMux is copyBuffered with muxCopyBufSize reads, for a copy into a
// yamux stream.
func copyToMux(dst io.Writer, src io.Reader) (int64, error) {
	bp := muxCopyBufs.get()
	defer muxCopyBufs.put(bp)
	return io.CopyBuffer(dst, src, (*bp)[:muxCopyBufSize])
}

// closeWrite half-closes c: the peer reads EOF, and c can still be read.
func closeWrite(c net.Conn) error {
	switch c := c.(type) {
	case *yamux.Stream:
		return c.Close() // a yamux Close is a half-close (FIN)
	case interface{ CloseWrite() error }:
		return c.CloseWrite()
	}
	return c.Close()
}

// writeClose writes p to c and half-closes c, in one frame on a yamux
// stream.
func writeClose(c net.Conn, p []byte) (int, error) {
	if ys, ok := c.(*yamux.Stream); ok {
		return ys.WriteClose(p)
	}
	n, err := c.Write(p)
	if err == nil {
		err = closeWrite(c)
	}
	return n, err
}

// copier is one direction of a splice: it runs copy, then half-closes
// end (the destination's bare connection), and records the outcome.
type copier struct {
	copy func() (int64, error)
	end  net.Conn
	n    int64
	err  error
}

// copyStream copies src to dst until EOF. A yamux stream is forwarded
// frame by frame with its ForwardTo, which hands dst each frame's buffer
// without a copy (and the last bytes with dst's FIN, in one frame); the
// frame's bytes stay in src's receive window until dst has taken them, so
// a stalled dst holds one window of src. With idle set, dst's writes and
// src's reads are under the idle rule (idleWriter).
func copyStream(dst, src net.Conn, idle time.Duration) (int64, error) {
	ys, ok := src.(*yamux.Stream)
	if !ok {
		if idle <= 0 {
			return copyBuffered(dst, src)
		}
		src.SetReadDeadline(time.Now().Add(idle))
		return copyBuffered(newIdleWriter(dst, idle, src), src)
	}
	yd, _ := dst.(*yamux.Stream)
	if yd != nil {
		// Small frames go on from the session's receive loop when they can
		// (the patched yamux's passon.go), the rest through ForwardTo.
		ys.SetPassOn(yd, idle)
	}
	if idle <= 0 {
		if yd != nil {
			return ys.ForwardTo(yd)
		}
		return ys.WriteTo(dst)
	}
	ys.SetReadDeadline(time.Now().Add(idle))
	w := newIdleWriter(dst, idle, ys)
	defer w.clear()
	return ys.ForwardTo(w)
}

// reset aborts c both ways: a yamux stream is reset (the peer's reads and
// writes fail, which is how a mux exchange is canceled); anything else is
// closed, with a deadline that wakes a blocked read.
func reset(c net.Conn) {
	if ys, ok := c.(*yamux.Stream); ok {
		ys.Reset()
		return
	}
	c.SetDeadline(time.Now())
	c.Close()
}

// peerDone reports whether c is a yamux stream whose peer has sent its FIN
// and whose every byte has been read: its direction of a splice is over.
func peerDone(c net.Conn) bool {
	ys, ok := c.(*yamux.Stream)
	return ok && ys.PeerClosed()
}

// splice copies up->down and down->up until both directions end, with
// half-close, and returns the bytes sent towards up. requestDone says the
// request direction is already over (the client's FIN went on with the
// request), so only the answer is copied. The answer direction is cut
// when it moves nothing for idle (the request direction is silent by
// design while the answer streams). Once the answer has ended, the request
// direction has linger to see the client's close. A reset (the client's
// cancel) or an error in either direction resets both; a reset of up by
// the client reaches down at once, from the session's receive loop
// (yamux ResetWith). It closes both connections before it returns.
//
// answered, if not nil, is called when the answer direction ends without
// an error.
func splice(up, down net.Conn, requestDone bool, linger, idle time.Duration, answered func()) (toUp int64, err error) {
	abort := func() {
		reset(up)
		reset(down)
	}
	if yu, ok := up.(*yamux.Stream); ok {
		if yd, ok := down.(*yamux.Stream); ok {
			yu.ResetWith(yd)
		}
	}
	// The request direction, if not over, runs in its own goroutine, the
	// answer in this one.
	request := &copier{copy: func() (int64, error) { return copyStream(down, up, 0) }, end: down}
	answer := &copier{copy: func() (int64, error) { return copyStream(up, down, idle) }, end: up}
	requestOver := make(chan struct{})
	if requestDone {
		close(requestOver)
	} else {
		go func() {
			defer close(requestOver)
			request.n, request.err = request.copy()
			if request.err == nil {
				request.err = closeWrite(request.end)
			}
			if request.err != nil {
				abort()
			}
		}()
	}
	answer.n, answer.err = answer.copy()
	if answer.err == nil {
		answer.err = closeWrite(answer.end)
	}
	if answer.err != nil {
		abort()
	} else {
		if answered != nil {
			answered()
		}
		deadline := time.Now().Add(linger)
		up.SetDeadline(deadline)
		down.SetDeadline(deadline)
	}
	<-requestOver
	up.Close()
	down.Close()
	if answer.err != nil {
		return answer.n, answer.err
	}
	return answer.n, request.err
}
