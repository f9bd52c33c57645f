package relay

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"
)

// idleChunk is the largest chunk of a transfer into a TCP connection whose
// stalls no stallWatch can see (not on Linux, or a TLS connection: see
// copyIdle), and of a write from memory (idleWriter). Deadlines are renewed
// before each chunk, and a chunk is sized to take about a quarter of the
// idle timeout at the rate the last one moved, so a peer that stalls is cut
// off after the idle timeout while a slow one (down to minIdleChunk per idle
// timeout) never is; but a transfer that slows down in the middle of a
// chunk must still finish it within the idle timeout. Each chunk is one
// io.Copy between the bare endpoints, which keeps splice(2) and sendfile(2).
const idleChunk = 512 << 10

// idleChunkMux is the chunk written into a yamux stream: one write there is
// one frame when the window allows. A stream needs no chunks sized to the
// rate, since its write deadline is an idle one (muxIdle); a relay passes
// on what the next hop's window takes, part of a frame if need be, so a
// slow reader's progress reaches the hops before it in the steps of the
// window updates (half the configured window). Frames of 1 MiB moved bulk
// no faster (BENCHMARKS.md).
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

// copyIdle copies exactly n bytes from src to dst under the idle rule. Into
// a yamux stream it is one copy in writes of up to muxCopyBufSize, under
// the stream's idle write deadline. Into a TCP connection on Linux it is
// one io.Copy between the bare endpoints, watched for stalls by the bytes
// the peer acknowledged (copyWatched). Elsewhere (another OS, a TLS
// connection) it goes in chunks, renewing the write deadline of dst, and
// the read deadline of src when it is a connection, before each chunk.
// Deadlines are cleared on return.
func copyIdle(dst net.Conn, src io.Reader, n int64, idle time.Duration) (int64, error) {
	if ys := muxIdle(dst, idle); ys != nil {
		defer ys.SetWriteIdle(0)
		cp := copyBuffered
		if n >= muxCopyBufSize {
			cp = copyToMux
		}
		k, err := cp(dst, io.LimitReader(src, n))
		return k, fullCopy(k, n, err)
	}
	srcConn, _ := src.(net.Conn)
	// deadlines sets the write deadline of dst, and the read deadline of
	// src when it is a connection.
	deadlines := func(t time.Time) {
		dst.SetWriteDeadline(t)
		if srcConn != nil {
			srcConn.SetReadDeadline(t)
		}
	}
	defer deadlines(time.Time{})
	if tc, ok := dst.(*net.TCPConn); ok {
		if k, ok, err := copyWatched(tc, src, n, idle, deadlines); ok {
			return k, fullCopy(k, n, err)
		}
	}
	var done int64
	chunk := int64(minIdleChunk)
	for done < n {
		start := time.Now()
		deadlines(start.Add(idle))
		// splice(2) or sendfile(2): the buffer is unused.
		k, err := copyBuffered(dst, io.LimitReader(src, min(chunk, n-done)))
		done += k
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, fullCopy(done, n, nil)
		}
		chunk = nextChunk(k, time.Since(start), idle)
	}
	return done, nil
}

// fullCopy is the error of a copy of k of n bytes that returned err: an
// io.ErrUnexpectedEOF when the source ended early.
func fullCopy(k, n int64, err error) error {
	if err == nil && k < n {
		return fmt.Errorf("%w after %d of %d bytes", io.ErrUnexpectedEOF, k, n)
	}
	return err
}

// writeIdle writes p to dst under the idle rule (idleWriter) and clears the
// deadlines it set.
func writeIdle(dst net.Conn, p []byte, idle time.Duration) (int, error) {
	w := newIdleWriter(dst, idle)
	defer w.clear()
	return w.Write(p)
}

// idleWriter writes to dst under the idle rule, however large the writes
// it is given. A yamux stream gets an idle write deadline (muxIdle) and
// writes of at most idleChunkMux, each one frame when the window allows. A
// TCP connection gets chunks sized as copyIdle's, each under its own
// deadline, the chunk size kept from one write to the next.
type idleWriter struct {
	dst   net.Conn
	idle  time.Duration
	mux   *yamux.Stream // dst, when it is a yamux stream
	chunk int64         // the next chunk's size
}

// newIdleWriter returns an idleWriter to dst; for a yamux stream it sets
// the stream's idle write deadline, which clear takes off again.
func newIdleWriter(dst net.Conn, idle time.Duration) *idleWriter {
	w := &idleWriter{dst: dst, idle: idle, mux: muxIdle(dst, idle), chunk: minIdleChunk}
	if w.mux != nil {
		w.chunk = idleChunkMux
	}
	return w
}

func (w *idleWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, int(w.chunk))
		start := time.Now()
		if w.mux == nil {
			w.dst.SetWriteDeadline(start.Add(w.idle))
		}
		k, err := w.dst.Write(p[done : done+n])
		done += k
		if err != nil {
			return done, err
		}
		if w.mux == nil {
			w.chunk = nextChunk(int64(k), time.Since(start), w.idle)
		}
	}
	return done, nil
}

// clear takes off the deadlines the writer set on dst.
func (w *idleWriter) clear() {
	if w.mux != nil {
		w.mux.SetWriteIdle(0)
	}
	w.dst.SetWriteDeadline(time.Time{})
}
