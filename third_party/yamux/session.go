package yamux

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Session is used to wrap a reliable ordered connection and to
// multiplex it into multiple streams.
type Session struct {
	// remoteGoAway indicates the remote side does
	// not want futher connections. Must be first for alignment.
	remoteGoAway int32

	// localGoAway indicates that we should stop
	// accepting futher connections. Must be first for alignment.
	localGoAway int32

	// nextStreamID is the next stream we should
	// send. This depends if we are a client/server.
	nextStreamID uint32

	// config holds our configuration
	config *Config

	// logger is used for our logs
	logger Logger

	// conn is the underlying connection
	conn io.ReadWriteCloser

	// bufRead is a buffered reader (relaychain patch: over a bare socket
	// one whose buffer is pooled, readbuf.go)
	bufRead frameReader

	// pings is used to track inflight pings
	pings    map[uint32]chan struct{}
	pingID   uint32
	pingLock sync.Mutex

	// streams maps a stream id to a stream, and inflight has an entry
	// for any outgoing stream that has not yet been established. Both are
	// protected by streamLock.
	streams    map[uint32]*Stream
	inflight   map[uint32]struct{}
	streamLock sync.Mutex

	// synCh acts like a semaphore. It is sized to the AcceptBacklog which
	// is assumed to be symmetric between the client and server. This allows
	// the client to avoid exceeding the backlog and instead blocks the open.
	synCh chan struct{}

	// acceptCh is used to pass ready streams to the client
	acceptCh chan *Stream

	// sendCh is used to mark a stream as ready to send,
	// or to send a header out directly.
	sendCh chan *sendReady

	// later holds frames of sendLater for the send loop (relaychain
	// patch, sendlater.go).
	later laterQueue

	// acceptFn, when set by ServeStreams, takes incoming streams instead
	// of acceptCh (relaychain patch).
	acceptFn atomic.Pointer[func(*Stream)]
	// serveAfter is a new stream whose handler call waits for the data
	// frame that follows its opening window update (relaychain patch;
	// the receive loop's own).
	serveAfter *Stream

	// writeSem is held by whoever writes to conn: the send loop, or a
	// writer taking the direct path (relaychain patch).
	writeSem chan struct{}

	// deadlineConn is conn when it can take write deadlines; only then
	// may a writer write directly.
	deadlineConn interface{ SetWriteDeadline(time.Time) error }

	// iov and bufs are the iovecs of a frame written directly
	// (sendDirect, writeNow), under writeSem (relaychain patch).
	iov  [2][]byte
	bufs net.Buffers

	// cork holds frames passed on by a receive loop back until it would
	// read again (relaychain patch, cork.go).
	cork corkState

	// rawConn is conn's socket when conn is a bare one with deadlines:
	// only then may the receive loop pass frames on (passon.go).
	rawConn syscall.RawConn

	// recvDoneCh is closed when recv() exits to avoid a race
	// between stream registration and stream shutdown
	recvDoneCh chan struct{}
	sendDoneCh chan struct{}

	// shutdown is used to safely close a session
	shutdown        bool
	shutdownErr     error
	shutdownCh      chan struct{}
	shutdownLock    sync.Mutex
	shutdownErrLock sync.Mutex
}

// sendReady is used to either mark a stream as ready
// or to directly send a header
type sendReady struct {
	Hdr  []byte
	mu   sync.Mutex // Protects Body from unsafe reads.
	Body []byte
	Err  chan error
	// Done, when set, gets the outcome instead of Err (sendLater).
	Done func(error)
	// taken is set, under mu, once the send loop has started writing Body
	// (relaychain patch: it writes the caller's buffer, not a copy).
	taken bool
}

// newSession is used to construct a new session
func newSession(config *Config, conn io.ReadWriteCloser, client bool) *Session {
	logger := config.Logger
	if logger == nil {
		logger = log.New(config.LogOutput, "", log.LstdFlags)
	}

	s := &Session{
		config:     config,
		logger:     logger,
		conn:       conn,
		pings:      make(map[uint32]chan struct{}),
		streams:    make(map[uint32]*Stream),
		inflight:   make(map[uint32]struct{}),
		synCh:      make(chan struct{}, config.AcceptBacklog),
		acceptCh:   make(chan *Stream, config.AcceptBacklog),
		sendCh:     make(chan *sendReady, 64),
		later:      laterQueue{ch: make(chan struct{}, 1)},
		writeSem:   make(chan struct{}, 1),
		recvDoneCh: make(chan struct{}),
		sendDoneCh: make(chan struct{}),
		shutdownCh: make(chan struct{}),
	}
	if dc, ok := conn.(interface{ SetWriteDeadline(time.Time) error }); ok && config.ConnectionWriteTimeout > 0 {
		s.deadlineConn = dc
		s.rawConn = rawConnOf(conn)
	}
	s.bufRead = newFrameReader(conn, s.rawConn)
	if client {
		s.nextStreamID = 1
	} else {
		s.nextStreamID = 2
	}
	go s.recv()
	go s.send()
	if config.EnableKeepAlive {
		s.keepalive()
	}
	return s
}

// IsClosed does a safe check to see if we have shutdown
func (s *Session) IsClosed() bool {
	select {
	case <-s.shutdownCh:
		return true
	default:
		return false
	}
}

// CloseChan returns a read-only channel which is closed as
// soon as the session is closed.
func (s *Session) CloseChan() <-chan struct{} {
	return s.shutdownCh
}

// NumStreams returns the number of currently open streams
func (s *Session) NumStreams() int {
	s.streamLock.Lock()
	num := len(s.streams)
	s.streamLock.Unlock()
	return num
}

// Open is used to create a new stream as a net.Conn
func (s *Session) Open() (net.Conn, error) {
	conn, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// OpenStream is used to create a new stream
func (s *Session) OpenStream() (*Stream, error) {
	return s.openStream(true)
}

// openStream is OpenStream; without wait it returns ErrWouldBlock rather
// than wait for a SYN slot (relaychain patch: TryOpenStream).
func (s *Session) openStream(wait bool) (*Stream, error) {
	if s.IsClosed() {
		return nil, ErrSessionShutdown
	}
	if atomic.LoadInt32(&s.remoteGoAway) == 1 {
		return nil, ErrRemoteGoAway
	}

	// Block if we have too many inflight SYNs
	if wait {
		select {
		case s.synCh <- struct{}{}:
		case <-s.shutdownCh:
			return nil, ErrSessionShutdown
		}
	} else {
		select {
		case s.synCh <- struct{}{}:
		default:
			return nil, ErrWouldBlock
		}
	}

GET_ID:
	// Get an ID, and check for stream exhaustion
	id := atomic.LoadUint32(&s.nextStreamID)
	if id >= math.MaxUint32-1 {
		return nil, ErrStreamsExhausted
	}
	if !atomic.CompareAndSwapUint32(&s.nextStreamID, id, id+2) {
		goto GET_ID
	}

	// Register the stream
	stream := newStream(s, id, streamInit)
	s.streamLock.Lock()
	s.streams[id] = stream
	s.inflight[id] = struct{}{}
	s.streamLock.Unlock()

	if s.config.StreamOpenTimeout > 0 {
		go s.setOpenTimeout(stream)
	}

	if s.config.LazyOpen {
		return stream, nil // the SYN rides on the stream's first frame
	}

	// Send the window update to create
	if err := stream.sendWindowUpdate(); err != nil {
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: aborted stream open without inflight syn semaphore")
		}
		return nil, err
	}
	return stream, nil
}

// setOpenTimeout implements a timeout for streams that are opened but not established.
// If the StreamOpenTimeout is exceeded we assume the peer is unable to ACK,
// and close the session.
// The number of running timers is bounded by the capacity of the synCh.
func (s *Session) setOpenTimeout(stream *Stream) {
	timer := time.NewTimer(s.config.StreamOpenTimeout)
	defer timer.Stop()

	select {
	case <-stream.establishCh:
		return
	case <-s.shutdownCh:
		return
	case <-timer.C:
		// Timeout reached while waiting for ACK.
		// Close the session to force connection re-establishment.
		s.logger.Printf("[ERR] yamux: aborted stream open (destination=%s): %v", s.RemoteAddr().String(), ErrTimeout.err)
		s.Close()
	}
}

// Accept is used to block until the next available stream
// is ready to be accepted.
func (s *Session) Accept() (net.Conn, error) {
	conn, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return conn, err
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStream() (*Stream, error) {
	select {
	case stream := <-s.acceptCh:
		if s.config.LazyOpen {
			return stream, nil // the ACK rides on the stream's first frame
		}
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// ServeStreams passes every incoming stream to handle until the session
// shuts down, and returns what AcceptStream would then (relaychain patch).
// With LazyOpen, handle runs on the session's receive loop as each stream
// arrives, once the stream's first frame is in (its data queued, a FIN in
// it seen), which saves waking an accepting goroutine per stream: it must
// not block (start a goroutine for the stream's work, or use only what
// never waits: Peek, TryOpenStream, SendNoWait, SendNoWaitFor, Relay) and
// must not wait on the session's connection; with
// Config.HandlerNeverWaits, on no session's connection. Without LazyOpen it is called from this goroutine,
// after the window update AcceptStream sends. Do not mix it with Accept.
func (s *Session) ServeStreams(handle func(*Stream)) error {
	if s.config.LazyOpen {
		s.acceptFn.Store(&handle)
	}
	for {
		// Streams that arrived before the handler was set, or that the
		// receive loop queued as it was being set.
		stream, err := s.AcceptStream()
		if err != nil {
			<-s.recvDoneCh // no handle call after this returns
			return err
		}
		handle(stream)
	}
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStreamWithContext(ctx context.Context) (*Stream, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case stream := <-s.acceptCh:
		if s.config.LazyOpen {
			return stream, nil // the ACK rides on the stream's first frame
		}
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// Close is used to close the session and all streams.
// Attempts to send a GoAway before closing the connection.
func (s *Session) Close() error {
	s.shutdownLock.Lock()
	defer s.shutdownLock.Unlock()

	if s.shutdown {
		return nil
	}
	s.shutdown = true

	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = ErrSessionShutdown
	}
	s.shutdownErrLock.Unlock()

	close(s.shutdownCh)

	s.conn.Close()
	<-s.recvDoneCh

	s.streamLock.Lock()
	defer s.streamLock.Unlock()
	cause := s.cutCause()
	for _, stream := range s.streams {
		stream.forceClose(cause)
	}
	<-s.sendDoneCh
	return nil
}

// exitCause returns what ended the session: the error that made it exit,
// or ErrSessionShutdown after Close (relaychain patch).
func (s *Session) exitCause() error {
	s.shutdownErrLock.Lock()
	defer s.shutdownErrLock.Unlock()
	if s.shutdownErr == nil {
		return ErrSessionShutdown
	}
	return s.shutdownErr
}

// cutCause is what a stream still open when the session ended reports
// once its queued data is read: the exit cause, with the connection's
// io.EOF turned into io.ErrUnexpectedEOF, since for the stream the end
// was not the peer's close (relaychain patch).
func (s *Session) cutCause() error {
	if err := s.exitCause(); err != io.EOF {
		return err
	}
	return io.ErrUnexpectedEOF
}

// exitErr is used to handle an error that is causing the
// session to terminate.
func (s *Session) exitErr(err error) {
	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = err
	}
	s.shutdownErrLock.Unlock()
	s.Close()
}

// GoAway can be used to prevent accepting further
// connections. It does not close the underlying conn.
func (s *Session) GoAway() error {
	return s.waitForSend(s.goAway(goAwayNormal), nil)
}

// goAway is used to send a goAway message
func (s *Session) goAway(reason uint32) header {
	atomic.SwapInt32(&s.localGoAway, 1)
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeGoAway, 0, 0, reason)
	return hdr
}

// Ping is used to measure the RTT response time
func (s *Session) Ping() (time.Duration, error) {
	// Get a channel for the ping
	ch := make(chan struct{})

	// Get a new ping id, mark as pending
	s.pingLock.Lock()
	id := s.pingID
	s.pingID++
	s.pings[id] = ch
	s.pingLock.Unlock()

	// Send the ping request
	hdr := header(make([]byte, headerSize))
	hdr.encode(typePing, flagSYN, 0, id)
	if err := s.waitForSend(hdr, nil); err != nil {
		return 0, err
	}

	// Wait for a response
	start := time.Now()
	select {
	case <-ch:
	case <-time.After(s.config.ConnectionWriteTimeout):
		s.pingLock.Lock()
		delete(s.pings, id) // Ignore it if a response comes later.
		s.pingLock.Unlock()
		return 0, ErrTimeout
	case <-s.shutdownCh:
		return 0, ErrSessionShutdown
	}

	// Compute the RTT
	return time.Since(start), nil
}

// keepalive arranges a ping after KeepAliveInterval, and after each ping
// that succeeds the next. relaychain patch: upstream held a goroutine per
// session that waited out the interval; a relay with hundreds of links held
// as many idle goroutine stacks. The ping now runs on the timer's own
// short-lived goroutine.
func (s *Session) keepalive() {
	time.AfterFunc(s.config.KeepAliveInterval, s.keepaliveOnce)
}

// keepaliveOnce pings, and ends the session when the ping fails.
func (s *Session) keepaliveOnce() {
	if s.IsClosed() {
		return
	}
	if _, err := s.Ping(); err != nil {
		if err != ErrSessionShutdown {
			s.logger.Printf("[ERR] yamux: keepalive failed: %v", err)
			s.exitErr(ErrKeepAliveTimeout)
		}
		return
	}
	s.keepalive()
}

// waitForSend waits to send a header with optional data, checking for a
// potential shutdown. Since there's the expectation that sends can happen
// in a timely manner, we enforce the connection write timeout here.
func (s *Session) waitForSend(hdr header, body []byte) error {
	if sent, err := s.sendDirect(hdr, body); sent {
		return err
	}
	// relaychain patch: the channel the send loop answers on comes from a
	// pool, and goes back only once its answer was taken, so a late answer
	// never reaches another frame's sender. Upstream gave every stream two
	// channels of its own, and a node with 10,000 relayed streams held
	// 20,000 of them.
	errCh := errChans.Get().(chan error)
	t := timerPool.Get()
	timer := t.(*time.Timer)
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	ready := &sendReady{Hdr: hdr, Body: body, Err: errCh}
	select {
	case s.sendCh <- ready:
	case <-s.shutdownCh:
		return ErrSessionShutdown
	case <-timer.C:
		return ErrConnectionWriteTimeout
	}

	// bodyCopy makes sure the send loop no longer reads the caller's body
	// once this returns early: a body not yet taken is replaced by a copy;
	// a body being written is waited for, after closing the session if the
	// write is what timed out (a connection that cannot take one frame in
	// ConnectionWriteTimeout is dead). The send loop always reports on
	// errCh for a body it took.
	// free reports whether the send loop is done with the caller's body:
	// none, or not taken yet (it then gets a copy); false means the loop is
	// writing it from the caller's buffer.
	free := func() bool {
		if body == nil {
			return true // A nil body is ignored.
		}
		ready.mu.Lock()
		defer ready.mu.Unlock()
		if ready.taken {
			return false
		}
		newBody := make([]byte, len(body))
		copy(newBody, body)
		ready.Body = newBody
		return true
	}

	select {
	case err := <-errCh:
		errChans.Put(errCh)
		return err
	case <-s.shutdownCh:
		if !free() {
			<-errCh // the closed connection fails the write
			errChans.Put(errCh)
		}
		return ErrSessionShutdown
	case <-timer.C:
		if free() {
			return ErrConnectionWriteTimeout
		}
		if s.deadlineConn == nil {
			// No write deadline to tell a dead connection from a slow
			// one: one that cannot take a frame in ConnectionWriteTimeout
			// is taken for dead.
			go s.exitErr(ErrConnectionWriteTimeout)
			<-errCh
			errChans.Put(errCh)
			return ErrConnectionWriteTimeout
		}
		// The frame is being written, with a deadline renewed as it
		// progresses (writeConn): its outcome is the write's.
		err := <-errCh
		errChans.Put(errCh)
		return err
	}
}

// errChans pools the channels of waitForSend (relaychain patch).
var errChans = sync.Pool{New: func() any { return make(chan error, 1) }}

// sendDirect writes a frame from the calling goroutine when nobody else is
// writing, which saves the hand-off to the send loop and back: two
// goroutine wake-ups per frame, the larger part of a small request's cost
// on each hop (relaychain patch). A write error, or the write deadline
// (ConnectionWriteTimeout) passing, may leave part of a frame written, so
// it ends the session. It reports false, having sent nothing, when the
// connection is busy or cannot take a deadline.
func (s *Session) sendDirect(hdr header, body []byte) (bool, error) {
	if s.deadlineConn == nil {
		return false, nil
	}
	if took, err := s.takeWrite(); !took || err != nil {
		return took, err
	}
	// The session's own iovecs, which writeSem guards, and a pooled
	// buffer for a small frame: nothing is allocated per frame, and an
	// idle session holds no buffer.
	var sp *[]byte
	if len(body) <= smallSend {
		sp = stageBufs.Get().(*[]byte)
		*sp = append(append((*sp)[:0], hdr...), body...)
		s.iov = [2][]byte{*sp}
		s.bufs = s.iov[:1]
	} else {
		s.iov = [2][]byte{hdr, body}
		s.bufs = s.iov[:]
	}
	err := s.writeConn(&s.bufs)
	s.iov = [2][]byte{} // hold no caller's body
	<-s.writeSem
	if sp != nil {
		stageBufs.Put(sp)
	}
	if err != nil {
		s.logger.Printf("[ERR] yamux: Failed to write frame: %v", err)
		go s.exitErr(err)
		return true, err
	}
	return true, nil
}

// takeWrite takes writeSem when it is free, without waiting, and reports
// whether it did; for a session that has shut down it releases it again and
// returns ErrSessionShutdown (relaychain patch).
func (s *Session) takeWrite() (bool, error) {
	select {
	case s.writeSem <- struct{}{}:
	default:
		return false, nil
	}
	if s.IsClosed() {
		<-s.writeSem
		return true, ErrSessionShutdown
	}
	return true, nil
}

// writeConn writes bufs to the connection under a write deadline. The
// caller holds writeSem.
//
// The deadline allows ConnectionWriteTimeout for every writePiece bytes
// (relaychain patch): a batch of many large frames on a slow link that
// keeps moving, down to writePiece per ConnectionWriteTimeout (17 KB/s at
// 30 s, relaychain's idle rule), is not mistaken for a dead connection,
// while the write stays one writev.
func (s *Session) writeConn(bufs *net.Buffers) error {
	if s.deadlineConn != nil {
		total := 0
		for _, b := range *bufs {
			total += len(b)
		}
		d := s.config.ConnectionWriteTimeout * time.Duration(1+total/writePiece)
		s.deadlineConn.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := bufs.WriteTo(s.conn)
	return err
}

// writePiece is the size writeConn allows ConnectionWriteTimeout for.
const writePiece = 512 << 10

// sendNoWait does a send without waiting. Since there's the expectation that
// the send happens right here, we enforce the connection write timeout if we
// can't queue the header to be sent.
func (s *Session) sendNoWait(hdr header) error {
	t := timerPool.Get()
	timer := t.(*time.Timer)
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	select {
	case s.sendCh <- &sendReady{Hdr: hdr}:
		return nil
	case <-s.shutdownCh:
		return ErrSessionShutdown
	case <-timer.C:
		return ErrConnectionWriteTimeout
	}
}

// send is a long running goroutine that sends data
func (s *Session) send() {
	err := s.sendLoop()
	s.failLater(ErrSessionShutdown)
	if err != nil {
		s.exitErr(err)
	}
}

// maxSendBatch bounds the frames one write of the send loop carries.
const maxSendBatch = 64

// stageMin is the size of the staging buffers that the send loop takes
// for a batch (and sendDirect for a small frame) from a pool, and gives
// back after the write unless the batch grew it past stageKeep (relaychain
// patch). A node with thousands of streams has hundreds of sessions: a
// fixed 64 KiB each was several MiB, and 4 KiB of each session's own
// still about 1 MiB at 10,000 streams.
const stageMin, stageKeep = 4 << 10, 64 << 10

var stageBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, stageMin)
	return &b
}}

// smallSend is the size up to which the send loop copies a header or body
// into one staging buffer instead of writing it from its own slice.
const smallSend = 2 << 10

// sendLoop writes queued frames. relaychain patch: upstream copied each
// body into a buffer and wrote the header and the body with two writes.
// This loop takes every frame already queued (up to maxSendBatch), copies
// headers and small bodies into one staging buffer, and writes the lot with
// net.Buffers: one writev on a TCP connection (one Write per buffer on
// others, such as TLS), large bodies from the caller's own slices. The
// caller waits on Err until the write is done, so its body is not reused
// meanwhile (see waitForSend); a frame of sendLater gets its Done
// callback instead. A batch takes the frame that woke the loop first, then
// sendLater's, then the rest of sendCh: frames of different streams may
// pass each other (a RST may overtake another stream's data), frames of
// one writer never do.
func (s *Session) sendLoop() error {
	defer close(s.sendDoneCh)
	var (
		batch []*sendReady
		bufs  net.Buffers
	)
	for {
		batch = batch[:0]
		select {
		case ready := <-s.sendCh:
			batch = append(batch, ready)
		case <-s.later.ch:
		case <-s.shutdownCh:
			return nil
		}
		batch = s.takeLater(batch, maxSendBatch-len(batch))
	DRAIN:
		for len(batch) < maxSendBatch {
			select {
			case r := <-s.sendCh:
				batch = append(batch, r)
			default:
				break DRAIN
			}
		}
		if len(batch) == 0 {
			continue
		}
		sp := stageBufs.Get().(*[]byte)
		stage := (*sp)[:0]
		bufs = bufs[:0]
		mark := 0 // stage[mark:] is not yet in bufs
		for _, r := range batch {
			stage = append(stage, r.Hdr...)
			r.mu.Lock()
			body := r.Body
			if len(body) <= smallSend {
				// Copied: the caller's buffer is free from here on.
				stage = append(stage, body...)
				r.Body = nil
				r.mu.Unlock()
				continue
			}
			r.taken = true
			r.mu.Unlock()
			bufs = append(bufs, stage[mark:], body)
			mark = len(stage)
		}
		if mark < len(stage) {
			bufs = append(bufs, stage[mark:])
		}
		var err error
		select {
		case s.writeSem <- struct{}{}:
			iov := bufs // WriteTo consumes its receiver
			err = s.writeConn(&iov)
			<-s.writeSem
		case <-s.shutdownCh:
			err = ErrSessionShutdown
		}
		for _, r := range batch {
			r.mu.Lock()
			r.Body = nil
			r.mu.Unlock()
			if r.Done != nil {
				r.Done(err)
			} else {
				asyncSendErr(r.Err, err)
			}
		}
		clear(batch)
		clear(bufs) // hold no caller's body
		if cap(stage) <= stageKeep {
			*sp = stage[:0]
			stageBufs.Put(sp)
		}
		if err != nil {
			s.logger.Printf("[ERR] yamux: Failed to write frames: %v", err)
			return err
		}
	}
}

// recv is a long running goroutine that accepts new data
func (s *Session) recv() {
	if err := s.recvLoop(); err != nil {
		s.exitErr(err)
	}
}

// Ensure that the index of the handler (typeData/typeWindowUpdate/etc) matches the message type
var (
	handlers = []func(*Session, header) error{
		typeData:         (*Session).handleStreamMessage,
		typeWindowUpdate: (*Session).handleStreamMessage,
		typePing:         (*Session).handlePing,
		typeGoAway:       (*Session).handleGoAway,
	}
)

// recvLoop continues to receive data until a fatal error is encountered
func (s *Session) recvLoop() error {
	defer close(s.recvDoneCh)
	defer s.flushCorks()
	hdr := header(make([]byte, headerSize))
	for {
		// relaychain patch: frames held back go out before a read that
		// may wait (cork.go).
		if len(s.cork.corked) > 0 && !s.frameBuffered() {
			s.flushCorks()
		}
		// Read the header
		if _, err := io.ReadFull(s.bufRead, hdr); err != nil {
			if err != io.EOF && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "reset by peer") {
				s.logger.Printf("[ERR] yamux: Failed to read header: %v", err)
			}
			return err
		}

		// Verify the version
		if hdr.Version() != protoVersion {
			s.logger.Printf("[ERR] yamux: Invalid protocol version: %d", hdr.Version())
			return ErrInvalidVersion
		}

		mt := hdr.MsgType()
		if mt < typeData || mt > typeGoAway {
			return ErrInvalidMsgType
		}

		if err := handlers[mt](s, hdr); err != nil {
			return err
		}
	}
}

// handleStreamMessage handles either a data or window update frame
func (s *Session) handleStreamMessage(hdr header) error {
	// Check for a new stream creation
	id := hdr.StreamID()
	flags := hdr.Flags()
	var serve *Stream // for ServeStreams' handler, once this frame is in
	if d := s.serveAfter; d != nil {
		// The data frame that followed a stream's opening window update.
		s.serveAfter = nil
		if d.id == id {
			serve = d
		} else {
			s.serveNew(d)
		}
	}
	if flags&flagSYN == flagSYN {
		st, err := s.incomingStream(id)
		if err != nil {
			return err
		}
		serve = st
		if st != nil && hdr.MsgType() == typeWindowUpdate && s.nextIsData(id) {
			// A lazily opened stream's window growth rides in a window
			// update in front of its first data (frameHeader): the
			// handler waits for that data, already here.
			s.serveAfter, serve = st, nil
		}
	}

	// Get the stream
	s.streamLock.Lock()
	stream := s.streams[id]
	s.streamLock.Unlock()

	// If we do not have a stream, likely we sent a RST
	if stream == nil {
		// Drain any data on the wire
		if hdr.MsgType() == typeData && hdr.Length() > 0 {
			s.logger.Printf("[WARN] yamux: Discarding data for stream: %d", id)
			if _, err := io.CopyN(io.Discard, s.bufRead, int64(hdr.Length())); err != nil {
				s.logger.Printf("[ERR] yamux: Failed to discard data: %v", err)
				return nil
			}
		} else {
			s.logger.Printf("[WARN] yamux: frame for missing stream: %v", hdr)
		}
		return nil
	}

	// Check if this is a window update
	if hdr.MsgType() == typeWindowUpdate {
		if err := stream.incrSendWindow(hdr, flags); err != nil {
			if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
				s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
			}
			return err
		}
		s.serveNew(serve)
		return nil
	}

	// Read the new data
	if err := stream.readData(hdr, flags, s.bufRead); err != nil {
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return err
	}
	s.serveNew(serve)
	return nil
}

// nextIsData reports whether the next frame, already read from the
// connection into bufRead, is a data frame of stream id (relaychain patch).
func (s *Session) nextIsData(id uint32) bool {
	h, ok := s.nextHeader()
	return ok && h.MsgType() == typeData && h.StreamID() == id
}

// nextHeader returns the next frame's header when it is read already, and
// of this protocol version (relaychain patch). It reads nothing.
func (s *Session) nextHeader() (header, bool) {
	if s.bufRead.Buffered() < headerSize {
		return nil, false
	}
	b, err := s.bufRead.Peek(headerSize)
	if err != nil {
		return nil, false
	}
	h := header(b)
	return h, h.Version() == protoVersion
}

// serveNew hands a new stream to ServeStreams' handler, if st is not nil
// (relaychain patch). It runs once the stream's first frame is in: with
// LazyOpen that frame is the opener's first data (a relaychain REQUEST),
// so the handler can find the request already queued.
func (s *Session) serveNew(st *Stream) {
	if st != nil {
		if !s.config.HandlerNeverWaits {
			s.flushCorks() // the handler may write, and wait
		}
		s.cork.serving.Store(st)
		(*s.acceptFn.Load())(st)
		s.cork.serving.Store(nil)
	}
}

// handlePing is invokde for a typePing frame
func (s *Session) handlePing(hdr header) error {
	flags := hdr.Flags()
	pingID := hdr.Length()

	// Check if this is a query, respond back in a separate context so we
	// don't interfere with the receiving thread blocking for the write.
	if flags&flagSYN == flagSYN {
		go func() {
			hdr := header(make([]byte, headerSize))
			hdr.encode(typePing, flagACK, 0, pingID)
			if err := s.sendNoWait(hdr); err != nil {
				s.logger.Printf("[WARN] yamux: failed to send ping reply: %v", err)
			}
		}()
		return nil
	}

	// Handle a response
	s.pingLock.Lock()
	ch := s.pings[pingID]
	if ch != nil {
		delete(s.pings, pingID)
		close(ch)
	}
	s.pingLock.Unlock()
	return nil
}

// handleGoAway is invokde for a typeGoAway frame
func (s *Session) handleGoAway(hdr header) error {
	code := hdr.Length()
	switch code {
	case goAwayNormal:
		atomic.SwapInt32(&s.remoteGoAway, 1)
	case goAwayProtoErr:
		s.logger.Printf("[ERR] yamux: received protocol error go away")
		return fmt.Errorf("yamux protocol error")
	case goAwayInternalErr:
		s.logger.Printf("[ERR] yamux: received internal error go away")
		return fmt.Errorf("remote yamux internal error")
	default:
		s.logger.Printf("[ERR] yamux: received unexpected go away")
		return fmt.Errorf("unexpected go away received")
	}
	return nil
}

// incomingStream is used to create a new incoming stream. relaychain
// patch: with a handler set by ServeStreams it returns the stream, which
// the caller hands to the handler (serveNew) once the frame is in.
func (s *Session) incomingStream(id uint32) (*Stream, error) {
	// Reject immediately if we are doing a go away
	if atomic.LoadInt32(&s.localGoAway) == 1 {
		return nil, s.sendRST(id) // relaychain patch: never waits (reset.go)
	}

	// Allocate a new stream
	stream := newStream(s, id, streamSYNReceived)

	s.streamLock.Lock()

	// Check if stream already exists
	if _, ok := s.streams[id]; ok {
		defer s.streamLock.Unlock()
		s.logger.Printf("[ERR] yamux: duplicate stream declared")
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return nil, ErrDuplicateStream
	}

	// Register the stream
	s.streams[id] = stream

	// relaychain patch: a handler set by ServeStreams gets the stream on
	// the receive loop, without a hand-off to an accepting goroutine.
	if s.acceptFn.Load() != nil {
		s.streamLock.Unlock()
		return stream, nil
	}
	defer s.streamLock.Unlock()

	// Check if we've exceeded the backlog
	select {
	case s.acceptCh <- stream:
		return nil, nil
	default:
		// Backlog exceeded! RST the stream
		s.logger.Printf("[WARN] yamux: backlog exceeded, forcing connection reset")
		delete(s.streams, id)
		return nil, s.sendRST(id) // relaychain patch: never waits (reset.go)
	}
}

// closeStream is used to close a stream once both sides have
// issued a close. If there was an in-flight SYN and the stream
// was not yet established, then this will give the credit back.
func (s *Session) closeStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: SYN tracking out of sync")
		}
		delete(s.inflight, id) // relaychain patch: upstream left it
	}
	st := s.streams[id]
	delete(s.streams, id)
	s.streamLock.Unlock()
	if st != nil {
		st.endGrowth()
	}
}

// establishStream is used to mark a stream that was in the
// SYN Sent state as established.
func (s *Session) establishStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		delete(s.inflight, id)
	} else {
		s.logger.Printf("[ERR] yamux: established stream without inflight SYN (no tracking entry)")
	}
	select {
	case <-s.synCh:
	default:
		s.logger.Printf("[ERR] yamux: established stream without inflight SYN (didn't have semaphore)")
	}
	s.streamLock.Unlock()
}
