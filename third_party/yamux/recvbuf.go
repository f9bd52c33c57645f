package yamux

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// relaychain patch: a stream's unread data is a queue of pooled chunks, one
// per data frame, instead of a bytes.Buffer. Upstream's bytes.Buffer grew by
// doubling at the end of every full frame (io.Copy asks for MinRead more),
// so a stream held up to about three windows and allocated per frame. A
// chunk is read from the connection once and then either copied out by Read
// or handed whole to a writer by WriteTo, so a relay forwards it without a
// copy in user space.

// Chunk buffers come in size classes from 64 bytes to 16 MiB: powers of
// two up to 4 KiB, then four classes per doubling (5, 6, 7 and 8 KiB, 10,
// 12, 14 and 16 KiB, ...), so that a buffer is at most a quarter larger than
// the frame in it. With power-of-two classes a frame just over a power of
// two held a buffer of nearly twice its size, and a stalled stream whose
// window was filled by such frames held nearly two windows. Larger frames
// get an unpooled buffer. The small classes matter to a stalled relayed
// stream: its queue often ends in a frame of a few dozen bytes (the part
// of the file that the RESPONSE frame's bytes pushed out of the last full
// window), and with 512 bytes the smallest class, a relay with 10,000
// such streams held 4 MiB for 0.7 MiB of frames.
const (
	minChunkShift = 6  // the smallest class: 64 bytes
	fineShift     = 12 // above 1<<fineShift, four classes per doubling
	maxChunkShift = 24 // the largest class: 16 MiB
	numChunkClass = fineShift - minChunkShift + 1 + 4*(maxChunkShift-fineShift)
)

var chunkPools [numChunkClass]sync.Pool

// chunkClass returns the pool index for a buffer of n bytes, or -1 when n
// is above the largest class.
func chunkClass(n int) int {
	if n <= 1<<minChunkShift {
		return 0
	}
	shift := bits.Len(uint(n - 1)) // 1<<(shift-1) < n <= 1<<shift
	switch {
	case shift > maxChunkShift:
		return -1
	case shift <= fineShift:
		return shift - minChunkShift
	}
	base := 1 << (shift - 1)
	step := base >> 2
	quarter := (n - base + step - 1) / step // 1 to 4
	return fineShift - minChunkShift + 4*(shift-fineShift-1) + quarter
}

// chunkSize returns the capacity of the buffers of class c.
func chunkSize(c int) int {
	if c <= fineShift-minChunkShift {
		return 1 << (c + minChunkShift)
	}
	k := c - (fineShift - minChunkShift) - 1
	base := 1 << (fineShift + k/4)
	return base + (k%4+1)*(base>>2)
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
	b := make([]byte, n, chunkSize(c))
	return &b
}

// putChunk returns a buffer from getChunk to its pool.
func putChunk(p *[]byte) {
	if c := chunkClass(cap(*p)); c >= 0 && cap(*p) == chunkSize(c) {
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
	// moved grows as the reader takes bytes out (Read, WriteTo, Relay),
	// so that the close timeout can tell a reader that moves from one
	// that stopped. Atomic: it is read without recvLock, under stateLock,
	// which is taken after recvLock.
	moved atomic.Uint64
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
	q.moved.Add(uint64(total))
	return total
}

// copyOut copies queued data into b without taking it from the queue.
func (q *recvQueue) copyOut(b []byte) int {
	total := 0
	for i := q.head; total < len(b) && i < len(q.chunks); i++ {
		total += copy(b[total:], q.chunks[i].b)
	}
	return total
}

// gatherMax bounds the bytes take gathers from several queued chunks.
const gatherMax = 64 << 10

// take removes the head chunk for WriteTo; when the head is small and the
// chunks after it fit, it gathers whole chunks, up to gatherMax bytes, into
// one new chunk, so that frames that arrived together leave in one write.
// It never gathers part of a chunk: the rest would keep its whole buffer
// while only the rest counted against the window, and the sender, granted
// the difference, would fill it with new buffers. The bytes stay held,
// counting against the window, until release.
func (q *recvQueue) take() chunk {
	if h := q.chunks[q.head]; len(h.b) < q.n && len(h.b) < gatherMax/4 {
		size, end := 0, q.head
		for end < len(q.chunks) && size+len(q.chunks[end].b) <= gatherMax {
			size += len(q.chunks[end].b)
			end++
		}
		if end > q.head+1 {
			buf := getChunk(size)
			k := q.read(*buf) // exactly the chunks head to end-1
			q.held += k
			return chunk{buf: buf, b: (*buf)[:k]}
		}
	}
	c := q.chunks[q.head]
	q.chunks[q.head] = chunk{}
	q.head++
	q.n -= len(c.b)
	q.held += len(c.b)
	return c
}

// peek holds up to most bytes of the head chunk for Relay, which sends
// them on in place; they count against the window until advance or
// unpeek. The queue must not be empty.
func (q *recvQueue) peek(most int) []byte {
	b := q.chunks[q.head].b
	if len(b) > most {
		b = b[:most]
	}
	q.n -= len(b)
	q.held += len(b)
	return b
}

// advance drops the k bytes peek held, sent on, and frees the head chunk
// once it is empty.
func (q *recvQueue) advance(k int) {
	c := &q.chunks[q.head]
	c.b = c.b[k:]
	q.held -= k
	q.moved.Add(uint64(k))
	if len(c.b) == 0 {
		putChunk(c.buf)
		*c = chunk{}
		q.head++
	}
}

// unpeek gives back the k bytes peek held, not sent.
func (q *recvQueue) unpeek(k int) {
	q.held -= k
	q.n += k
}

// release ends the hold of k bytes taken by take.
func (q *recvQueue) release(k int) {
	q.held -= k
	q.moved.Add(uint64(k))
}
