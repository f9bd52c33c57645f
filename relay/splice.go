package relay

import (
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// copyBufSize is the size of pooled copy buffers. yamux streams have no
// ReaderFrom/WriterTo, so io.CopyBuffer uses these; TCP-to-TCP copies
// bypass them and splice in the kernel.
const copyBufSize = 256 << 10

var copyBufs = newBufPool(copyBufSize)

// copyBuffered is io.CopyBuffer with a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.get()
	defer copyBufs.put(bp)
	return io.CopyBuffer(dst, src, (*bp)[:copyBufSize])
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

// copier is one direction of a splice: it copies src to dst, then
// half-closes end (dst's bare connection).
type copier struct {
	name string
	dst  io.Writer
	src  io.Reader
	end  net.Conn
	n    int64
	err  error
}

func (c *copier) run(done chan<- *copier) {
	c.n, c.err = copyBuffered(c.dst, c.src)
	if c.err == nil {
		c.err = closeWrite(c.end)
	}
	done <- c
}

// splice copies up->down and down->up until both directions end, with
// half-close, and returns the bytes sent towards up. The answer direction
// is cut when it moves nothing for idle (the request direction is silent
// by design while the answer streams). Once one direction ends, the other
// has linger to finish; an error in either aborts both. It closes both
// connections before it returns.
func splice(up, down net.Conn, linger, idle time.Duration) (toUp int64, err error) {
	done := make(chan *copier, 2)
	request := &copier{name: "request", dst: down, src: up, end: down}
	answer := &copier{name: "answer", dst: idleConn{up, idle}, src: idleConn{down, idle}, end: up}
	go request.run(done)
	go answer.run(done)

	first := <-done
	if first.err != nil {
		// Abort: close rather than set a deadline, which the other
		// copier's idleConn would renew on its next Read or Write.
		up.Close()
		down.Close()
	} else {
		deadline := time.Now().Add(linger)
		up.SetDeadline(deadline)
		down.SetDeadline(deadline)
	}
	second := <-done
	up.Close()
	down.Close()
	if first.err != nil {
		err = first.err
	} else {
		err = second.err
	}
	return answer.n, err
}
