package relay

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// Pooled copy buffers, for copies whose source is not a yamux stream: a
// file into a stream at the terminal, and a stream into the client's sinks.
// A relayed mux stream needs none: the patched yamux (third_party/yamux)
// sends each received frame on to the next hop from its own buffer
// (Stream.Relay), and a TCP-to-TCP copy splices in the kernel.
const copyBufSize = 256 << 10

// muxCopyBufSize is the buffer of a copy from a file into a yamux stream:
// each read becomes one frame (up to the stream's window), and on a
// CPU-bound chain of hops larger frames move more bytes per wake-up and
// per window update at every hop (idleChunkMux says why not larger).
const muxCopyBufSize = 512 << 10

var copyBufs, muxCopyBufs = newBufPool(copyBufSize), newBufPool(muxCopyBufSize)

// copyBuffered is io.CopyBuffer with a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	return copyPooled(dst, src, copyBufs)
}

// copyToMux is copyBuffered with muxCopyBufSize reads, for a copy into a
// yamux stream.
func copyToMux(dst io.Writer, src io.Reader) (int64, error) {
	return copyPooled(dst, src, muxCopyBufs)
}

// copyPooled is io.CopyBuffer with a whole buffer from pool.
func copyPooled(dst io.Writer, src io.Reader, pool *bufPool) (int64, error) {
	bp := pool.get()
	defer pool.put(bp)
	return io.CopyBuffer(dst, src, (*bp)[:cap(*bp)])
}

// writeClose writes p to c and half-closes c (the peer reads EOF, and c
// can still be read), in one frame on a yamux stream.
func writeClose(c net.Conn, p []byte) (int, error) {
	if ys, ok := c.(*yamux.Stream); ok {
		return ys.WriteClose(p)
	}
	n, err := c.Write(p)
	if err != nil {
		return n, err
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return n, cw.CloseWrite()
	}
	return n, c.Close()
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

// splice relays a mux exchange: the request direction (when not over
// already: the client's FIN went on with the request) goes from up to
// down, the answer from down to up, each with yamux Relay, which holds no
// goroutine while it waits for data or for window. So a relay with many
// stalled streams holds their windows and little else.
//
// The answer direction is cut when it moves nothing for idle; the request
// direction is silent by design while the answer streams, and once the
// answer has ended it has linger to see the client's close. A reset (the
// client's cancel: a reset of up reaches down at once, from the session's
// receive loop, ResetWith) or an error in either direction resets both.
// answered, if not nil, is called when the answer direction ends without
// an error. finish gets the bytes sent towards up and the error (the
// answer's first, else the request's), once both directions are over and
// both streams closed; it runs on the goroutine that ended the last
// direction, which may be the caller's.
func splice(up, down *yamux.Stream, requestDone bool, linger, idle time.Duration, answered func(), finish func(int64, error)) {
	sp := &spliceRun{up: up, down: down, linger: linger, answered: answered, finish: finish, left: 2}
	if requestDone {
		sp.left = 1
	}
	up.ResetWith(down)
	down.Relay(up, idle, sp.answerOver)
	if !requestDone {
		up.Relay(down, 0, sp.requestOver)
	}
}

// spliceRun is one splice's state, in one allocation: a relay holds one
// per stream in flight (10,000 stalled streams are the memory goal's
// case), where closures over its variables were eight.
type spliceRun struct {
	up, down *yamux.Stream
	linger   time.Duration
	answered func()
	finish   func(int64, error)

	mu             sync.Mutex
	left           int // directions not over yet
	toUp           int64
	ansErr, reqErr error
}

// answerOver is the end of the answer direction (down to up).
func (sp *spliceRun) answerOver(n int64, err error) {
	if err == nil {
		if sp.answered != nil {
			sp.answered()
		}
		sp.up.SetReadDeadline(time.Now().Add(sp.linger))
	}
	sp.over(true, n, err)
}

// requestOver is the end of the request direction (up to down).
func (sp *spliceRun) requestOver(_ int64, err error) { sp.over(false, 0, err) }

// over records one direction's end; the last one finishes.
func (sp *spliceRun) over(answer bool, n int64, err error) {
	if err != nil {
		sp.up.Reset()
		sp.down.Reset()
	}
	sp.mu.Lock()
	if answer {
		sp.toUp, sp.ansErr = n, err
	} else {
		sp.reqErr = err
	}
	sp.left--
	last := sp.left == 0
	sp.mu.Unlock()
	if !last {
		return
	}
	sp.up.Close()
	sp.down.Close()
	if sp.ansErr != nil {
		sp.finish(sp.toUp, sp.ansErr)
	} else {
		sp.finish(sp.toUp, sp.reqErr)
	}
}
