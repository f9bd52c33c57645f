package relay

import (
	"io"
	"net"
	"sync/atomic"
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
	return ys.ForwardTo(newIdleWriter(dst, idle, ys))
}

// splice copies up->down and down->up until both directions end, with
// half-close, and returns the bytes sent towards up. The answer direction
// is cut when it moves nothing for idle (the request direction is silent
// by design while the answer streams). Once the answer has ended, the
// request direction has linger to see the client's close; an error in
// either direction, or the request direction ending first (a cancel),
// aborts both. It closes both connections before it returns.
//
// answered, if not nil, is called when the answer direction ends without
// an error.
func splice(up, down net.Conn, linger, idle time.Duration, answered func()) (toUp int64, err error) {
	abort := func() {
		// Close wakes a copier blocked writing to a client that stopped
		// reading; the deadline wakes one blocked reading.
		up.SetDeadline(time.Now())
		down.SetDeadline(time.Now())
		up.Close()
		down.Close()
	}
	// The request direction runs in its own goroutine, the answer in this
	// one (a goroutine less per relayed stream, and one wake-up less).
	request := &copier{copy: func() (int64, error) { return copyStream(down, up, 0) }, end: down}
	answer := &copier{copy: func() (int64, error) { return copyStream(up, down, idle) }, end: up}
	var answerOver atomic.Bool
	requestFirst := false // set before requestDone closes
	requestDone := make(chan struct{})
	go func() {
		defer close(requestDone)
		request.n, request.err = request.copy()
		if request.err == nil {
			request.err = closeWrite(request.end)
		}
		if !answerOver.Load() {
			// The client's side ended before the answer did, which in
			// this protocol is a cancel (a client half-closes only once
			// it has the whole answer), or it failed: abort both at once.
			requestFirst = true
			abort()
		}
	}()
	answer.n, answer.err = answer.copy()
	if answer.err == nil {
		answer.err = closeWrite(answer.end)
	}
	answerOver.Store(true)
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
	<-requestDone
	up.Close()
	down.Close()
	first, second := answer, request
	if requestFirst {
		first, second = request, answer
	}
	if first.err != nil {
		err = first.err
	} else {
		err = second.err
	}
	return answer.n, err
}
