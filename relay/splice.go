package relay

import (
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// Pooled copy buffers. yamux streams have no ReaderFrom/WriterTo, so
// io.CopyBuffer uses these; TCP-to-TCP copies bypass them and splice in the
// kernel. The request direction of a relayed mux stream carries a START
// and a close at most, so it gets a small buffer: a relayed stream whose
// reader stalls holds its buffers, and memory under many stalled streams is
// MaxStreams x (about 3 x the stream window + both buffers). The answer
// direction gets the large one, which mux throughput needs (256 KiB moves
// about 45% more than 64 KiB through 3 relays).
const (
	copyBufSize    = 256 << 10
	requestBufSize = 4 << 10
)

var (
	copyBufs    = newBufPool(copyBufSize)
	requestBufs = newBufPool(requestBufSize)
)

// copyBuffered is io.CopyBuffer with a pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	return copyWith(copyBufs, copyBufSize, dst, src)
}

func copyWith(p *bufPool, size int, dst io.Writer, src io.Reader) (int64, error) {
	bp := p.get()
	defer p.put(bp)
	return io.CopyBuffer(dst, src, (*bp)[:size])
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

// copier is one direction of a splice: it copies src to dst through a
// buffer from bufs, then half-closes end (dst's bare connection).
type copier struct {
	dst     io.Writer
	src     io.Reader
	end     net.Conn
	bufs    *bufPool
	bufSize int
	n       int64
	err     error
}

func (c *copier) run(done chan<- *copier) {
	c.n, c.err = copyWith(c.bufs, c.bufSize, c.dst, c.src)
	if c.err == nil {
		c.err = closeWrite(c.end)
	}
	done <- c
}

// splice copies up->down and down->up until both directions end, with
// half-close, and returns the bytes sent towards up. The answer direction
// is cut when it moves nothing for idle (the request direction is silent
// by design while the answer streams). Once the answer has ended, the
// request direction has linger to see the client's close; an error in
// either direction, or the request direction ending first (a cancel),
// aborts both. It closes both connections before it returns.
func splice(up, down net.Conn, linger, idle time.Duration) (toUp int64, err error) {
	done := make(chan *copier, 2)
	request := &copier{dst: down, src: up, end: down, bufs: requestBufs, bufSize: requestBufSize}
	answer := &copier{dst: idleConn{up, idle}, src: idleConn{down, idle}, end: up, bufs: copyBufs, bufSize: copyBufSize}
	go request.run(done)
	go answer.run(done)

	first := <-done
	if first.err != nil || first == request {
		// An error, or the client's side ending before the answer did,
		// which in this protocol is a cancel (a client half-closes only
		// once it has the whole answer): abort both at once. Close wakes
		// a copier blocked writing to a client that stopped reading; the
		// deadline wakes one blocked reading.
		up.SetDeadline(time.Now())
		down.SetDeadline(time.Now())
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
