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
	b := &sockReader{rc: rc, conn: conn}
	b.tryRead = b.tryReadFD
	return b
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
	// tryRead is fill's callback for rc.Read (b.tryReadFD), made once:
	// a closure made per fill, with the variables it sets, cost about 80
	// bytes of garbage per read of the socket. rerr is its read's error.
	tryRead func(fd uintptr) bool
	rerr    error
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
// Nothing is buffered when it is called.
func (b *sockReader) fill() error {
	b.pool = readBufs
	if b.bulk {
		b.pool = bulkBufs
	}
	b.bulk = false
	b.r, b.w, b.rerr = 0, 0, nil
	err := b.rc.Read(b.tryRead)
	if err == nil && b.rerr != nil {
		err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", b.rerr)}
	}
	if err == nil && b.w == 0 {
		err = io.EOF
	}
	if err != nil {
		if b.buf != nil {
			b.pool.Put(b.buf)
		}
		b.buf, b.pool, b.w, b.rerr = nil, nil, 0, nil
		return err
	}
	return nil
}

// tryReadFD is fill's read of the socket, tried from the poller's
// callback: it takes a buffer from b.pool and reads into it, or puts the
// buffer back and asks to wait when the socket has nothing.
func (b *sockReader) tryReadFD(fd uintptr) bool {
	b.buf = b.pool.Get().(*[]byte)
	b.w, b.rerr = readOnce(fd, *b.buf)
	if errors.Is(b.rerr, syscall.EAGAIN) {
		b.pool.Put(b.buf)
		b.buf, b.w, b.rerr = nil, 0, nil
		return false // park until the socket is readable
	}
	return true
}
