package yamux

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// The receive loop's read buffer (relaychain patch).
//
// Upstream read the connection through a 4 KiB bufio.Reader of the
// session's own. Under load a relay's link brings many small frames at a
// time (answers of 4 KiB and their window updates), of which one 4 KiB
// read held one: a read per frame, and no two frames to pass on with one
// write (cork.go). A larger buffer per session would cost its size on
// every idle link (a node with 10,000 streams has hundreds of sessions).
// So over a bare socket the receive loop reads into a pooled 32 KiB buffer
// that it takes only once the socket has data (the read is tried from
// the poller's callback, and a try that finds nothing puts the buffer
// back before the goroutine parks), and gives back as soon as everything
// in it is consumed: an idle session holds no read buffer at all.
//
// With nothing buffered, a read of at least directMin (a frame body, or
// its rest) goes straight into the caller's buffer, as with bufio; and
// the fill after such a read (bulk) takes at most directMin, into a
// buffer of that size from a pool of its own, so that a stream of large
// frames has each body copied once, as with bufio, and holds no large
// buffer for its headers. (A relay setting up 10,000 streams had up to 18
// buffers taken at once, most of them for bulk fills.)

// readBufSize is the pooled read buffer; directMin the smallest read that
// goes straight to the caller's buffer when nothing is buffered, and the
// size of a fill after such a read.
const readBufSize, directMin = 32 << 10, 4 << 10

var readBufs, bulkBufs = newBufPool(readBufSize), newBufPool(directMin)

// newBufPool returns a pool of n-byte buffers.
func newBufPool(n int) *sync.Pool {
	return &sync.Pool{New: func() any {
		b := make([]byte, n)
		return &b
	}}
}

// frameReader is what the receive loop reads frames from: a bufio.Reader,
// or a sockReader over a bare socket.
type frameReader interface {
	io.Reader
	Buffered() int
	Peek(n int) ([]byte, error)
}

// newFrameReader returns the receive loop's reader for conn: a sockReader
// when rc, conn's socket, is known, a bufio.Reader otherwise.
func newFrameReader(conn io.Reader, rc syscall.RawConn) frameReader {
	if rc == nil {
		return bufio.NewReader(conn)
	}
	return &sockReader{rc: rc, conn: conn}
}

// sockReader buffers reads of a bare socket in a pooled buffer it holds
// only while that has unread bytes (see above). Only the receive loop uses
// it.
type sockReader struct {
	rc   syscall.RawConn
	conn io.Reader  // for reads straight into the caller's buffer
	buf  *[]byte    // (*buf)[r:w] is unread; nil when nothing is
	pool *sync.Pool // buf's
	r, w int
	bulk bool // the last read went straight to the caller
}

// Buffered returns how many bytes can be read without a read of the
// socket.
func (b *sockReader) Buffered() int { return b.w - b.r }

// Peek returns the next n bytes without consuming them, if they are
// buffered; it never reads the socket.
func (b *sockReader) Peek(n int) ([]byte, error) {
	if n > b.w-b.r {
		return nil, bufio.ErrBufferFull
	}
	return (*b.buf)[b.r : b.r+n], nil
}

// Read reads buffered bytes into p, or, with none buffered, fills the
// buffer from the socket first (waiting for data), or for a large p reads
// the socket straight into p.
func (b *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= directMin {
			b.bulk = true
			return b.conn.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += n
	if b.r == b.w {
		b.pool.Put(b.buf)
		b.buf, b.pool, b.r, b.w = nil, nil, 0, 0
	}
	return n, nil
}

// fill reads what the socket has into a pooled buffer, waiting until it
// has something. The buffer is taken only when the socket is readable.
func (b *sockReader) fill() error {
	pool := readBufs
	if b.bulk {
		pool = bulkBufs
	}
	b.bulk = false
	var (
		n    int
		rerr error
		bp   *[]byte
	)
	err := b.rc.Read(func(fd uintptr) bool {
		bp = pool.Get().(*[]byte)
		n, rerr = readOnce(fd, *bp)
		if errors.Is(rerr, syscall.EAGAIN) {
			pool.Put(bp)
			bp = nil
			return false // park until the socket is readable
		}
		return true
	})
	if err == nil && rerr != nil {
		err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", rerr)}
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		if bp != nil {
			pool.Put(bp)
		}
		return err
	}
	b.buf, b.pool, b.r, b.w = bp, pool, 0, n
	return nil
}
