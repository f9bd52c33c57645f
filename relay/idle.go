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
	for done < n {
		deadline := time.Now().Add(idle)
		dst.SetWriteDeadline(deadline)
		if srcConn != nil {
			srcConn.SetReadDeadline(deadline)
		}
		// To a TCP connection this is splice or sendfile (the buffer is
		// unused); to a yamux stream, 256 KiB frames instead of io.Copy's
		// 32 KiB.
		k, err := copyBuffered(dst, io.LimitReader(src, min(idleChunk, n-done)))
		done += k
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, fmt.Errorf("%w after %d of %d bytes", io.ErrUnexpectedEOF, done, n)
		}
	}
	return done, nil
}

// writeIdle writes p to dst in chunks under the same idle rule.
func writeIdle(dst net.Conn, p []byte, idle time.Duration) (int, error) {
	defer dst.SetWriteDeadline(time.Time{})
	done := 0
	for done < len(p) {
		dst.SetWriteDeadline(time.Now().Add(idle))
		k, err := dst.Write(p[done:min(done+idleChunk, len(p))])
		done += k
		if err != nil {
			return done, err
		}
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
