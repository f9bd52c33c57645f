package relay

import (
	"encoding/binary"
	"net"
)

// yamuxHeaderLen is the size of a yamux frame header: version, type,
// flags (2), stream id (4), length (4).
const yamuxHeaderLen = 12

// coalesceConn is the connection under a yamux session. yamux (v0.1.2)
// writes each frame as two Writes, the header and then the body, which is
// two syscalls (and two TLS records). coalesceConn holds the header of a
// data frame that has a body and writes it together with the body in one
// writev. yamux writes to a session's connection from its send loop only,
// so no lock is needed.
type coalesceConn struct {
	net.Conn
	hdr  [yamuxHeaderLen]byte
	held bool
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		bufs := net.Buffers{c.hdr[:], p}
		n, err := bufs.WriteTo(c.Conn)
		return max(int(n)-yamuxHeaderLen, 0), err
	}
	// A data frame (type 0) with a non-zero length: its body comes next.
	if len(p) == yamuxHeaderLen && p[1] == 0 && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
