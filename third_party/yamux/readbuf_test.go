//go:build linux || darwin || openbsd

package yamux

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rcSockPair returns a sockReader over one end of a TCP connection and the
// other end, which the test writes.
func rcSockPair(t testing.TB) (*sockReader, net.Conn, net.Conn) {
	c, p := testConnTCP(t)
	rc := rawConnOf(c)
	if rc == nil {
		t.Fatal("no raw connection under a TCP connection")
	}
	fr, ok := newFrameReader(c, rc).(*sockReader)
	if !ok {
		t.Fatal("newFrameReader over a bare socket did not return a sockReader")
	}
	return fr, c.(net.Conn), p.(net.Conn)
}

// rcWriteAndSettle writes b to p and waits until the reader's socket has
// all of it (a loopback write is there once Write returns, but give it a
// moment on a loaded machine).
func rcWriteAndSettle(t testing.TB, p net.Conn, b []byte) {
	t.Helper()
	if _, err := p.Write(b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
}

// TestRelaychain_SockReader_FillPeekRelease checks the buffer's life: a
// small read fills it with all the socket has, Peek and Buffered see it
// without reading, and once it is consumed the buffer goes back to the
// pool, so an idle session holds none.
func TestRelaychain_SockReader_FillPeekRelease(t *testing.T) {
	r, _, p := rcSockPair(t)
	if r.Buffered() != 0 || r.buf != nil {
		t.Fatal("a new reader holds a buffer")
	}
	if _, err := r.Peek(1); !errors.Is(err, bufio.ErrBufferFull) {
		t.Fatalf("Peek with nothing buffered: %v, want ErrBufferFull", err)
	}
	data := append(frame(typeData, 0, 1, 3, []byte("abc")), frame(typeWindowUpdate, 0, 3, 9, nil)...)
	rcWriteAndSettle(t, p, data)

	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatal(err)
	}
	if got := r.Buffered(); got != len(data)-headerSize {
		t.Fatalf("buffered %d after the first header, want the rest, %d", got, len(data)-headerSize)
	}
	if b, err := r.Peek(3); err != nil || string(b) != "abc" {
		t.Fatalf("Peek(3) = %q, %v", b, err)
	}
	if _, err := r.Peek(r.Buffered() + 1); !errors.Is(err, bufio.ErrBufferFull) {
		t.Fatalf("Peek past what is buffered: %v, want ErrBufferFull", err)
	}
	rest := make([]byte, r.Buffered())
	if _, err := io.ReadFull(r, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(hdr, rest...), data) {
		t.Fatal("read back other bytes than written")
	}
	if r.buf != nil || r.Buffered() != 0 {
		t.Fatal("the buffer is held after all of it was read")
	}
}

// TestRelaychain_SockReader_FillAllocatesNothing checks that a read of the
// socket, which the receive loop makes for every batch of frames, costs
// no allocation: fill's callback is made once per reader, and the buffer
// comes from a pool.
func TestRelaychain_SockReader_FillAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops buffers at random, and new ones are allocated")
	}
	r, _, p := rcSockPair(t)
	msg := []byte("0123456789abcdef")
	got := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := p.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read of the socket, want 0", allocs)
	}
	if !bytes.Equal(got, msg) || r.buf != nil {
		t.Fatalf("read %q, buffer held %v", got, r.buf != nil)
	}
}

// TestRelaychain_SockReader_LargeReadsDirect checks that a large read
// with nothing buffered goes straight to the caller, and that the fill
// after it takes at most directMin, so that bulk bodies are copied once.
func TestRelaychain_SockReader_LargeReadsDirect(t *testing.T) {
	r, _, p := rcSockPair(t)
	data := rcData(40<<10, 1)
	rcWriteAndSettle(t, p, data)

	big := make([]byte, 20<<10)
	n, err := r.Read(big)
	if err != nil || n == 0 {
		t.Fatalf("large read: %d, %v", n, err)
	}
	if r.buf != nil || !r.bulk {
		t.Fatal("a large read with nothing buffered went through the buffer")
	}
	got := append([]byte(nil), big[:n]...)
	small := make([]byte, headerSize)
	if _, err := io.ReadFull(r, small); err != nil {
		t.Fatal(err)
	}
	if b := r.Buffered(); b > directMin-headerSize {
		t.Fatalf("the fill after a large read took %d bytes, want at most %d", b+headerSize, directMin)
	}
	got = append(got, small...)
	rest, err := io.ReadAll(io.LimitReader(r, int64(len(data)-len(got))))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, rest...), data) {
		t.Fatal("read back other bytes than written")
	}
}

// TestRelaychain_SockReader_EndAndClose checks the errors the receive loop
// sees: io.EOF at the peer's close, and at a local close an error that
// says "closed" (which recvLoop does not log).
func TestRelaychain_SockReader_EndAndClose(t *testing.T) {
	r, _, p := rcSockPair(t)
	rcWriteAndSettle(t, p, []byte("xy"))
	p.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "xy" {
		t.Fatalf("read to the peer's close: %q, %v; want \"xy\" and EOF", b, err)
	}
	if r.buf != nil {
		t.Fatal("a buffer is held after EOF")
	}

	r2, c2, _ := rcSockPair(t)
	done := rcAsync(func() error {
		_, err := r2.Read(make([]byte, 1))
		return err
	})
	rcNotDone(t, done, 50*time.Millisecond, "a read with nothing to read")
	c2.Close()
	err = rcAwait(t, done, 10*time.Second, "a read at the local close")
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("read at the local close: %v, want an error that says closed", err)
	}
	if r2.buf != nil {
		t.Fatal("a buffer is held by a read that failed")
	}
}

// TestRelaychain_SockReader_IdleSessionHoldsNone moves a stream over
// TCP and checks that both sessions' receive loops then wait in
// sockReader.fill, which they enter only with nothing buffered and which
// holds no buffer while the socket has nothing to read.
func TestRelaychain_SockReader_IdleSessionHoldsNone(t *testing.T) {
	c, s := testConnTCP(t)
	client, server := testClientServerConfig(t, c, s, rcConf(), rcConf())
	for _, sess := range []*Session{client, server} {
		if _, ok := sess.bufRead.(*sockReader); !ok {
			t.Fatalf("a session over TCP reads with %T, want a sockReader", sess.bufRead)
		}
	}
	up := rcOpen(t, client)
	data := rcData(300<<10, 2)
	sent := rcAsync(func() error {
		_, err := up.WriteClose(data)
		return err
	})
	down := rcAccept(t, server)
	if got := rcReadAll(t, down, 10*time.Second); !bytes.Equal(got, data) {
		t.Fatal("the stream's bytes differ")
	}
	if err := rcAwait(t, sent, 10*time.Second, "write"); err != nil {
		t.Fatal(err)
	}
	rcEventually(t, 5*time.Second, "both receive loops waiting in fill", func() bool {
		return rcGoroutines([]string{"IO wait"}, "(*sockReader).fill", "") >= 2
	})
}

// FuzzSessionRecvSocket is FuzzSessionRecv over a socket, whose
// session reads with a sockReader (readbuf.go) and may pass frames on.
// The peer writes the input and closes its side; what the session writes
// back is drained.
func FuzzSessionRecvSocket(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		c, peer := rcSocketPair(t)
		go io.Copy(io.Discard, peer)
		go func() {
			peer.Write(data[1:])
			peer.CloseWrite()
		}()
		fuzzSessionRecv(t, c, data[0]&1 == 1)
	})
}

// rcSocketPair returns the two ends of a Unix stream socket pair: a bare
// socket, as a TCP connection is to the session, and cheaper to make.
func rcSocketPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}
