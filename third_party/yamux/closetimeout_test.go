package yamux

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// rcCloseTimeoutPair returns a client and server session whose close
// timeout is d, and a stream the client opened and closed after writing a
// request, as a relaychain client does, with the server's end of it.
func rcCloseTimeoutPair(t *testing.T, d time.Duration) (*Session, *Stream, *Stream) {
	t.Helper()
	conf := testConf()
	conf.StreamCloseTimeout = d
	clientConn, serverConn := testConnTLS(t)
	client, server := testClientServerConfig(t, clientConn, serverConn, conf, conf.Clone())
	cs, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.WriteClose([]byte("request")); err != nil {
		t.Fatal(err)
	}
	ss, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(ss); err != nil || string(b) != "request" {
		t.Fatalf("server read %q, %v", b, err)
	}
	return client, cs, ss
}

// rcWaitNoStreams waits up to 2s for sess to hold no stream.
func rcWaitNoStreams(t *testing.T, sess *Session) {
	t.Helper()
	for end := time.Now().Add(2 * time.Second); sess.NumStreams() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d streams left after 2s", sess.NumStreams())
		}
	}
}

// TestRelaychain_CloseTimeoutFromLastFrame checks that the close timeout
// cuts off a peer that goes silent after this side's close, and a stream
// whose reader stopped, but neither an answer that keeps arriving for
// longer than the timeout nor one that a slow reader keeps taking
// (relaychain patch, closeTimeout).
func TestRelaychain_CloseTimeoutFromLastFrame(t *testing.T) {
	const timeout = 100 * time.Millisecond

	t.Run("answer still arriving", func(t *testing.T) {
		_, cs, ss := rcCloseTimeoutPair(t, timeout)
		part := bytes.Repeat([]byte("a"), 1024)
		go func() {
			// 10 frames over 4 close timeouts, then the FIN.
			for range 10 {
				if _, err := ss.Write(part); err != nil {
					return
				}
				time.Sleep(timeout * 4 / 10)
			}
			ss.Close()
		}()
		b, err := io.ReadAll(cs)
		if err != nil || len(b) != 10*len(part) {
			t.Fatalf("read %d bytes, %v; want %d and the end", len(b), err, 10*len(part))
		}
	})

	t.Run("slow reader", func(t *testing.T) {
		// The peer sent all it has at once and waits for the reader,
		// which takes a little every half timeout, for 4 timeouts.
		_, cs, ss := rcCloseTimeoutPair(t, timeout)
		data := bytes.Repeat([]byte("b"), 64<<10)
		read := make(chan struct{})
		go func() {
			if _, err := ss.Write(data); err != nil {
				return
			}
			<-read
			ss.Close()
		}()
		got := make([]byte, len(data))
		step := len(data) / 8
		for i := 0; i < len(data); i += step {
			time.Sleep(timeout / 2)
			if _, err := io.ReadFull(cs, got[i:i+step]); err != nil {
				t.Fatalf("read at %d: %v", i, err)
			}
		}
		close(read)
		if rest, err := io.ReadAll(cs); err != nil || len(rest) != 0 || !bytes.Equal(got, data) {
			t.Fatalf("after the data: %d bytes, %v; want the end", len(rest), err)
		}
	})

	t.Run("reader walked away", func(t *testing.T) {
		// Data queued that nobody reads, from a peer that never closes:
		// the stream must not be held forever.
		client, cs, ss := rcCloseTimeoutPair(t, timeout)
		if _, err := ss.Write(bytes.Repeat([]byte("c"), 4<<10)); err != nil {
			t.Fatal(err)
		}
		rcWaitNoStreams(t, client)
		if _, err := io.ReadAll(cs); !errors.Is(err, ErrTimeout) {
			t.Fatalf("read after the cut: %v, want ErrTimeout after the queued bytes", err)
		}
	})

	t.Run("silent peer", func(t *testing.T) {
		start := time.Now() // before the close, which starts the time
		client, cs, _ := rcCloseTimeoutPair(t, timeout)
		cs.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := cs.Read(make([]byte, 1))
		took := time.Since(start)
		if !errors.Is(err, ErrTimeout) || took < timeout || took > 4*time.Second {
			t.Fatalf("read from a silent peer: %v after %s; want ErrTimeout after about %s", err, took, timeout)
		}
		rcWaitNoStreams(t, client) // it leaves the map just after the cut
	})
}
