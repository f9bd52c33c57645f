package relay

import (
	"fmt"
	"io"
	"net"
	"time"
)

// idleChunk is how much of a transfer must move within one idle timeout.
// Deadlines are renewed before each chunk, so a peer that stalls is cut off
// after the idle timeout while a slow one (down to idleChunk per timeout,
// 17 KB/s with the default 30s) never is. Each chunk is one io.Copy
// between the bare endpoints, which keeps splice(2) and sendfile(2).
const idleChunk = 512 << 10

// idleChunkMux is the largest chunk into a yamux stream: one write there is
// one frame when the window allows, and frames of muxCopyBufSize moved a
// 1 GiB hit through 3 relays at 0.80 of the Go TCP chain where 4 MiB ones
// moved it at 0.68: a relay passes a frame on only once it has all of it
// (BENCHMARKS.md).
const idleChunkMux = muxCopyBufSize

// minIdleChunk is the first and smallest chunk: a transfer slower than this
// per idle timeout is cut off.
const minIdleChunk = 4 << 10

// nextChunk sizes the next chunk into dst to take about a quarter of the
// idle timeout at the rate the last one moved (k bytes in took).
func nextChunk(dst net.Conn, k int64, took, idle time.Duration) int64 {
	limit := int64(idleChunk)
	if isMux(dst) {
		limit = idleChunkMux
	}
	if took <= 0 {
		return limit
	}
	return min(limit, max(minIdleChunk, int64(float64(k)*float64(idle/4)/float64(took))))
}

// copyIdle copies exactly n bytes from src to dst in chunks, renewing the
// write deadline of dst, and the read deadline of src when it is a
// connection, before each chunk. Deadlines are cleared on return.
func copyIdle(dst net.Conn, src io.Reader, n int64, idle time.Duration) (int64, error) {
	srcConn, _ := src.(net.Conn)
	defer func() {
		dst.SetWriteDeadline(time.Time{})
		if srcConn != nil {
			srcConn.SetReadDeadline(time.Time{})
		}
	}()
	var done int64
	chunk := int64(minIdleChunk)
	for done < n {
		start := time.Now()
		deadline := start.Add(idle)
		dst.SetWriteDeadline(deadline)
		if srcConn != nil {
			srcConn.SetReadDeadline(deadline)
		}
		// To a TCP connection this is splice or sendfile (the buffer is
		// unused); to a yamux stream, frames of up to 1 MiB instead of
		// io.Copy's 32 KiB.
		cp := copyBuffered
		if isMux(dst) {
			cp = copyToMux
		}
		k, err := cp(dst, io.LimitReader(src, min(chunk, n-done)))
		done += k
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, fmt.Errorf("%w after %d of %d bytes", io.ErrUnexpectedEOF, done, n)
		}
		chunk = nextChunk(dst, k, time.Since(start), idle)
	}
	return done, nil
}

// writeIdle writes p to dst in chunks under the same idle rule.
func writeIdle(dst net.Conn, p []byte, idle time.Duration) (int, error) {
	defer dst.SetWriteDeadline(time.Time{})
	done, chunk := 0, int64(minIdleChunk)
	for done < len(p) {
		start := time.Now()
		dst.SetWriteDeadline(start.Add(idle))
		k, err := dst.Write(p[done:min(done+int(chunk), len(p))])
		done += k
		if err != nil {
			return done, err
		}
		chunk = nextChunk(dst, int64(k), time.Since(start), idle)
	}
	return done, nil
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
