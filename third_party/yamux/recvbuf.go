package yamux

import (
	"math/bits"
	"sync"
)

// relaychain patch: a stream's unread data is a queue of pooled chunks, one
// per data frame, instead of a bytes.Buffer. Upstream's bytes.Buffer grew by
// doubling at the end of every full frame (io.Copy asks for MinRead more),
// so a stream held up to about three windows and allocated per frame. A
// chunk is read from the connection once and then either copied out by Read
// or handed whole to a writer by WriteTo, so a relay forwards it without a
// copy in user space.

// Chunk buffers come in power-of-two classes from 1<<minChunkShift to
// 1<<maxChunkShift bytes; larger frames get an unpooled buffer.
const (
	minChunkShift = 9
	maxChunkShift = 24
)

var chunkPools [maxChunkShift - minChunkShift + 1]sync.Pool

// chunkClass returns the pool index for a buffer of n bytes, or -1 when n
// is above the largest class.
func chunkClass(n int) int {
	if n <= 1<<minChunkShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxChunkShift {
		return -1
	}
	return shift - minChunkShift
}

// getChunk returns a buffer of length n, from a pool when n fits a class.
func getChunk(n int) *[]byte {
	c := chunkClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if p, ok := chunkPools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(c+minChunkShift))
	return &b
}

// putChunk returns a buffer from getChunk to its pool.
func putChunk(p *[]byte) {
	if c := chunkClass(cap(*p)); c >= 0 && cap(*p) == 1<<(c+minChunkShift) {
		*p = (*p)[:0]
		chunkPools[c].Put(p)
	}
}

// chunk is one received frame's data; b is the unread part of *buf.
type chunk struct {
	buf *[]byte
	b   []byte
}

// recvQueue is a stream's received data. All methods need the stream's
// recvLock.
type recvQueue struct {
	chunks []chunk // chunks[head:] hold data
	head   int
	n      int // unread bytes in the queue
	held   int // bytes taken by WriteTo and not yet released
}

// len returns the bytes that still count against the receive window: the
// queued ones and the ones WriteTo is writing.
func (q *recvQueue) len() int { return q.n + q.held }

// empty reports whether nothing is queued.
func (q *recvQueue) empty() bool { return q.n == 0 }

// push appends a frame's data. A small frame is appended to the tail
// chunk's spare capacity when it fits, so that many small frames do not
// hold many buffers.
func (q *recvQueue) push(c chunk) {
	if t := len(q.chunks) - 1; t >= q.head {
		tail := &q.chunks[t]
		if len(c.b) <= cap(*tail.buf)-len(*tail.buf) && len(c.b) <= 4<<10 {
			start := len(*tail.buf)
			*tail.buf = append(*tail.buf, c.b...)
			tail.b = (*tail.buf)[start-len(tail.b):]
			q.n += len(c.b)
			putChunk(c.buf)
			return
		}
	}
	if q.head > 0 && q.head >= len(q.chunks)/2 {
		// Reuse the slots of chunks already read, so that a stream whose
		// reader never quite drains the queue does not grow the slice.
		n := copy(q.chunks, q.chunks[q.head:])
		clear(q.chunks[n:])
		q.chunks, q.head = q.chunks[:n], 0
	}
	q.chunks = append(q.chunks, c)
	q.n += len(c.b)
}

// read copies queued data into b and frees the chunks it empties.
func (q *recvQueue) read(b []byte) int {
	total := 0
	for total < len(b) && q.head < len(q.chunks) {
		c := &q.chunks[q.head]
		k := copy(b[total:], c.b)
		c.b = c.b[k:]
		total += k
		if len(c.b) == 0 {
			putChunk(c.buf)
			*c = chunk{}
			q.head++
		}
	}
	q.n -= total
	return total
}

// gatherMax bounds the bytes take gathers from several queued chunks.
const gatherMax = 64 << 10

// take removes the head chunk for WriteTo; when the head is small and more
// is queued, it gathers up to gatherMax bytes of the queue into one new
// chunk, so that frames that arrived together leave in one write. The
// bytes stay held, counting against the window, until release.
func (q *recvQueue) take() chunk {
	if h := q.chunks[q.head]; len(h.b) < q.n && len(h.b) < gatherMax/4 {
		size := q.n
		if size > gatherMax {
			size = gatherMax
		}
		buf := getChunk(size)
		k := q.read(*buf)
		q.held += k
		return chunk{buf: buf, b: (*buf)[:k]}
	}
	c := q.chunks[q.head]
	q.chunks[q.head] = chunk{}
	q.head++
	q.n -= len(c.b)
	q.held += len(c.b)
	return c
}

// release ends the hold of k bytes taken by take.
func (q *recvQueue) release(k int) { q.held -= k }
