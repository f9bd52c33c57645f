package relay

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// idleChunk is the largest chunk of a transfer into a TCP connection.
// Deadlines are renewed before each chunk, and a chunk is sized to take
// about a quarter of the idle timeout at the rate the last one moved, so a
// peer that stalls is cut off after the idle timeout while a slow one (down
// to minIdleChunk per idle timeout) never is. Each chunk is one io.Copy
// between the bare endpoints, which keeps splice(2) and sendfile(2).
const idleChunk = 512 << 10

// idleChunkMux is the chunk written into a yamux stream: one write there is
// one frame when the window allows. A stream needs no chunks sized to the
// rate, since its write deadline is an idle one (muxIdle), but a relay
// passes a frame on, and gives its window back, only once the next hop has
// taken all of it, so the frame size is also the step at which a slow
// reader's progress reaches the hops before it: 512 KiB moves 8.7 KB/s
// under the default 60 s idle timeout. Frames of 1 MiB moved bulk no faster
// (BENCHMARKS.md).
const idleChunkMux = muxCopyBufSize

// minIdleChunk is the first and smallest chunk: a transfer slower than this
// per idle timeout is cut off.
const minIdleChunk = 4 << 10

// nextChunk sizes the next chunk into a TCP connection to take about a
// quarter of the idle timeout at the rate the last one moved (k bytes in
// took).
func nextChunk(k int64, took, idle time.Duration) int64 {
	if took <= 0 {
		return idleChunk
	}
	return min(idleChunk, max(minIdleChunk, int64(float64(k)*float64(idle/4)/float64(took))))
}

// muxIdle gives dst, when it is a yamux stream, an idle write deadline
// (Stream.SetWriteIdle): a write of any size fails only when it moves
// nothing for idle, however slowly the peer's window updates come. It
// returns the stream, or nil when dst is not one.
func muxIdle(dst net.Conn, idle time.Duration) *yamux.Stream {
	ys, ok := dst.(*yamux.Stream)
	if ok {
		ys.SetWriteIdle(idle)
	}
	return ys
}

// copyIdle copies exactly n bytes from src to dst in chunks, renewing the
// read deadline of src when it is a connection before each chunk, and the
// write deadline of dst: before each chunk for a TCP connection, before
// each frame for a yamux stream. Deadlines are cleared on return.
func copyIdle(dst net.Conn, src io.Reader, n int64, idle time.Duration) (int64, error) {
	srcConn, _ := src.(net.Conn)
	ys := muxIdle(dst, idle)
	defer func() {
		if ys != nil {
			ys.SetWriteIdle(0)
		}
		dst.SetWriteDeadline(time.Time{})
		if srcConn != nil {
			srcConn.SetReadDeadline(time.Time{})
		}
	}()
	var done int64
	chunk := int64(minIdleChunk)
	if ys != nil {
		chunk = idleChunkMux
	}
	for done < n {
		start := time.Now()
		deadline := start.Add(idle)
		if ys == nil {
			dst.SetWriteDeadline(deadline)
		}
		if srcConn != nil {
			srcConn.SetReadDeadline(deadline)
		}
		// To a TCP connection this is splice or sendfile (the buffer is
		// unused); to a yamux stream, frames of up to 1 MiB instead of
		// io.Copy's 32 KiB (a small send does not take a 1 MiB buffer).
		size := min(chunk, n-done)
		cp := copyBuffered
		if ys != nil && size >= muxCopyBufSize {
			cp = copyToMux
		}
		k, err := cp(dst, io.LimitReader(src, size))
		done += k
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, fmt.Errorf("%w after %d of %d bytes", io.ErrUnexpectedEOF, done, n)
		}
		if ys == nil {
			chunk = nextChunk(k, time.Since(start), idle)
		}
	}
	return done, nil
}

// writeIdle writes p to dst in chunks under the same idle rule.
func writeIdle(dst net.Conn, p []byte, idle time.Duration) (int, error) {
	ys := muxIdle(dst, idle)
	defer func() {
		if ys != nil {
			ys.SetWriteIdle(0)
		}
		dst.SetWriteDeadline(time.Time{})
	}()
	done, chunk := 0, int64(minIdleChunk)
	if ys != nil {
		chunk = idleChunkMux
	}
	for done < len(p) {
		start := time.Now()
		if ys == nil {
			dst.SetWriteDeadline(start.Add(idle))
		}
		k, err := dst.Write(p[done:min(done+int(chunk), len(p))])
		done += k
		if err != nil {
			return done, err
		}
		if ys == nil {
			chunk = nextChunk(int64(k), time.Since(start), idle)
		}
	}
	return done, nil
}

// idleWriter writes to dst under the idle rule, however large the writes
// it is given (a relay forwards frames of up to 1 MiB, and more from other
// senders): a yamux stream gets an idle write deadline (muxIdle); a TCP
// connection gets chunks sized as copyIdle's, each under its own deadline,
// the chunk size kept from one write to the next. After each write (each
// chunk) it moves renew's read deadline, if renew is set, to idle from now.
type idleWriter struct {
	dst   net.Conn
	idle  time.Duration
	renew net.Conn
	chunk int64 // TCP: the next chunk's size; 0 before the first
	armed bool  // yamux: the idle write deadline is set
}

func (w *idleWriter) Write(p []byte) (int, error) { return w.write(p, false) }

// WriteClose is Write followed by a half-close of dst, in one frame with
// the last bytes when dst is a yamux stream (Stream.ForwardTo uses it for
// the last bytes of a stream).
func (w *idleWriter) WriteClose(p []byte) (int, error) { return w.write(p, true) }

func (w *idleWriter) write(p []byte, close bool) (int, error) {
	if !w.armed && muxIdle(w.dst, w.idle) != nil {
		w.armed = true
	}
	if w.armed {
		var k int
		var err error
		if close {
			k, err = writeClose(w.dst, p)
		} else {
			k, err = w.dst.Write(p)
		}
		w.renewSrc()
		return k, err
	}
	done := 0
	for {
		if w.chunk == 0 {
			w.chunk = minIdleChunk
		}
		n := min(len(p)-done, int(w.chunk))
		last := done+n == len(p)
		if n == 0 && !close {
			return done, nil
		}
		start := time.Now()
		w.dst.SetWriteDeadline(start.Add(w.idle))
		var k int
		var err error
		if last && close {
			k, err = writeClose(w.dst, p[done:])
		} else {
			k, err = w.dst.Write(p[done : done+n])
		}
		done += k
		w.renewSrc()
		if err != nil || last {
			return done, err
		}
		w.chunk = nextChunk(int64(k), time.Since(start), w.idle)
	}
}

// renewSrc moves renew's read deadline to idle from now.
func (w *idleWriter) renewSrc() {
	if w.renew != nil {
		w.renew.SetReadDeadline(time.Now().Add(w.idle))
	}
}

// idleConn renews a connection's deadlines on every Read and Write: for
// the mux path, whose bytes pass through user space anyway.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}
