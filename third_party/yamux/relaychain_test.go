package yamux

// Tests for the relaychain patches (every change marked "relaychain patch"
// in recvbuf.go, session.go, stream.go and mux.go): the chunked receive
// queue and Stream.WriteTo, direct writes and send batching, LazyOpen,
// WriteClose, Buffered, and returning instead of spinning
// when the session shuts down. Run them with
//
//	go test -race -run Relaychain .

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------
// Helpers

// rcConf is testConfNoKeepAlive with a write timeout generous enough for
// -race on a loaded machine, and quiet logs.
func rcConf(opts ...func(*Config)) *Config {
	c := testConfNoKeepAlive()
	c.ConnectionWriteTimeout = 10 * time.Second
	c.LogOutput = io.Discard
	for _, o := range opts {
		o(c)
	}
	return c
}

func rcLazy(c *Config) { c.LazyOpen = true }

func rcWindow(n uint32) func(*Config) {
	return func(c *Config) { c.MaxStreamWindowSize = n }
}

// rcData returns n reproducible pseudo-random bytes.
func rcData(n int, seed int64) []byte {
	b := make([]byte, n)
	mrand.New(mrand.NewSource(seed)).Read(b)
	return b
}

// rcAsync runs f in a goroutine and reports its result on the channel.
func rcAsync(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// rcAwait waits up to d for a result of rcAsync.
func rcAwait(t testing.TB, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: not done after %v", what, d)
		return nil
	}
}

// rcNotDone checks that ch has no result within d.
func rcNotDone(t testing.TB, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s: done early (err %v)", what, err)
	case <-time.After(d):
	}
}

// rcEventually polls cond until it holds, for at most d.
func rcEventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func rcOpen(t testing.TB, s *Session) *Stream {
	t.Helper()
	st, err := s.OpenStream()
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	return st
}

func rcAccept(t testing.TB, s *Session) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.AcceptStreamWithContext(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return st
}

// rcReadN reads exactly n bytes from st, within 10s.
func rcReadN(t testing.TB, st *Stream, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer st.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(st, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// rcReadAll reads st to EOF within d.
func rcReadAll(t testing.TB, st *Stream, d time.Duration) []byte {
	t.Helper()
	var out []byte
	done := rcAsync(func() (err error) {
		out, err = io.ReadAll(st)
		return err
	})
	if err := rcAwait(t, done, d, "ReadAll"); err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return out
}

// rcGoroutines counts goroutines blocked in one of the given states (the
// bracketed part of a goroutine's header in a stack dump) whose stack shows
// fn and, when notFn is set, does not show notFn.
func rcGoroutines(states []string, fn, notFn string) int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		blocked := false
		for _, st := range states {
			blocked = blocked || strings.Contains(head, "["+st)
		}
		if blocked && strings.Contains(g, fn) && (notFn == "" || !strings.Contains(g, notFn)) {
			count++
		}
	}
	return count
}

// rcParked counts goroutines parked on a channel operation (see
// rcGoroutines).
func rcParked(fn, notFn string) int {
	return rcGoroutines([]string{"select", "chan "}, fn, notFn)
}

// rcBlockedOnMutex counts goroutines blocked locking a mutex (see
// rcGoroutines).
func rcBlockedOnMutex(fn, notFn string) int {
	return rcGoroutines([]string{"sync.Mutex.Lock", "semacquire"}, fn, notFn)
}

// rcWriteTo runs st.ForwardTo(w) when w has WriteClose, else st.WriteTo(w)
// (a named function, so that rcParked can find it).
func rcWriteTo(st *Stream, w io.Writer, n *int64) error {
	var k int64
	var err error
	if wc, ok := w.(interface {
		io.Writer
		WriteClose([]byte) (int, error)
	}); ok {
		k, err = st.ForwardTo(wc)
	} else {
		k, err = st.WriteTo(w)
	}
	*n = k
	return err
}

// rcConn wraps a session's connection. It logs the frames written (headers
// parsed from the byte stream), and can hold writes at a gate, fail
// writes, cut reads with a chosen error, and keep the inner connection
// open after Close until released.
type rcConn struct {
	inner io.ReadWriteCloser

	tokens  chan struct{} // each lets one gated Write through
	entered chan struct{} // signalled when a Write waits at the gate
	closed  chan struct{}
	once    sync.Once
	hold    chan struct{} // non-nil: Close closes inner only once hold is closed

	mu      sync.Mutex
	gate    chan struct{} // non-nil: writes wait for a token or for the gate to open
	failErr error         // non-nil: writes fail with it
	readErr error         // set by cut
	stacks  bool          // attribute writes to sendDirect or sendLoop
	frames  []rcFrame
	calls   []rcCall
	hdrBuf  []byte
	skip    int
}

type rcFrame struct {
	typ    uint8
	flags  uint16
	id     uint32
	length uint32
	call   int // the Write call in which the header ended
}

type rcCall struct {
	n      int
	path   string // "direct" or "loop" when stacks is set
	frames int    // headers that ended in this call
	first  *byte
}

// rcDeadlineConn is an rcConn that takes write deadlines, as a session
// needs for the direct write path.
type rcDeadlineConn struct{ *rcConn }

func (c rcDeadlineConn) SetWriteDeadline(t time.Time) error {
	if d, ok := c.inner.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return nil
}

// rcWrap wraps inner; with direct the result takes write deadlines.
func rcWrap(inner io.ReadWriteCloser, direct bool) (*rcConn, io.ReadWriteCloser) {
	c := &rcConn{
		inner:   inner,
		tokens:  make(chan struct{}, 64),
		entered: make(chan struct{}, 64),
		closed:  make(chan struct{}),
	}
	if direct {
		return c, rcDeadlineConn{c}
	}
	return c, c
}

func (c *rcConn) Read(p []byte) (int, error) {
	n, err := c.inner.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.readErr != nil {
			err = c.readErr
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *rcConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	if g != nil {
		select {
		case c.entered <- struct{}{}:
		default:
		}
		select {
		case <-g:
		case <-c.tokens:
		case <-c.closed:
			return 0, io.ErrClosedPipe
		}
	}
	select {
	case <-c.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	c.mu.Lock()
	fail := c.failErr
	c.mu.Unlock()
	if fail != nil {
		return 0, fail
	}
	c.record(p)
	return c.inner.Write(p)
}

func (c *rcConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		if c.hold != nil {
			go func() {
				<-c.hold
				c.inner.Close()
			}()
			return
		}
		c.inner.Close()
	})
	return nil
}

// record parses the frame headers in p.
func (c *rcConn) record(p []byte) {
	path := ""
	c.mu.Lock()
	stacks := c.stacks
	c.mu.Unlock()
	if stacks {
		buf := make([]byte, 16<<10)
		st := string(buf[:runtime.Stack(buf, false)])
		switch {
		case strings.Contains(st, "sendDirect"):
			path = "direct"
		case strings.Contains(st, "sendLoop"):
			path = "loop"
		default:
			path = "other"
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	call := rcCall{n: len(p), path: path}
	if len(p) > 0 {
		call.first = &p[0]
	}
	idx := len(c.calls)
	for len(p) > 0 {
		if c.skip > 0 {
			k := len(p)
			if k > c.skip {
				k = c.skip
			}
			c.skip -= k
			p = p[k:]
			continue
		}
		k := headerSize - len(c.hdrBuf)
		if k > len(p) {
			k = len(p)
		}
		c.hdrBuf = append(c.hdrBuf, p[:k]...)
		p = p[k:]
		if len(c.hdrBuf) == headerSize {
			h := header(c.hdrBuf)
			c.frames = append(c.frames, rcFrame{h.MsgType(), h.Flags(), h.StreamID(), h.Length(), idx})
			if h.MsgType() == typeData {
				c.skip = int(h.Length())
			}
			c.hdrBuf = c.hdrBuf[:0]
			call.frames++
		}
	}
	c.calls = append(c.calls, call)
}

// log returns the frames and write calls recorded since the last reset.
func (c *rcConn) log() ([]rcFrame, []rcCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rcFrame(nil), c.frames...), append([]rcCall(nil), c.calls...)
}

func (c *rcConn) reset() {
	c.mu.Lock()
	c.frames, c.calls = nil, nil
	c.mu.Unlock()
}

func (c *rcConn) closeGate() {
	c.mu.Lock()
	c.gate = make(chan struct{})
	c.mu.Unlock()
}

func (c *rcConn) openGate() {
	c.mu.Lock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
	c.mu.Unlock()
}

func (c *rcConn) failWrites(err error) {
	c.mu.Lock()
	c.failErr = err
	c.mu.Unlock()
}

// cut closes the inner connection; reads then fail with err.
func (c *rcConn) cut(err error) {
	c.mu.Lock()
	c.readErr = err
	c.mu.Unlock()
	c.inner.Close()
}

func (c *rcConn) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-c.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("no write reached the gate")
	}
}

// rcSink records what a WriteTo hands it.
type rcSink struct {
	block  chan struct{} // non-nil: the first call waits until it is closed
	called chan rcSinkCall

	mu    sync.Mutex
	data  bytes.Buffer
	calls []rcSinkCall
}

type rcSinkCall struct {
	n, cap int
	close  bool
}

func (s *rcSink) Write(p []byte) (int, error) { return s.take(p, false) }

func (s *rcSink) take(p []byte, closing bool) (int, error) {
	c := rcSinkCall{n: len(p), cap: cap(p), close: closing}
	s.mu.Lock()
	s.data.Write(p)
	s.calls = append(s.calls, c)
	first := len(s.calls) == 1
	s.mu.Unlock()
	if s.called != nil {
		s.called <- c
	}
	if first && s.block != nil {
		<-s.block
	}
	return len(p), nil
}

func (s *rcSink) snapshot() ([]byte, []rcSinkCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.data.Bytes()...), append([]rcSinkCall(nil), s.calls...)
}

// rcCloseSink is an rcSink with a WriteClose method, as a Stream has.
type rcCloseSink struct{ *rcSink }

func (s rcCloseSink) WriteClose(p []byte) (int, error) { return s.take(p, true) }

func rcState(st *Stream) streamState {
	st.stateLock.Lock()
	defer st.stateLock.Unlock()
	return st.state
}

// ---------------------------------------------------------------------
// recvbuf.go: chunk pools and the receive queue

func TestRelaychain_ChunkClass(t *testing.T) {
	cases := []struct{ n, class, cap int }{
		{0, 0, 64},
		{1, 0, 64},
		{64, 0, 64},
		{65, 1, 128},
		{75, 1, 128}, // a 1 MiB answer's last frame, after a 75-byte RESPONSE
		{129, 2, 256},
		{512, 3, 512},
		{513, 4, 1024},
		{1024, 4, 1024},
		{1025, 5, 2048},
		{4096, 6, 4096},
		{4097, 7, 5120}, // four classes per doubling from here
		{5120, 7, 5120},
		{5121, 8, 6144},
		{8192, 10, 8192},
		{8193, 11, 10240},
		{65536, 22, 65536},
		{65537, 23, 81920},
		{100000, 25, 65536 + 3*16384},
		{256 << 10, 30, 256 << 10},
		{256<<10 + 1, 31, 320 << 10},
		{1<<24 - 1, 54, 1 << 24},
		{1 << 24, 54, 1 << 24},
		{1<<24 + 1, -1, 1<<24 + 1}, // above the largest class: exact, unpooled
		{3 << 23, -1, 3 << 23},
		{1 << 25, -1, 1 << 25},
	}
	for _, c := range cases {
		if got := chunkClass(c.n); got != c.class {
			t.Errorf("chunkClass(%d) = %d, want %d", c.n, got, c.class)
		}
		for i := 0; i < 3; i++ { // fresh, then (maybe) from the pool
			p := getChunk(c.n)
			if len(*p) != c.n || cap(*p) != c.cap {
				t.Fatalf("getChunk(%d): len %d cap %d, want len %d cap %d", c.n, len(*p), cap(*p), c.n, c.cap)
			}
			putChunk(p)
			if c.class >= 0 && len(*p) != 0 {
				t.Fatalf("putChunk of a class %d buffer did not reset it (len %d)", c.class, len(*p))
			}
			if c.class < 0 && len(*p) != c.n {
				t.Fatalf("putChunk touched an unpooled %d-byte buffer (len %d)", c.n, len(*p))
			}
		}
	}
	// A buffer whose capacity is not exactly a class size is not pooled.
	b := make([]byte, 700, 1000)
	putChunk(&b)
	if len(b) != 700 {
		t.Fatalf("putChunk pooled a buffer of capacity 1000 (len now %d)", len(b))
	}
}

// Every size up to the largest class gets a buffer at least its size and,
// above 4 KiB, less than a quarter larger; the classes are in order and
// each class's own size maps back to it.
func TestRelaychain_ChunkClassBound(t *testing.T) {
	prev := 0
	check := func(n int) {
		c := chunkClass(n)
		size := chunkSize(c)
		if c < prev || size < n || (n > 4096 && size*4 >= n*5) {
			t.Fatalf("n %d: class %d (previous %d), size %d", n, c, prev, size)
		}
		if chunkClass(size) != c {
			t.Fatalf("class %d has size %d, which maps to class %d", c, size, chunkClass(size))
		}
		prev = c
	}
	for n := 1; n <= 1<<20; n++ {
		check(n)
	}
	for n := 1<<20 + 1; n <= 1<<maxChunkShift; n += 997 {
		check(n)
	}
	check(1 << maxChunkShift)
	if prev != numChunkClass-1 {
		t.Fatalf("largest class %d, want %d", prev, numChunkClass-1)
	}
}

// rcChunk is a queued frame holding b, as readData makes one.
func rcChunk(b []byte) chunk {
	p := getChunk(len(b))
	copy(*p, b)
	return chunk{buf: p, b: *p}
}

func rcLive(q *recvQueue) int { return len(q.chunks) - q.head }

func rcReadQ(q *recvQueue, n int) []byte {
	b := make([]byte, n)
	return b[:q.read(b)]
}

func TestRelaychain_RecvQueue_PushRead(t *testing.T) {
	q := &recvQueue{}
	if !q.empty() || q.len() != 0 {
		t.Fatalf("new queue: empty %v len %d", q.empty(), q.len())
	}
	data := rcData(11000, 10)
	q.push(rcChunk(data[:5000]))
	q.push(rcChunk(data[5000:]))
	if q.empty() || q.len() != 11000 || q.n != 11000 || rcLive(q) != 2 {
		t.Fatalf("after 2 pushes: empty %v len %d n %d chunks %d", q.empty(), q.len(), q.n, rcLive(q))
	}
	if got := rcReadQ(q, 0); len(got) != 0 {
		t.Fatalf("read into an empty slice returned %d bytes", len(got))
	}
	var out []byte
	out = append(out, rcReadQ(q, 3000)...)
	if q.len() != 8000 || rcLive(q) != 2 {
		t.Fatalf("after reading 3000: len %d chunks %d", q.len(), rcLive(q))
	}
	out = append(out, rcReadQ(q, 4000)...) // crosses the chunk boundary
	if q.len() != 4000 || rcLive(q) != 1 {
		t.Fatalf("after reading 7000: len %d chunks %d", q.len(), rcLive(q))
	}
	if q.chunks[0].buf != nil || q.chunks[0].b != nil {
		t.Fatalf("an emptied chunk was not freed")
	}
	out = append(out, rcReadQ(q, 1<<20)...)
	if !bytes.Equal(out, data) {
		t.Fatalf("read data differs from pushed data")
	}
	if !q.empty() || q.len() != 0 || rcLive(q) != 0 {
		t.Fatalf("drained queue: empty %v len %d chunks %d", q.empty(), q.len(), rcLive(q))
	}
	if got := rcReadQ(q, 10); len(got) != 0 {
		t.Fatalf("read of an empty queue returned %d bytes", len(got))
	}
	// A push into a drained queue reuses the slice from the start.
	q.push(rcChunk(data[:6000]))
	if q.head != 0 || len(q.chunks) != 1 {
		t.Fatalf("push into a drained queue: head %d len(chunks) %d", q.head, len(q.chunks))
	}
}

func TestRelaychain_RecvQueue_TailAppend(t *testing.T) {
	data := rcData(1000, 11)

	// 100-byte frames after a 300-byte one share its 512-byte chunk until
	// it is full.
	q := &recvQueue{}
	q.push(rcChunk(data[:300]))
	for i := 3; i < 6; i++ {
		q.push(rcChunk(data[i*100 : (i+1)*100]))
		want := 1
		if i == 5 {
			want = 2
		}
		if rcLive(q) != want {
			t.Fatalf("after %d small frames: %d chunks, want %d", i+1, rcLive(q), want)
		}
	}
	if q.len() != 600 {
		t.Fatalf("len %d, want 600", q.len())
	}
	if got := rcReadQ(q, 1000); !bytes.Equal(got, data[:600]) {
		t.Fatalf("tail-appended frames read back wrong")
	}

	// Appending to a partly read tail keeps the unread bytes and order.
	q = &recvQueue{}
	q.push(rcChunk(data[:300]))
	first := rcReadQ(q, 200)
	q.push(rcChunk(data[300:450]))
	if rcLive(q) != 1 || q.len() != 250 {
		t.Fatalf("append to a partly read tail: %d chunks, len %d", rcLive(q), q.len())
	}
	if got := append(first, rcReadQ(q, 1000)...); !bytes.Equal(got, data[:450]) {
		t.Fatalf("append to a partly read tail read back wrong")
	}

	// A frame that does not fit the tail's spare capacity gets its own chunk.
	q = &recvQueue{}
	q.push(rcChunk(data[:400]))
	q.push(rcChunk(data[400:600]))
	if rcLive(q) != 2 {
		t.Fatalf("a frame larger than the spare capacity was appended")
	}

	// Only frames up to 4 KiB are appended, even when more would fit.
	big := rcData(32769+4097, 12)
	q = &recvQueue{}
	q.push(rcChunk(big[:32769])) // a 40 KiB buffer with 8191 spare
	q.push(rcChunk(big[32769:]))
	if rcLive(q) != 2 {
		t.Fatalf("a 4097-byte frame was appended to the tail")
	}
	if got := rcReadQ(q, len(big)); !bytes.Equal(got, big) {
		t.Fatalf("read back wrong")
	}
	q = &recvQueue{}
	q.push(rcChunk(big[:32769]))
	q.push(rcChunk(big[32769 : 32769+4096]))
	if rcLive(q) != 1 || q.len() != 32769+4096 {
		t.Fatalf("a 4096-byte frame was not appended: %d chunks, len %d", rcLive(q), q.len())
	}
	if got := rcReadQ(q, len(big)); !bytes.Equal(got, big[:32769+4096]) {
		t.Fatalf("read back wrong")
	}
}

func TestRelaychain_RecvQueue_TakeRelease(t *testing.T) {
	// A large head chunk is handed out as it is, without a copy.
	data := rcData(50000, 13)
	q := &recvQueue{}
	x := rcChunk(data[:20000])
	q.push(x)
	q.push(rcChunk(data[20000:]))
	c := q.take()
	if len(c.b) != 20000 || &c.b[0] != &(*x.buf)[0] || c.buf != x.buf {
		t.Fatalf("take of a 20000-byte head: got %d bytes, same buffer %v", len(c.b), c.buf == x.buf)
	}
	if q.n != 30000 || q.held != 20000 || q.len() != 50000 || q.empty() {
		t.Fatalf("after take: n %d held %d len %d", q.n, q.held, q.len())
	}
	q.release(20000)
	if q.len() != 30000 || q.held != 0 {
		t.Fatalf("after release: len %d held %d", q.len(), q.held)
	}
	c2 := q.take()
	if !bytes.Equal(c2.b, data[20000:]) || !q.empty() || q.len() != 30000 {
		t.Fatalf("take of the last chunk: %d bytes, empty %v, len %d", len(c2.b), q.empty(), q.len())
	}
	q.release(len(c2.b))
	if q.len() != 0 {
		t.Fatalf("len %d after releasing everything", q.len())
	}

	// A small chunk alone is handed out as it is.
	q = &recvQueue{}
	s := rcChunk(data[:100])
	q.push(s)
	if c := q.take(); c.buf != s.buf || len(c.b) != 100 || !q.empty() || q.len() != 100 {
		t.Fatalf("take of a lone small chunk: %d bytes, same buffer %v, len %d", len(c.b), c.buf == s.buf, q.len())
	}

	// Small chunks are gathered, whole, up to 64 KiB per take.
	all := rcData(100000, 14)
	q = &recvQueue{}
	for i := 0; i < 20; i++ {
		q.push(rcChunk(all[i*5000 : (i+1)*5000]))
	}
	if rcLive(q) != 20 {
		t.Fatalf("%d chunks queued, want 20", rcLive(q))
	}
	g1 := q.take()
	if len(g1.b) != 65000 || !bytes.Equal(g1.b, all[:65000]) {
		t.Fatalf("first gathering take: %d bytes, want the first 13 chunks (65000)", len(g1.b))
	}
	if q.held != 65000 || q.n != 35000 || q.len() != 100000 || rcLive(q) != 7 {
		t.Fatalf("after gathering: held %d n %d len %d, %d chunks", q.held, q.n, q.len(), rcLive(q))
	}
	g2 := q.take()
	if !bytes.Equal(g2.b, all[65000:]) || !q.empty() {
		t.Fatalf("second gathering take: %d bytes, empty %v", len(g2.b), q.empty())
	}
	q.release(len(g1.b))
	q.release(len(g2.b))
	if q.len() != 0 || q.held != 0 {
		t.Fatalf("after releases: len %d held %d", q.len(), q.held)
	}
	putChunk(g1.buf)
	putChunk(g2.buf)

	// A small head before a chunk too large to gather with it is handed
	// out alone, and the large chunk after it whole: gathering part of it
	// would leave its whole buffer queued for the part not taken.
	q = &recvQueue{}
	head := rcChunk(all[:40])
	big := rcChunk(all[40:90000])
	q.push(head)
	q.push(big)
	if c := q.take(); c.buf != head.buf || len(c.b) != 40 {
		t.Fatalf("take of a small head before a large chunk: %d bytes, same buffer %v", len(c.b), c.buf == head.buf)
	}
	if c := q.take(); c.buf != big.buf || len(c.b) != 90000-40 {
		t.Fatalf("take of the large chunk: %d bytes, same buffer %v", len(c.b), c.buf == big.buf)
	}
}

// A stream whose queue never runs empty (a reader or WriteTo always a frame
// behind, as with a consumer slower than the link) keeps pushing and taking
// frames for as long as it lives; the queue's slice of chunk slots must not
// grow with the number of frames received, only with the frames queued.
func TestRelaychain_RecvQueue_SlotsBounded(t *testing.T) {
	const frames = 5000
	data := rcData(20000, 15) // a frame large enough not to be gathered by take
	var grown []string
	for _, mode := range []string{"Read", "WriteTo"} {
		q := &recvQueue{}
		q.push(rcChunk(data))
		for i := 0; i < frames; i++ {
			q.push(rcChunk(data))
			if mode == "Read" {
				rcReadQ(q, len(data))
			} else {
				c := q.take()
				q.release(len(c.b))
				putChunk(c.buf)
			}
			if q.len() != len(data) || rcLive(q) != 1 {
				t.Fatalf("%s: queue holds %d bytes in %d chunks, want %d in 1", mode, q.len(), rcLive(q), len(data))
			}
		}
		if len(q.chunks) > 64 {
			grown = append(grown, fmt.Sprintf("%s path: len(q.chunks) = %d (cap %d) for 1 live chunk",
				mode, len(q.chunks), cap(q.chunks)))
		}
	}
	if len(grown) > 0 {
		t.Errorf("regression (fixed bug, recvbuf.go recvQueue.push): q.chunks is only reset when the queue is empty at a push, "+
			"so while the queue never drains the slice grows by one slot per frame received, for the "+
			"stream's whole life (unbounded memory, and append copies it as it grows): after %d frames, %s",
			frames, strings.Join(grown, "; "))
	}
}

// ---------------------------------------------------------------------
// recvbuf.go / stream.go: WriteTo

func TestRelaychain_WriteTo_LargeRandom(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
	data := rcData(8<<20, 1)

	sent := rcAsync(func() error {
		s, err := client.OpenStream()
		if err != nil {
			return err
		}
		rng := mrand.New(mrand.NewSource(2))
		for off := 0; off < len(data); {
			var n int
			switch rng.Intn(3) {
			case 0:
				n = 1 + rng.Intn(512)
			case 1:
				n = 513 + rng.Intn(16<<10)
			default:
				n = 16<<10 + rng.Intn(300<<10)
			}
			if n > len(data)-off {
				n = len(data) - off
			}
			if _, err := s.Write(data[off : off+n]); err != nil {
				return err
			}
			off += n
		}
		return s.Close()
	})
	st := rcAccept(t, server)
	sink := &rcSink{}
	var n int64
	got := rcAsync(func() error { return rcWriteTo(st, sink, &n) })
	if err := rcAwait(t, got, 60*time.Second, "WriteTo"); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
		t.Fatalf("sender: %v", err)
	}
	out, calls := sink.snapshot()
	if n != int64(len(data)) {
		t.Fatalf("WriteTo returned %d, want %d", n, len(data))
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("WriteTo delivered different bytes (%d of %d)", len(out), len(data))
	}
	for i, c := range calls {
		if c.n == 0 || c.n > int(initialStreamWindow) {
			t.Fatalf("call %d handed %d bytes", i, c.n)
		}
	}
	t.Logf("%d bytes in %d writes", n, len(calls))
}

// Each Write gets one received frame's own pooled buffer: exactly the
// sender's frame size, with the capacity of its chunk class (a copy would
// not have it).
func TestRelaychain_WriteTo_ZeroCopyFrameSize(t *testing.T) {
	cc, sc := testConnTCP(t)
	conf := rcConf(rcWindow(1 << 20))
	client, server := testClientServerConfig(t, cc, sc, conf, conf.Clone())
	cs := rcOpen(t, client)
	st := rcAccept(t, server)
	rcEventually(t, 10*time.Second, "the client sees the 1 MiB window",
		func() bool { return atomic.LoadUint32(&cs.sendWindow) == 1<<20 })

	sizes := []int{1, 100, 513, 4096, 5000, 16385, 20000, 33333, 65536, 100000, 300000, 400000}
	sink := &rcSink{called: make(chan rcSinkCall, len(sizes))}
	var n int64
	done := rcAsync(func() error { return rcWriteTo(st, sink, &n) })
	var want []byte
	for i, size := range sizes {
		b := rcData(size, int64(100+i))
		want = append(want, b...)
		if _, err := cs.Write(b); err != nil {
			t.Fatalf("Write: %v", err)
		}
		select {
		case c := <-sink.called:
			wantCap := chunkSize(chunkClass(size))
			if c.n != size || c.cap != wantCap {
				t.Fatalf("frame of %d bytes reached the writer as len %d cap %d, want len %d cap %d",
					size, c.n, c.cap, size, wantCap)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("frame of %d bytes did not reach the writer", size)
		}
	}
	cs.Close()
	if err := rcAwait(t, done, 10*time.Second, "WriteTo"); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	out, _ := sink.snapshot()
	if n != int64(len(want)) || !bytes.Equal(out, want) {
		t.Fatalf("WriteTo delivered %d bytes (returned %d), want %d", len(out), n, len(want))
	}
}

// A writer that stalls holds its frame in the window: the sender gets at
// most one window ahead.
func TestRelaychain_WriteTo_HoldsOneWindow(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
	const window = int(initialStreamWindow)
	const piece = 64 << 10
	data := rcData(3*window, 3)

	cs := rcOpen(t, client)
	var sent atomic.Int64
	wrote := rcAsync(func() error {
		for off := 0; off < len(data); off += piece {
			if _, err := cs.Write(data[off : off+piece]); err != nil {
				return err
			}
			sent.Add(piece)
		}
		return cs.Close()
	})
	st := rcAccept(t, server)
	sink := &rcSink{block: make(chan struct{})}
	var n int64
	done := rcAsync(func() error { return rcWriteTo(st, sink, &n) })

	rcEventually(t, 10*time.Second, "sender fills the window", func() bool { return sent.Load() >= int64(window) })
	rcEventually(t, 10*time.Second, "writer called", func() bool { _, c := sink.snapshot(); return len(c) == 1 })
	time.Sleep(200 * time.Millisecond) // room for the sender to get further, were the window reopened
	if s := sent.Load(); s > int64(window) {
		t.Fatalf("the sender wrote %d bytes while the writer was stalled, more than the %d window", s, window)
	}
	_, calls := sink.snapshot()
	held := calls[0].n
	if b := st.Buffered(); b != window-held {
		t.Fatalf("Buffered() = %d, want %d: the window minus the %d bytes held by the writer", b, window-held, held)
	}
	st.recvLock.Lock()
	inWindow := st.recv.len()
	st.recvLock.Unlock()
	if inWindow != window {
		t.Fatalf("recv.len() = %d, want %d (queued plus held)", inWindow, window)
	}
	rcNotDone(t, wrote, 0, "sender")

	close(sink.block)
	if err := rcAwait(t, done, 20*time.Second, "WriteTo"); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if err := rcAwait(t, wrote, 10*time.Second, "sender"); err != nil {
		t.Fatalf("sender: %v", err)
	}
	out, _ := sink.snapshot()
	if n != int64(len(data)) || !bytes.Equal(out, data) {
		t.Fatalf("WriteTo delivered %d bytes (returned %d), want %d", len(out), n, len(data))
	}
}

// Frames queued before WriteTo runs leave in one Write, as many whole
// frames as fit in 64 KiB.
func TestRelaychain_WriteTo_GathersSmallFrames(t *testing.T) {
	for _, tc := range []struct {
		frames int
		want   []int
	}{
		{12, []int{12000}},
		{100, []int{65000, 35000}}, // whole frames only: 65 of them fit in 64 KiB
	} {
		cc, sc := testConnPipe(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
		cs := rcOpen(t, client)
		st := rcAccept(t, server)
		data := rcData(tc.frames*1000, 16)
		for i := 0; i < tc.frames; i++ {
			if _, err := cs.Write(data[i*1000 : (i+1)*1000]); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		rcEventually(t, 10*time.Second, "all frames queued", func() bool { return st.Buffered() == len(data) })
		sink := &rcSink{}
		var n int64
		done := rcAsync(func() error { return rcWriteTo(st, sink, &n) })
		rcEventually(t, 10*time.Second, "all bytes written", func() bool { out, _ := sink.snapshot(); return len(out) == len(data) })
		cs.Close()
		if err := rcAwait(t, done, 10*time.Second, "WriteTo"); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		out, calls := sink.snapshot()
		if !bytes.Equal(out, data) || n != int64(len(data)) {
			t.Fatalf("%d frames: delivered %d bytes (returned %d), want %d", tc.frames, len(out), n, len(data))
		}
		var sizes []int
		for _, c := range calls {
			sizes = append(sizes, c.n)
		}
		if fmt.Sprint(sizes) != fmt.Sprint(tc.want) {
			t.Fatalf("%d queued 1000-byte frames reached the writer as %v, want %v", tc.frames, sizes, tc.want)
		}
	}
}

// With the peer's FIN processed, the last chunk goes out with WriteClose.
func TestRelaychain_WriteTo_WriteCloseOnLast(t *testing.T) {
	t.Run("Queued", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
		cs := rcOpen(t, client)
		data := rcData(60000, 17)
		for i := 0; i < 3; i++ {
			if _, err := cs.Write(data[i*20000 : (i+1)*20000]); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		cs.Close()
		st := rcAccept(t, server)
		rcEventually(t, 10*time.Second, "data and FIN queued", func() bool {
			return st.Buffered() == len(data) && rcState(st) == streamRemoteClose
		})
		sink := &rcSink{}
		var n int64
		err := rcAwait(t, rcAsync(func() error { return rcWriteTo(st, rcCloseSink{sink}, &n) }), 10*time.Second, "WriteTo")
		if err != nil || n != int64(len(data)) {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		out, calls := sink.snapshot()
		want := []rcSinkCall{{20000, 20480, false}, {20000, 20480, false}, {20000, 20480, true}}
		if !bytes.Equal(out, data) || len(calls) != 3 || calls[0] != want[0] || calls[1] != want[1] || calls[2] != want[2] {
			t.Fatalf("calls %+v, want %+v", calls, want)
		}
	})

	t.Run("Live", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
		cs := rcOpen(t, client)
		st := rcAccept(t, server)
		sink := &rcSink{}
		var n int64
		done := rcAsync(func() error { return rcWriteTo(st, rcCloseSink{sink}, &n) })
		rcEventually(t, 10*time.Second, "WriteTo waiting", func() bool { return rcParked("yamux.rcWriteTo", "") == 1 })
		msg := rcData(5000, 18)
		if k, err := cs.WriteClose(msg); err != nil || k != len(msg) {
			t.Fatalf("WriteClose = %d, %v", k, err)
		}
		if err := rcAwait(t, done, 10*time.Second, "WriteTo"); err != nil || n != int64(len(msg)) {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		out, calls := sink.snapshot()
		if !bytes.Equal(out, msg) || len(calls) != 1 || !calls[0].close {
			t.Fatalf("calls %+v: want one WriteClose of %d bytes", calls, len(msg))
		}
	})

	// A relay hop: WriteTo into a lazily opened Stream forwards a request
	// that came with its FIN as one frame carrying SYN and FIN.
	t.Run("RelayHop", func(t *testing.T) {
		c1, s1 := testConnTCP(t)
		client1, server1 := testClientServerConfig(t, c1, s1, rcConf(), rcConf())
		c2raw, s2 := testConnTCP(t)
		wire, c2 := rcWrap(c2raw, true)
		client2, server2 := testClientServerConfig(t, c2, s2, rcConf(rcLazy), rcConf(rcLazy))

		up := rcOpen(t, client1)
		hop := rcAccept(t, server1)
		next := rcOpen(t, client2)
		var n int64
		done := rcAsync(func() error { return rcWriteTo(hop, next, &n) })
		rcEventually(t, 10*time.Second, "WriteTo waiting", func() bool { return rcParked("yamux.rcWriteTo", "") == 1 })
		msg := rcData(3000, 19)
		if _, err := up.WriteClose(msg); err != nil {
			t.Fatalf("WriteClose: %v", err)
		}
		if err := rcAwait(t, done, 10*time.Second, "WriteTo"); err != nil || n != int64(len(msg)) {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		far := rcAccept(t, server2)
		if got := rcReadAll(t, far, 10*time.Second); !bytes.Equal(got, msg) {
			t.Fatalf("far end read %d bytes, want %d", len(got), len(msg))
		}
		frames, _ := wire.log()
		if len(frames) != 1 || frames[0].typ != typeData || frames[0].flags != flagSYN|flagFIN || frames[0].length != uint32(len(msg)) {
			t.Fatalf("relayed frames %+v, want one data frame with SYN|FIN and %d bytes", frames, len(msg))
		}
	})
}

// WriteTo decides that a chunk is the last one (and uses WriteClose) from
// two separate looks: the queue is empty after take (under recvLock), then
// the stream is remote-closed (under stateLock). A frame that arrives with
// the FIN in between is queued behind a chunk that already went out with
// WriteClose. The test plays the receive loop's part at that moment:
// WriteTo is held just before its state check while the last frame is
// queued and the FIN processed, as readData does.
func TestRelaychain_WriteTo_LastChunkRace(t *testing.T) {
	c1, s1 := testConnPipe(t)
	client1, server1 := testClientServerConfig(t, c1, s1, rcConf(), rcConf())
	c2, s2 := testConnPipe(t)
	client2, server2 := testClientServerConfig(t, c2, s2, rcConf(), rcConf())
	a, b := rcData(20000, 60), rcData(20000, 61)

	up := rcOpen(t, client1)
	if _, err := up.Write(a); err != nil {
		t.Fatalf("Write: %v", err)
	}
	hop := rcAccept(t, server1)
	rcEventually(t, 10*time.Second, "first frame queued", func() bool { return hop.Buffered() == len(a) })
	next := rcOpen(t, client2)
	far := rcAccept(t, server2)

	// The test holds the stream's locks below; before failing it lets go of
	// them, or the session could not close.
	var holdRecv, holdState bool
	fail := func(format string, args ...interface{}) {
		if holdRecv {
			hop.recvLock.Unlock()
		}
		if holdState {
			hop.stateLock.Unlock()
		}
		t.Fatalf(format, args...)
	}
	waitFor := func(what string, cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				fail("%s: not true after 10s", what)
			}
		}
	}

	hop.recvLock.Lock()
	holdRecv = true
	var n int64
	done := rcAsync(func() error { return rcWriteTo(hop, next, &n) })
	waitFor("WriteTo waiting in awaitData", func() bool {
		return rcBlockedOnMutex("yamux.rcWriteTo", "") == 1 && rcBlockedOnMutex("awaitData", "") == 1
	})
	hop.stateLock.Lock()
	holdState = true
	hop.recvLock.Unlock()
	holdRecv = false
	// WriteTo now takes the only queued chunk and blocks on stateLock.
	waitFor("WriteTo at its state check", func() bool {
		return rcBlockedOnMutex("yamux.rcWriteTo", "awaitData") == 1
	})
	// The receive loop's part (readData): queue the last frame, then its FIN.
	waitFor("recvLock free (WriteTo must not hold it at its state check)", hop.recvLock.TryLock)
	hop.recv.push(rcChunk(b))
	hop.recvWindow -= uint32(len(b))
	hop.recvLock.Unlock()
	hop.state = streamRemoteClose
	hop.notifyWaiting()
	hop.stateLock.Unlock()
	holdState = false

	err := rcAwait(t, done, 10*time.Second, "WriteTo")
	got := rcReadAll(t, far, 10*time.Second)
	want := append(append([]byte(nil), a...), b...)
	if err != nil || n != int64(len(want)) || !bytes.Equal(got, want) {
		t.Errorf("regression (fixed bug, stream.go WriteTo, the `last` check): a frame with the FIN that arrives between take() "+
			"leaving the queue empty and the state check makes WriteTo send the earlier chunk with WriteClose; "+
			"the last chunk then meets a closed writer: WriteTo returned %d, %v; the far end read %d of %d bytes "+
			"and then EOF", n, err, len(got), len(want))
	}
}

// ---------------------------------------------------------------------
// session.go: direct writes and batching

func TestRelaychain_Direct_ConcurrentStreamsTCP(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
	if client.deadlineConn == nil || server.deadlineConn == nil {
		t.Fatalf("TCP sessions should write directly")
	}
	const streams = 16
	const size = 256 << 10
	errs := make(chan error, 4*streams)
	var wg sync.WaitGroup
	// send writes data in varied pieces: small ones (copied into a frame
	// or the send loop's staging buffer) and large ones (by reference).
	send := func(s *Stream, data []byte, seed int64) error {
		rng := mrand.New(mrand.NewSource(seed))
		for off := 0; off < len(data); {
			n := 1 + rng.Intn(3000)
			if rng.Intn(4) == 0 {
				n = 1 + rng.Intn(64<<10)
			}
			if n > len(data)-off {
				n = len(data) - off
			}
			if _, err := s.Write(data[off : off+n]); err != nil {
				return err
			}
			off += n
		}
		return s.Close()
	}
	check := func(s *Stream, want []byte, who string) error {
		got, err := io.ReadAll(s)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errors.New(who + ": data differs")
		}
		return nil
	}
	for i := 0; i < streams; i++ {
		i := i
		up, down := rcData(size, int64(1000+i)), rcData(size, int64(2000+i))
		cs := rcOpen(t, client)
		ss := rcAccept(t, server)
		wg.Add(4)
		go func() { defer wg.Done(); errs <- send(cs, up, int64(i)) }()
		go func() { defer wg.Done(); errs <- send(ss, down, int64(100+i)) }()
		go func() { defer wg.Done(); errs <- check(ss, up, "server") }()
		go func() { defer wg.Done(); errs <- check(cs, down, "client") }()
	}
	all := rcAsync(func() error { wg.Wait(); return nil })
	rcAwait(t, all, 60*time.Second, "transfers")
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if client.IsClosed() || server.IsClosed() {
		t.Fatalf("a session closed")
	}
}

// rcQueuedWrite is a named writer, so that rcParked can find it.
func rcQueuedWrite(s *Stream, b []byte) error {
	_, err := s.Write(b)
	return err
}

// An idle session's writer writes its frame itself, in one write; writers
// that find the connection busy are queued and leave together in one
// batch, small bodies copied, large ones from the writers' own slices.
func TestRelaychain_Direct_PathAndBatching(t *testing.T) {
	cc, sc := testConnTCP(t)
	wire, cw := rcWrap(cc, true)
	client, server := testClientServerConfig(t, cw, sc, rcConf(), rcConf())
	wire.mu.Lock()
	wire.stacks = true
	wire.mu.Unlock()

	const k = 20
	var cs, ss []*Stream
	for i := 0; i <= k; i++ {
		cs = append(cs, rcOpen(t, client))
		ss = append(ss, rcAccept(t, server))
	}

	// Idle: one write, from the writer's goroutine, header and body together.
	wire.reset()
	if _, err := cs[0].Write([]byte("hello")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_, calls := wire.log()
	if len(calls) != 1 || calls[0].path != "direct" || calls[0].frames != 1 || calls[0].n != headerSize+5 {
		t.Fatalf("idle write: calls %+v, want one direct write of one %d-byte frame", calls, headerSize+5)
	}
	if got := rcReadN(t, ss[0], 5); string(got) != "hello" {
		t.Fatalf("server read %q", got)
	}

	for _, bodySize := range []int{100, 8000} {
		wire.reset()
		wire.closeGate()
		first := rcAsync(func() error { return rcQueuedWrite(cs[0], []byte("first")) })
		wire.waitEntered(t) // a direct write now holds the connection
		bodies := make([][]byte, k+1)
		results := make([]<-chan error, k+1)
		for i := 1; i <= k; i++ {
			b := rcData(bodySize, int64(i))
			bodies[i] = b
			st := cs[i]
			results[i] = rcAsync(func() error { return rcQueuedWrite(st, b) })
		}
		rcEventually(t, 10*time.Second, "all writers queued", func() bool {
			return rcParked("yamux.rcQueuedWrite", "sendDirect") == k
		})
		wire.openGate()
		for i := 0; i <= k; i++ {
			ch := first
			if i > 0 {
				ch = results[i]
			}
			if err := rcAwait(t, ch, 10*time.Second, "queued write"); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		_, calls := wire.log()
		direct, loopCalls, loopFrames := 0, 0, 0
		refs := map[*byte]bool{}
		for _, c := range calls {
			switch c.path {
			case "direct":
				direct += c.frames
			case "loop":
				loopCalls++
				loopFrames += c.frames
				refs[c.first] = true
			}
		}
		if direct != 1 || loopFrames != k {
			t.Fatalf("body %d: %d direct frames and %d from the send loop, want 1 and %d (calls %+v)", bodySize, direct, loopFrames, k, calls)
		}
		if bodySize <= smallSend && loopCalls > 2 {
			t.Fatalf("body %d: the send loop used %d writes for %d queued frames, want them batched (at most 2)", bodySize, loopCalls, k)
		}
		if bodySize > smallSend {
			for i := 1; i <= k; i++ {
				if !refs[&bodies[i][0]] {
					t.Fatalf("body %d: writer %d's body was not written from its own slice", bodySize, i)
				}
			}
		}
		// Everything arrives, on the right streams.
		if got := rcReadN(t, ss[0], 5); string(got) != "first" {
			t.Fatalf("stream 0 read %q", got)
		}
		for i := 1; i <= k; i++ {
			if got := rcReadN(t, ss[i], bodySize); !bytes.Equal(got, bodies[i]) {
				t.Fatalf("stream %d: wrong data", i)
			}
		}
	}
}

// A write that fails on the connection returns the error and ends the
// session, both from the direct path and from the send loop.
func TestRelaychain_Direct_WriteErrorClosesSession(t *testing.T) {
	errBoom := errors.New("boom")
	for _, direct := range []bool{true, false} {
		name := "SendLoop"
		if direct {
			name = "Direct"
		}
		t.Run(name, func(t *testing.T) {
			var raw, sc io.ReadWriteCloser
			if direct {
				raw, sc = testConnTCP(t)
			} else {
				raw, sc = testConnPipe(t)
			}
			wire, cw := rcWrap(raw, direct)
			client, server := testClientServerConfig(t, cw, sc, rcConf(), rcConf())
			if (client.deadlineConn != nil) != direct {
				t.Fatalf("direct path available: %v", client.deadlineConn != nil)
			}
			cs := rcOpen(t, client)
			rcAccept(t, server)
			wire.failWrites(errBoom)
			_, err := cs.Write([]byte("data"))
			if err == nil {
				t.Fatalf("Write on a failing connection succeeded")
			}
			if direct && !errors.Is(err, errBoom) {
				t.Fatalf("direct Write error %v, want %v", err, errBoom)
			}
			if !direct && !errors.Is(err, errBoom) && err != ErrSessionShutdown {
				t.Fatalf("queued Write error %v, want %v or %v", err, errBoom, ErrSessionShutdown)
			}
			select {
			case <-client.CloseChan():
			case <-time.After(5 * time.Second):
				t.Fatalf("session still open after a failed write")
			}
			if cause := client.exitCause(); !errors.Is(cause, errBoom) {
				t.Fatalf("exit cause %v, want %v", cause, errBoom)
			}
			if _, err := cs.Write([]byte("more")); err == nil {
				t.Fatalf("Write after the session ended succeeded")
			}
		})
	}
}

// A body the send loop has not taken when its writer gives up (write
// timeout) is copied, so the writer may reuse its buffer at once.
func TestRelaychain_Direct_UntakenBodyCopiedOnTimeout(t *testing.T) {
	cp, sp := testConnPipe(t)
	wire, cw := rcWrap(cp, false)
	conf := rcConf()
	conf.ConnectionWriteTimeout = 300 * time.Millisecond
	client, server := testClientServerConfig(t, cw, sp, conf, rcConf())
	s0, s1 := rcOpen(t, client), rcOpen(t, client)
	rs0, rs1 := rcAccept(t, server), rcAccept(t, server)

	wire.closeGate()
	first := rcAsync(func() error { return rcQueuedWrite(s0, []byte("first")) })
	wire.waitEntered(t) // the send loop is writing a batch with s0's frame
	body := rcData(8000, 21)
	orig := append([]byte(nil), body...)
	err := rcAwait(t, rcAsync(func() error { return rcQueuedWrite(s1, body) }), 10*time.Second, "queued write")
	if err != ErrConnectionWriteTimeout {
		t.Fatalf("queued write: %v, want %v", err, ErrConnectionWriteTimeout)
	}
	for i := range body {
		body[i] = 0xEE // the caller reuses its buffer
	}
	wire.openGate()
	if err := rcAwait(t, first, 10*time.Second, "first write"); err != nil && err != ErrConnectionWriteTimeout {
		t.Fatalf("first write: %v", err)
	}
	if got := rcReadN(t, rs1, len(orig)); !bytes.Equal(got, orig) {
		t.Fatalf("the frame sent after the timeout carried the reused buffer, not a copy of the body")
	}
	if got := rcReadN(t, rs0, 5); string(got) != "first" {
		t.Fatalf("stream 0 read %q", got)
	}
}

// After a write returns early (write timeout) with its frame still queued,
// the send loop's late answer for that frame must not end the stream's next
// write before its own frame is written.
func TestRelaychain_Direct_StaleResultNotReused(t *testing.T) {
	cp, sp := testConnPipe(t)
	wire, cw := rcWrap(cp, false)
	conf := rcConf()
	conf.ConnectionWriteTimeout = 500 * time.Millisecond
	client, server := testClientServerConfig(t, cw, sp, conf, rcConf())
	cs := rcOpen(t, client)
	ss := rcAccept(t, server)

	wire.reset()
	wire.closeGate()
	err := rcAwait(t, rcAsync(func() error { return rcQueuedWrite(cs, []byte("a")) }), 10*time.Second, "first write")
	if err != ErrConnectionWriteTimeout {
		t.Fatalf("first write: %v, want %v", err, ErrConnectionWriteTimeout)
	}
	second := rcAsync(func() error { return rcQueuedWrite(cs, []byte("b")) })
	rcEventually(t, 10*time.Second, "second write queued", func() bool { return len(client.sendCh) == 1 })
	wire.tokens <- struct{}{} // the first frame goes out; its answer comes late
	rcEventually(t, 10*time.Second, "first frame delivered", func() bool { return ss.Buffered() == 1 })
	select {
	case err := <-second:
		if err == nil {
			if frames, _ := wire.log(); len(frames) < 2 {
				t.Fatalf("second write returned nil before its frame was written (a stale answer); frames written: %+v", frames)
			}
		}
	case <-time.After(100 * time.Millisecond):
		wire.openGate()
		if err := rcAwait(t, second, 10*time.Second, "second write"); err != nil && err != ErrConnectionWriteTimeout {
			t.Fatalf("second write: %v", err)
		}
	}
	wire.openGate()
}

// A body the send loop is writing when its writer's write timeout passes:
// the writer must wait for that write (it still reads the body) but, as
// the comment in waitForSend says, the session is closed, so the write
// and the writer end at once instead of whenever the connection unblocks.
func TestRelaychain_Direct_TakenBodyTimeoutEndsSession(t *testing.T) {
	cp, sp := testConnPipe(t)
	wire, cw := rcWrap(cp, false) // no write deadlines: only the session can end a stuck write
	conf := rcConf()
	conf.ConnectionWriteTimeout = 200 * time.Millisecond
	client, server := testClientServerConfig(t, cw, sp, conf, rcConf())
	cs := rcOpen(t, client)
	rcAccept(t, server)
	t.Cleanup(wire.openGate)

	wire.closeGate()
	done := rcAsync(func() error { return rcQueuedWrite(cs, rcData(8000, 22)) }) // > smallSend: written by reference
	wire.waitEntered(t)
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("write through a stuck connection succeeded")
		}
		if !client.IsClosed() {
			t.Fatalf("write returned %v but the session is still open", err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("regression (fixed bug, session.go waitForSend/bodyCopy): a Write whose body (> %d bytes) the send loop "+
			"is writing is still blocked 2s after ConnectionWriteTimeout (200ms) on a connection without write "+
			"deadlines, and the session was not closed (IsClosed=%v): bodyCopy's "+
			"`case <-timer.C: go s.exitErr(ErrConnectionWriteTimeout)` can never fire when bodyCopy is called from the "+
			"timer case, whose receive already drained timer.C; upstream returned ErrConnectionWriteTimeout here",
			smallSend, client.IsClosed())
	}
}

// ---------------------------------------------------------------------
// LazyOpen, WriteClose, Buffered

func TestRelaychain_Lazy_OpenSendsNothing(t *testing.T) {
	cc, sc := testConnTCP(t)
	cwire, cw := rcWrap(cc, true)
	swire, sw := rcWrap(sc, true)
	client, server := testClientServerConfig(t, cw, sw, rcConf(rcLazy), rcConf(rcLazy))

	cs := rcOpen(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if st, err := server.AcceptStreamWithContext(ctx); err != context.DeadlineExceeded {
		t.Fatalf("AcceptStream before the first write: %v, %v; want %v", st, err, context.DeadlineExceeded)
	}
	if frames, _ := cwire.log(); len(frames) != 0 {
		t.Fatalf("OpenStream sent %+v", frames)
	}

	if _, err := cs.Write([]byte("ping")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	ss := rcAccept(t, server)
	if got := rcReadN(t, ss, 4); string(got) != "ping" {
		t.Fatalf("server read %q", got)
	}
	if frames, _ := swire.log(); len(frames) != 0 {
		t.Fatalf("AcceptStream and Read sent %+v", frames)
	}
	if _, err := ss.Write([]byte("pong")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := rcReadN(t, cs, 4); string(got) != "pong" {
		t.Fatalf("client read %q", got)
	}
	id := cs.StreamID()
	if frames, _ := cwire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeData, flagSYN, id, 4, 0}) {
		t.Fatalf("client frames %+v, want one data frame with SYN", frames)
	}
	if frames, _ := swire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeData, flagACK, id, 4, 0}) {
		t.Fatalf("server frames %+v, want one data frame with ACK", frames)
	}
	if s := rcState(cs); s != streamEstablished {
		t.Fatalf("client stream state %d, want established", s)
	}
	if s := rcState(ss); s != streamEstablished {
		t.Fatalf("server stream state %d, want established", s)
	}
	client.streamLock.Lock()
	inflight := len(client.inflight)
	client.streamLock.Unlock()
	if inflight != 0 {
		t.Fatalf("%d streams still in flight after the ACK", inflight)
	}
}

func TestRelaychain_Lazy_RequestResponse(t *testing.T) {
	cc, sc := testConnTCP(t)
	cwire, cw := rcWrap(cc, true)
	swire, sw := rcWrap(sc, true)
	client, server := testClientServerConfig(t, cw, sw, rcConf(rcLazy), rcConf(rcLazy))

	go func() {
		for {
			st, err := server.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				req, err := io.ReadAll(st)
				if err != nil {
					st.Close()
					return
				}
				resp := append([]byte("re:"), req...)
				st.WriteClose(resp)
			}()
		}
	}()

	const workers, each = 8, 10
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		w := w
		go func() {
			rng := mrand.New(mrand.NewSource(int64(w)))
			for i := 0; i < each; i++ {
				req := rcData(1+rng.Intn(4000), int64(w*100+i))
				st, err := client.OpenStream()
				if err != nil {
					errs <- err
					return
				}
				if _, err := st.WriteClose(req); err != nil {
					errs <- err
					return
				}
				resp, err := io.ReadAll(st)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(resp, append([]byte("re:"), req...)) {
					errs <- errors.New("wrong response")
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("exchanges not done")
		}
	}
	rcEventually(t, 10*time.Second, "streams released", func() bool {
		return client.NumStreams() == 0 && server.NumStreams() == 0
	})
	// One frame each way per exchange: the request with SYN and FIN, the
	// response with FIN.
	cframes, _ := cwire.log()
	sframes, _ := swire.log()
	if len(cframes) != workers*each || len(sframes) != workers*each {
		t.Fatalf("%d exchanges took %d frames out and %d back", workers*each, len(cframes), len(sframes))
	}
	for _, f := range cframes {
		if f.typ != typeData || f.flags != flagSYN|flagFIN {
			t.Fatalf("request frame %+v, want data with SYN|FIN", f)
		}
	}
	for _, f := range sframes {
		if f.typ != typeData || f.flags&flagFIN == 0 {
			t.Fatalf("response frame %+v, want data with FIN", f)
		}
	}
}

func TestRelaychain_Lazy_CloseUnwritten(t *testing.T) {
	t.Run("Opener", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		cwire, cw := rcWrap(cc, true)
		swire, sw := rcWrap(sc, true)
		client, server := testClientServerConfig(t, cw, sw, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		if err := cs.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ss := rcAccept(t, server)
		if got := rcReadAll(t, ss, 5*time.Second); len(got) != 0 {
			t.Fatalf("read %d bytes from a stream closed unwritten", len(got))
		}
		id := cs.StreamID()
		if frames, _ := cwire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeWindowUpdate, flagSYN | flagFIN, id, 0, 0}) {
			t.Fatalf("client frames %+v, want one window update with SYN|FIN", frames)
		}
		if err := ss.Close(); err != nil {
			t.Fatalf("server Close: %v", err)
		}
		if got := rcReadAll(t, cs, 5*time.Second); len(got) != 0 {
			t.Fatalf("client read %d bytes", len(got))
		}
		if frames, _ := swire.log(); len(frames) != 1 || frames[0].typ != typeWindowUpdate || frames[0].flags&flagFIN == 0 {
			t.Fatalf("server frames %+v, want one window update with FIN", frames)
		}
		rcEventually(t, 5*time.Second, "streams released", func() bool {
			return client.NumStreams() == 0 && server.NumStreams() == 0
		})
	})

	// The accepter closing before it wrote: its FIN carries the ACK.
	t.Run("Accepter", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		swire, sw := rcWrap(sc, true)
		client, server := testClientServerConfig(t, cc, sw, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		if _, err := cs.Write([]byte("x")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		ss := rcAccept(t, server)
		if err := ss.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := rcReadAll(t, cs, 5*time.Second); len(got) != 0 {
			t.Fatalf("client read %d bytes", len(got))
		}
		if frames, _ := swire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeWindowUpdate, flagACK | flagFIN, cs.StreamID(), 0, 0}) {
			t.Fatalf("server frames %+v, want one window update with ACK|FIN", frames)
		}
		client.streamLock.Lock()
		inflight := len(client.inflight)
		client.streamLock.Unlock()
		if inflight != 0 {
			t.Fatalf("%d streams in flight after the accepter's ACK|FIN", inflight)
		}
		if got := rcReadN(t, ss, 1); string(got) != "x" {
			t.Fatalf("server read %q", got)
		}
	})
}

func TestRelaychain_Lazy_WriteClose(t *testing.T) {
	t.Run("OneFrame", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		cwire, cw := rcWrap(cc, true)
		client, server := testClientServerConfig(t, cw, sc, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		msg := rcData(1000, 30)
		if n, err := cs.WriteClose(msg); err != nil || n != len(msg) {
			t.Fatalf("WriteClose = %d, %v", n, err)
		}
		if _, err := cs.Write([]byte("late")); err != ErrStreamClosed {
			t.Fatalf("Write after WriteClose: %v, want %v", err, ErrStreamClosed)
		}
		if n, err := cs.WriteClose([]byte("late")); err != ErrStreamClosed || n != 0 {
			t.Fatalf("WriteClose after WriteClose: %d, %v; want %v", n, err, ErrStreamClosed)
		}
		ss := rcAccept(t, server)
		if got := rcReadAll(t, ss, 5*time.Second); !bytes.Equal(got, msg) {
			t.Fatalf("server read %d bytes, want %d", len(got), len(msg))
		}
		if frames, _ := cwire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeData, flagSYN | flagFIN, cs.StreamID(), 1000, 0}) {
			t.Fatalf("frames %+v, want one data frame with SYN|FIN", frames)
		}
	})

	t.Run("ManyFrames", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		cwire, cw := rcWrap(cc, true)
		conf := rcConf(rcLazy)
		client, server := testClientServerConfig(t, cw, sc, conf, rcConf(rcLazy))
		cs := rcOpen(t, client)
		msg := rcData(600000, 31) // more than the 256 KiB window
		wrote := rcAsync(func() error { _, err := cs.WriteClose(msg); return err })
		ss := rcAccept(t, server)
		if got := rcReadAll(t, ss, 20*time.Second); !bytes.Equal(got, msg) {
			t.Fatalf("server read %d bytes, want %d", len(got), len(msg))
		}
		if err := rcAwait(t, wrote, 10*time.Second, "WriteClose"); err != nil {
			t.Fatalf("WriteClose: %v", err)
		}
		frames, _ := cwire.log()
		var data []rcFrame
		for _, f := range frames {
			if f.flags&flagFIN != 0 && f.typ != typeData {
				t.Fatalf("separate FIN frame %+v", f)
			}
			if f.typ == typeData {
				data = append(data, f)
			}
		}
		total := 0
		for i, f := range data {
			total += int(f.length)
			wantFlags := uint16(0)
			if i == 0 {
				wantFlags = flagSYN
			}
			if i == len(data)-1 {
				wantFlags |= flagFIN
			}
			if f.flags != wantFlags {
				t.Fatalf("data frame %d of %d: %+v, want flags %d", i, len(data), f, wantFlags)
			}
		}
		if total != len(msg) || len(data) < 2 { // the 256 KiB window splits it
			t.Fatalf("%d data frames carried %d bytes", len(data), total)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		cwire, cw := rcWrap(cc, true)
		client, server := testClientServerConfig(t, cw, sc, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		if _, err := cs.Write([]byte("abc")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if n, err := cs.WriteClose(nil); err != nil || n != 0 {
			t.Fatalf("WriteClose(nil) = %d, %v", n, err)
		}
		ss := rcAccept(t, server)
		if got := rcReadAll(t, ss, 5*time.Second); string(got) != "abc" {
			t.Fatalf("server read %q", got)
		}
		frames, _ := cwire.log()
		if len(frames) != 2 || frames[1] != (rcFrame{typeWindowUpdate, flagFIN, cs.StreamID(), 0, 1}) {
			t.Fatalf("frames %+v, want data then a FIN window update", frames)
		}
	})

	// The response direction: data then EOF, the FIN on the data frame.
	t.Run("Response", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		swire, sw := rcWrap(sc, true)
		client, server := testClientServerConfig(t, cc, sw, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		if _, err := cs.Write([]byte("req")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		ss := rcAccept(t, server)
		resp := rcData(5000, 32)
		if _, err := ss.WriteClose(resp); err != nil {
			t.Fatalf("WriteClose: %v", err)
		}
		if got := rcReadAll(t, cs, 5*time.Second); !bytes.Equal(got, resp) {
			t.Fatalf("client read %d bytes, want %d", len(got), len(resp))
		}
		if frames, _ := swire.log(); len(frames) != 1 || frames[0] != (rcFrame{typeData, flagACK | flagFIN, cs.StreamID(), 5000, 0}) {
			t.Fatalf("frames %+v, want one data frame with ACK|FIN", frames)
		}
	})
}

// With a window larger than the initial 256 KiB, the growth rides on a
// lazily opened stream's first frame each way, so each side can send more
// than 256 KiB before the other reads.
func TestRelaychain_Lazy_BigWindow(t *testing.T) {
	const window = 1 << 20
	cc, sc := testConnTCP(t)
	cwire, cw := rcWrap(cc, true)
	swire, sw := rcWrap(sc, true)
	conf := rcConf(rcLazy, rcWindow(window))
	client, server := testClientServerConfig(t, cw, sw, conf, conf.Clone())

	cs := rcOpen(t, client)
	if _, err := cs.Write([]byte("req")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	ss := rcAccept(t, server)
	if _, err := ss.Write([]byte("resp")); err != nil { // before reading the request
		t.Fatalf("Write: %v", err)
	}
	id := cs.StreamID()
	grow := uint32(window - initialStreamWindow)
	if frames, _ := cwire.log(); len(frames) != 2 ||
		frames[0] != (rcFrame{typeWindowUpdate, flagSYN, id, grow, 0}) || frames[1] != (rcFrame{typeData, 0, id, 3, 0}) {
		t.Fatalf("opener's first frame %+v, want a SYN window update of %d and the data, in one write", frames, grow)
	}
	if frames, _ := swire.log(); len(frames) != 2 ||
		frames[0] != (rcFrame{typeWindowUpdate, flagACK, id, grow, 0}) || frames[1] != (rcFrame{typeData, 0, id, 4, 0}) {
		t.Fatalf("accepter's first frame %+v, want an ACK window update of %d and the data, in one write", frames, grow)
	}

	up, down := rcData(900<<10, 33), rcData(900<<10, 34)
	if err := rcAwait(t, rcAsync(func() error { _, err := cs.Write(up); return err }), 10*time.Second,
		"900 KiB to an accepter that does not read"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := rcAwait(t, rcAsync(func() error { _, err := ss.Write(down); return err }), 10*time.Second,
		"900 KiB to an opener that does not read"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	rcEventually(t, 10*time.Second, "all queued", func() bool {
		return ss.Buffered() == 3+len(up) && cs.Buffered() == 4+len(down)
	})
	if got := rcReadN(t, ss, 3+len(up)); string(got[:3]) != "req" || !bytes.Equal(got[3:], up) {
		t.Fatalf("server read wrong data")
	}
	if got := rcReadN(t, cs, 4+len(down)); string(got[:4]) != "resp" || !bytes.Equal(got[4:], down) {
		t.Fatalf("client read wrong data")
	}
}

func TestRelaychain_Buffered(t *testing.T) {
	cp, sp := testConnPipe(t)
	client, server := testClientServerConfig(t, cp, sp, rcConf(rcLazy), rcConf(rcLazy))
	cs := rcOpen(t, client)
	if b := cs.Buffered(); b != 0 {
		t.Fatalf("Buffered() = %d on a new stream", b)
	}
	data := rcData(8000, 40)
	for _, r := range [][2]int{{0, 1000}, {1000, 3000}, {3000, 8000}} {
		if _, err := cs.Write(data[r[0]:r[1]]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	ss := rcAccept(t, server)
	rcEventually(t, 10*time.Second, "8000 bytes buffered", func() bool { return ss.Buffered() == 8000 })
	got := make([]byte, 1500)
	if n, err := ss.Read(got); err != nil || n != 1500 || !bytes.Equal(got, data[:1500]) {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if b := ss.Buffered(); b != 6500 {
		t.Fatalf("Buffered() = %d after reading 1500 of 8000", b)
	}
	if rest := rcReadN(t, ss, 6500); !bytes.Equal(rest, data[1500:]) {
		t.Fatalf("read wrong data")
	}
	if b := ss.Buffered(); b != 0 {
		t.Fatalf("Buffered() = %d after reading everything", b)
	}
}

// A FIN on a data frame is processed after the frame's bytes are queued:
// a reader woken by it finds the bytes, never an early EOF.
func TestRelaychain_Lazy_FinAfterData(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		cc, sc := testConnTCP(t)
		conf := rcConf()
		conf.LazyOpen = lazy
		client, server := testClientServerConfig(t, cc, sc, conf, conf.Clone())
		for i := 0; i < 100; i++ {
			msg := rcData(1+i*37, int64(i))
			cs := rcOpen(t, client)
			var ss *Stream
			var got <-chan error
			var out []byte
			var sink *rcSink
			var n int64
			if !lazy {
				ss = rcAccept(t, server)
				if i%2 == 0 {
					got = rcAsync(func() (err error) { out, err = io.ReadAll(ss); return })
				} else {
					sink = &rcSink{}
					got = rcAsync(func() error { return rcWriteTo(ss, sink, &n) })
				}
			}
			if _, err := cs.WriteClose(msg); err != nil {
				t.Fatalf("WriteClose: %v", err)
			}
			if lazy {
				ss = rcAccept(t, server)
				got = rcAsync(func() (err error) { out, err = io.ReadAll(ss); return })
			}
			if err := rcAwait(t, got, 10*time.Second, "read"); err != nil {
				t.Fatalf("read: %v", err)
			}
			if sink != nil {
				out, _ = sink.snapshot()
			}
			if !bytes.Equal(out, msg) {
				t.Fatalf("lazy %v, exchange %d: read %d bytes, want %d", lazy, i, len(out), len(msg))
			}
			ss.Close()
		}
		rcEventually(t, 10*time.Second, "streams released", func() bool {
			return client.NumStreams() == 0 && server.NumStreams() == 0
		})
	}
}

// The accepter's ACK must reach the opener even when the opener's FIN
// (WriteClose of the request, or Close) arrives before the accepter's
// first frame; until it does, the opener counts the stream as an
// unacknowledged open (inflight, and one of AcceptBacklog SYN credits).
func TestRelaychain_Lazy_AckAfterPeerFin(t *testing.T) {
	cc, sc := testConnTCP(t)
	swire, sw := rcWrap(sc, true)
	cconf := rcConf(rcLazy)
	cconf.AcceptBacklog = 2
	client, server := testClientServerConfig(t, cc, sw, cconf, rcConf(rcLazy))

	var opened, accepted []*Stream
	for i := 0; i < 2; i++ {
		cs := rcOpen(t, client)
		if _, err := cs.WriteClose([]byte("req")); err != nil {
			t.Fatalf("WriteClose: %v", err)
		}
		ss := rcAccept(t, server)
		if got := rcReadAll(t, ss, 5*time.Second); string(got) != "req" {
			t.Fatalf("server read %q", got)
		}
		// A streamed answer: data, no FIN yet.
		if _, err := ss.Write([]byte("part")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if got := rcReadN(t, cs, 4); string(got) != "part" {
			t.Fatalf("client read %q", got)
		}
		opened, accepted = append(opened, cs), append(accepted, ss)
	}
	// Both answers have reached the opener, so both opens are acknowledged.
	client.streamLock.Lock()
	inflight := len(client.inflight)
	client.streamLock.Unlock()
	frames, _ := swire.log()
	third := rcAsync(func() error { _, err := client.OpenStream(); return err })
	var blocked bool
	select {
	case err := <-third:
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
	case <-time.After(time.Second):
		blocked = true
	}
	for _, ss := range accepted {
		ss.Close()
	}
	for _, cs := range opened {
		rcReadAll(t, cs, 5*time.Second)
	}
	if blocked {
		rcAwait(t, third, 10*time.Second, "OpenStream once the answers ended")
	}
	leaked := 0
	client.streamLock.Lock()
	for _, cs := range opened {
		if _, ok := client.inflight[cs.StreamID()]; ok {
			leaked++
		}
	}
	client.streamLock.Unlock()
	if inflight != 0 || blocked || leaked != 0 {
		t.Errorf("regression (fixed bug, stream.go sendFlags/beginClose with LazyOpen): an accepter whose peer's FIN arrived "+
			"before its first frame (state streamSYNReceived -> streamRemoteClose) never sends the ACK: sendFlags "+
			"only adds ACK in streamSYNReceived and beginClose only owes it in streamSYNReceived. Answer frames %+v "+
			"carry no ACK; with both answers read, the opener still had %d streams in flight, a third OpenStream "+
			"(AcceptBacklog 2) blocked until they closed: %v, and after both streams closed %d of them stay in "+
			"Session.inflight for good (closeStream does not delete the entry)", frames, inflight, blocked, leaked)
	}
}

// ---------------------------------------------------------------------
// Shutdown: return instead of spinning; the exit cause

// A Read or a Write blocked on a stream returns as soon as the session
// shuts down, without waiting for (or spinning until) Close to
// force-close the stream. The connection here keeps Close from getting
// that far until it is released.
func TestRelaychain_Shutdown_BlockedReturnsBeforeForceClose(t *testing.T) {
	cp, sp := testConnPipe(t)
	wire, cw := rcWrap(cp, false)
	wire.hold = make(chan struct{})
	client, server := testClientServerConfig(t, cw, sp, rcConf(), rcConf())
	released := false
	release := func() {
		if !released {
			released = true
			close(wire.hold)
		}
	}
	t.Cleanup(release) // runs before the sessions' cleanups

	rs := rcOpen(t, client)
	rcAccept(t, server)
	ws := rcOpen(t, client)
	rcAccept(t, server) // never read: ws's window runs out
	read := rcAsync(func() error { _, err := rs.Read(make([]byte, 10)); return err })
	write := rcAsync(func() error { _, err := ws.Write(make([]byte, 2*initialStreamWindow)); return err })
	rcEventually(t, 10*time.Second, "send window used up", func() bool { return atomic.LoadUint32(&ws.sendWindow) == 0 })
	rcNotDone(t, read, 50*time.Millisecond, "Read with nothing to read")
	rcNotDone(t, write, 0, "Write with no window")

	start := time.Now()
	closed := rcAsync(client.Close)
	if err := rcAwait(t, read, 2*time.Second, "blocked Read after Close"); err != ErrSessionShutdown {
		t.Fatalf("blocked Read returned %v, want %v", err, ErrSessionShutdown)
	}
	if err := rcAwait(t, write, 2*time.Second, "blocked Write after Close"); err != ErrSessionShutdown {
		t.Fatalf("blocked Write returned %v, want %v", err, ErrSessionShutdown)
	}
	t.Logf("Read and Write returned %v after Close", time.Since(start))
	rcNotDone(t, closed, 0, "Close")
	if s := rcState(rs); s != streamEstablished {
		t.Fatalf("stream state %d: the stream was force-closed already", s)
	}
	// Later calls return at once too.
	if _, err := rs.Read(make([]byte, 1)); err != ErrSessionShutdown {
		t.Fatalf("Read after shutdown: %v", err)
	}
	release()
	if err := rcAwait(t, closed, 5*time.Second, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A Read blocked with nothing queued returns what ended the session.
func TestRelaychain_Shutdown_ReadReturnsExitCause(t *testing.T) {
	t.Run("LocalClose", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
		cs := rcOpen(t, client)
		rcAccept(t, server)
		read := rcAsync(func() error { _, err := cs.Read(make([]byte, 10)); return err })
		rcNotDone(t, read, 20*time.Millisecond, "Read")
		client.Close()
		if err := rcAwait(t, read, 2*time.Second, "Read after Close"); err != ErrSessionShutdown {
			t.Fatalf("Read after a local Close: %v, want %v", err, ErrSessionShutdown)
		}
	})

	// A failed write ends the session; a reader blocked on another stream
	// gets the write's error.
	t.Run("WriteError", func(t *testing.T) {
		errBoom := errors.New("boom")
		cc, sc := testConnTCP(t)
		wire, cw := rcWrap(cc, true)
		wire.hold = make(chan struct{}) // Close cannot finish: no force-close race
		client, server := testClientServerConfig(t, cw, sc, rcConf(), rcConf())
		t.Cleanup(func() { close(wire.hold) })
		ws, rs := rcOpen(t, client), rcOpen(t, client)
		rcAccept(t, server)
		rcAccept(t, server)
		read := rcAsync(func() error { _, err := rs.Read(make([]byte, 10)); return err })
		rcNotDone(t, read, 20*time.Millisecond, "Read")
		wire.failWrites(errBoom)
		if _, err := ws.Write([]byte("x")); !errors.Is(err, errBoom) {
			t.Fatalf("Write: %v, want %v", err, errBoom)
		}
		if err := rcAwait(t, read, 2*time.Second, "Read after the session failed"); !errors.Is(err, errBoom) {
			t.Fatalf("blocked Read: %v, want the exit cause %v", err, errBoom)
		}
	})

	// The remote side's connection drops: a Read with nothing queued must
	// not see a clean EOF, or a truncated stream passes as complete.
	t.Run("RemoteDrop", func(t *testing.T) {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
		cs := rcOpen(t, client)
		if _, err := cs.Write([]byte("x")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		ss := rcAccept(t, server)
		rcReadN(t, ss, 1)
		read := rcAsync(func() error { _, err := ss.Read(make([]byte, 10)); return err })
		rcNotDone(t, read, 20*time.Millisecond, "Read")
		cc.Close() // the client's connection, under its session, goes away (TCP FIN)
		err := rcAwait(t, read, 2*time.Second, "Read after the peer dropped")
		if err == nil {
			t.Fatalf("Read returned nil")
		}
		if err == io.EOF {
			t.Errorf("regression (fixed bug, stream.go awaitData / session.go exitCause): after the peer's connection drops "+
				"(TCP FIN, stream never closed), a blocked Read returns io.EOF, the same as the peer closing the "+
				"stream: the exit cause is the connection's io.EOF (server.exitCause() = %v)", server.exitCause())
		}
	})
}

// After the session ended with data still queued, the data is delivered,
// and then the reader must learn that the stream was cut, not closed.
func TestRelaychain_Shutdown_CutAfterQueuedData(t *testing.T) {
	errCut := errors.New("link cut")
	cp, sp := testConnPipe(t)
	wire, sw := rcWrap(sp, false)
	client, server := testClientServerConfig(t, cp, sw, rcConf(), rcConf())
	c1, c2 := rcOpen(t, client), rcOpen(t, client)
	msg := rcData(5000, 50)
	for _, cs := range []*Stream{c1, c2} {
		if _, err := cs.Write(msg); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	s1, s2 := rcAccept(t, server), rcAccept(t, server)
	rcEventually(t, 10*time.Second, "data queued", func() bool { return s1.Buffered() == len(msg) && s2.Buffered() == len(msg) })
	wire.cut(errCut)
	select {
	case <-server.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatalf("session did not end")
	}
	if cause := server.exitCause(); cause != errCut {
		t.Fatalf("exit cause %v, want %v", cause, errCut)
	}
	// Close has force-closed the streams (streamClosed).
	rcEventually(t, 5*time.Second, "streams force-closed", func() bool {
		return rcState(s1) == streamClosed && rcState(s2) == streamClosed
	})

	sink := &rcSink{}
	var n int64
	wtErr := rcAwait(t, rcAsync(func() error { return rcWriteTo(s1, rcCloseSink{sink}, &n) }), 5*time.Second, "WriteTo")
	out, calls := sink.snapshot()
	if !bytes.Equal(out, msg) || n != int64(len(msg)) {
		t.Fatalf("WriteTo delivered %d bytes (returned %d), want the %d queued", len(out), n, len(msg))
	}
	var readErr error
	if got := rcReadN(t, s2, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("Read of the queued data: wrong data")
	}
	_, readErr = s2.Read(make([]byte, 10))
	if readErr == nil {
		t.Fatalf("Read after the queued data returned nil")
	}
	if wtErr == nil || readErr == io.EOF || (len(calls) > 0 && calls[len(calls)-1].close) {
		t.Errorf("regression (fixed bug, stream.go awaitData/WriteTo): once the session has ended (exit cause %q) the "+
			"force-closed stream (streamClosed) looks like one the peer closed: after the queued bytes Read "+
			"returns %v instead of the exit cause, and WriteTo hands the last bytes to WriteClose (calls %+v), "+
			"so a relay forwards a FIN, and returns %v: a cut stream passes as complete", errCut, readErr, calls, wtErr)
	}
}

// TestRelaychain_WriteToDoesNotClose: plain WriteTo (io.Copy) never closes
// its destination, even one with WriteClose; ForwardTo does.
func TestRelaychain_WriteToDoesNotClose(t *testing.T) {
	conf := testConf()
	conf.LazyOpen = true
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, conf, conf.Clone())
	for _, forward := range []bool{false, true} {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.WriteClose([]byte("last bytes")); err != nil {
			t.Fatal(err)
		}
		in, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		sink := rcCloseSink{&rcSink{}}
		var n int64
		if forward {
			n, err = in.ForwardTo(sink)
		} else {
			n, err = io.Copy(sink, in)
		}
		if err != nil || n != int64(len("last bytes")) {
			t.Fatalf("forward=%v: %d bytes, %v", forward, n, err)
		}
		sink.mu.Lock()
		closed := len(sink.calls) > 0 && sink.calls[len(sink.calls)-1].close
		sink.mu.Unlock()
		if closed != forward {
			t.Fatalf("forward=%v: destination closed = %v", forward, closed)
		}
		in.Close()
		st.Close()
	}
}

// TestRelaychain_Lazy_BigWindowReadFirst: at a window above the initial
// 256 KiB, an accepter that reads the request before it answers (as every
// relaychain node does) still sends its ACK and window growth in one write
// with its first data, not as a window update of its own after the read.
func TestRelaychain_Lazy_BigWindowReadFirst(t *testing.T) {
	const window = 1 << 20
	cc, sc := testConnTCP(t)
	_, cw := rcWrap(cc, true)
	swire, sw := rcWrap(sc, true)
	conf := rcConf(rcLazy, rcWindow(window))
	client, server := testClientServerConfig(t, cw, sw, conf, conf.Clone())

	cs := rcOpen(t, client)
	if _, err := cs.Write([]byte("req")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	ss := rcAccept(t, server)
	if got := rcReadN(t, ss, 3); string(got) != "req" {
		t.Fatalf("read %q", got)
	}
	if frames, _ := swire.log(); len(frames) != 0 {
		t.Fatalf("the accepter sent %+v after reading, before answering; want nothing", frames)
	}
	if _, err := ss.Write([]byte("resp")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	id := cs.StreamID()
	grow := uint32(window-initialStreamWindow) + 3 // and the 3 bytes read
	if frames, calls := swire.log(); len(frames) != 2 || len(calls) != 1 ||
		frames[0] != (rcFrame{typeWindowUpdate, flagACK, id, grow, 0}) || frames[1] != (rcFrame{typeData, 0, id, 4, 0}) {
		t.Fatalf("accepter's frames %+v in %d writes, want an ACK window update of %d and the data, in one write", frames, len(calls), grow)
	}
}
