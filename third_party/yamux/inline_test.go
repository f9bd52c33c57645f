package yamux

import (
	"errors"
	"io"
	"testing"
	"time"
)

// handled is what a ServeStreams handler saw of a new stream.
type handled struct {
	st       *Stream
	buffered int
	fin      bool
}

// serveInto serves server's streams into a channel, recording what each
// stream held when the handler got it. It returns once the handler is set:
// a stream that arrives before that is queued at its SYN and handed over
// by ServeStreams' own goroutine, before its first frame is in.
func serveInto(t *testing.T, server *Session) <-chan handled {
	ch := make(chan handled, 16)
	go server.ServeStreams(func(st *Stream) {
		ch <- handled{st: st, buffered: st.Buffered(), fin: st.FinReceived()}
	})
	rcEventually(t, 5*time.Second, "the handler set", func() bool { return server.acceptFn.Load() != nil })
	return ch
}

func nextHandled(t *testing.T, ch <-chan handled) handled {
	t.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no stream reached the handler")
	}
	return handled{}
}

// lazyPair returns a client and a server session over TCP with LazyOpen, the
// client's streams opening with a window above the initial one, so that a
// window update goes in front of each stream's first data.
func lazyPair(t *testing.T) (*Session, *Session) {
	conf := testConf()
	conf.LazyOpen = true
	cconf := conf.Clone()
	cconf.MaxStreamWindowSize = 1 << 20
	cc, sc := testConnTCP(t)
	return testClientServerConfig(t, cc, sc, cconf, conf)
}

// TestRelaychain_ServeStreamsFirstFrame: the handler gets a new stream once
// its first frame is in, even when a window update opens the stream in
// front of the data: the request and a FIN sent with it are there.
func TestRelaychain_ServeStreamsFirstFrame(t *testing.T) {
	client, server := lazyPair(t)
	ch := serveInto(t, server)

	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteClose([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if h := nextHandled(t, ch); h.buffered != len("request") || !h.fin {
		t.Errorf("handler saw %d bytes queued, FIN %v; want %d and the FIN", h.buffered, h.fin, len("request"))
	}

	// A stream that only opens and closes still reaches the handler.
	st, err = client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if h := nextHandled(t, ch); h.buffered != 0 || !h.fin {
		t.Errorf("empty stream: handler saw %d bytes, FIN %v; want 0 and the FIN", h.buffered, h.fin)
	}
}

// TestRelaychain_TryOpenStream: with AcceptBacklog streams waiting for the
// peer's ACK, TryOpenStream returns ErrWouldBlock instead of waiting, and a
// reset of an unsent stream gives its place back; without LazyOpen it
// never opens.
func TestRelaychain_TryOpenStream(t *testing.T) {
	conf := testConf()
	conf.LazyOpen = true
	conf.AcceptBacklog = 2
	cc, sc := testConnTCP(t)
	client, _ := testClientServerConfig(t, cc, sc, conf, conf.Clone())
	a, err := client.TryOpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.TryOpenStream(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.TryOpenStream(); err != ErrWouldBlock {
		t.Fatalf("third open: got %v, want ErrWouldBlock", err)
	}
	a.Reset()
	if _, err := client.TryOpenStream(); err != nil {
		t.Fatalf("open after a reset: %v", err)
	}

	eager, _ := testClientServer(t)
	if _, err := eager.TryOpenStream(); err != ErrWouldBlock {
		t.Fatalf("without LazyOpen: got %v, want ErrWouldBlock", err)
	}
}

// TestRelaychain_PeekSendNoWait: Peek shows the queued bytes without taking
// them; SendNoWait sends one frame with the FIN, and sends nothing when the
// window is too small, over TLS, or on a stream closed for writing.
func TestRelaychain_PeekSendNoWait(t *testing.T) {
	client, server := lazyPair(t)
	ch := serveInto(t, server)
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	h := nextHandled(t, ch)
	b := make([]byte, 64)
	if k := h.st.Peek(b); string(b[:k]) != "request" {
		t.Fatalf("Peek: got %q", b[:k])
	}
	if k := h.st.Buffered(); k != len("request") {
		t.Fatalf("after Peek: %d bytes queued, want %d", k, len("request"))
	}
	if k, _ := h.st.Read(b); string(b[:k]) != "request" {
		t.Fatalf("Read after Peek: got %q", b[:k])
	}

	big := make([]byte, 1<<20+1) // above the 1 MiB the client granted
	if err := h.st.SendNoWait(big, true); err != ErrWouldBlock {
		t.Fatalf("frame above the window: got %v, want ErrWouldBlock", err)
	}
	if err := h.st.SendNoWait([]byte("answer"), true); err != nil {
		t.Fatalf("SendNoWait: %v", err)
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "answer" {
		t.Fatalf("client read %q, %v; want the answer, then EOF", got, err)
	}
	if err := h.st.SendNoWait([]byte("more"), false); err != ErrStreamClosed {
		t.Fatalf("after the FIN: got %v, want ErrStreamClosed", err)
	}

	// TLS: no descriptor to write without waiting. rcConf's write timeout:
	// the first write does the handshake, which under load took longer
	// than testConf's 250 ms.
	cc, sc := testConnTLS(t)
	tc, _ := testClientServerConfig(t, cc, sc, rcConf(), rcConf())
	tst, err := tc.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := tst.SendNoWait([]byte("x"), false); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("over TLS: got %v, want ErrWouldBlock", err)
	}
	if _, err := tst.Write([]byte("x")); err != nil {
		t.Fatalf("Write after a refused SendNoWait: %v", err)
	}
}
