package yamux

import (
	"errors"
	"testing"
	"time"
)

// rcPair returns a client and a server session over TCP with conf.
func rcPair(t *testing.T, conf *Config) (*Session, *Session) {
	c, s := testConnTCP(t)
	return testClientServerConfig(t, c, s, conf, conf)
}

// rcWantReset reads st, which must fail with ErrConnectionReset (not a
// timeout) within 5s.
func rcWantReset(t *testing.T, st *Stream, who string) {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [16]byte
	for {
		n, err := st.Read(b[:])
		if n > 0 {
			continue // what was queued before the reset
		}
		if !errors.Is(err, ErrConnectionReset) {
			t.Fatalf("%s: read got %v, want ErrConnectionReset", who, err)
		}
		return
	}
}

// TestRelaychain_Reset resets a stream: both sides' reads and writes fail
// with ErrConnectionReset and both sessions forget the stream, and only
// the peer's stream says it was reset by its peer (ResetByPeer); a stream
// opened lazily and reset before it sent anything never reaches the peer.
func TestRelaychain_Reset(t *testing.T) {
	a, b := rcPair(t, rcConf())
	st := rcOpen(t, a)
	if _, err := st.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	peer := rcAccept(t, b)
	rcReadN(t, peer, 1)
	if err := st.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	rcWantReset(t, peer, "peer")
	if _, err := peer.Write([]byte("y")); !errors.Is(err, ErrConnectionReset) {
		t.Errorf("peer write after the reset: got %v, want ErrConnectionReset", err)
	}
	rcWantReset(t, st, "resetting side")
	if _, err := st.Write([]byte("y")); !errors.Is(err, ErrConnectionReset) {
		t.Errorf("write after Reset: got %v, want ErrConnectionReset", err)
	}
	if !peer.ResetByPeer() || st.ResetByPeer() {
		t.Errorf("ResetByPeer: peer %v, resetting side %v; want true, false", peer.ResetByPeer(), st.ResetByPeer())
	}
	rcEventually(t, 5*time.Second, "both sessions forget the stream", func() bool {
		return a.NumStreams() == 0 && b.NumStreams() == 0
	})
	if err := st.Reset(); err != nil {
		t.Errorf("second Reset: %v", err)
	}

	// LazyOpen: reset before the first write sends nothing, so the next
	// stream is the first the peer sees.
	la, lb := rcPair(t, rcConf(rcLazy))
	unsent := rcOpen(t, la)
	if err := unsent.Reset(); err != nil {
		t.Fatalf("Reset of an unsent stream: %v", err)
	}
	next := rcOpen(t, la)
	if _, err := next.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := rcAccept(t, lb); got.StreamID() != next.StreamID() {
		t.Errorf("the peer accepted stream %d, want %d (the reset one was never sent)", got.StreamID(), next.StreamID())
	}
}

// TestRelaychain_ResetWith passes a client's reset on through a relay hop
// with nothing reading the relay's stream from the client: the receive
// loop resets the next hop's stream, whose far end sees the reset. It does
// so too when the reset came before ResetWith was set.
func TestRelaychain_ResetWith(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := "set-before"
		if late {
			name = "reset-first"
		}
		t.Run(name, func(t *testing.T) {
			a, ra := rcPair(t, rcConf())
			rb, b := rcPair(t, rcConf())
			up := rcOpen(t, a)
			if _, err := up.WriteClose([]byte("req")); err != nil {
				t.Fatal(err)
			}
			x := rcAccept(t, ra)
			rcReadN(t, x, 3)
			rcEventually(t, 5*time.Second, "the client's FIN", x.PeerClosed)
			y := rcOpen(t, rb)
			if _, err := y.Write([]byte("req")); err != nil {
				t.Fatal(err)
			}
			z := rcAccept(t, b)
			rcReadN(t, z, 3)
			if late {
				up.Reset()
				rcEventually(t, 5*time.Second, "the reset at the relay", func() bool {
					return x.writable() != nil
				})
			}
			x.ResetWith(y)
			if !late {
				up.Reset()
			}
			rcWantReset(t, z, "next hop")
			rcEventually(t, 5*time.Second, "the relay forgets both streams", func() bool {
				return ra.NumStreams() == 0 && rb.NumStreams() == 0
			})
		})
	}
}

// TestRelaychain_PeerClosed: true only once the peer's FIN came and every
// byte before it was read.
func TestRelaychain_PeerClosed(t *testing.T) {
	a, b := rcPair(t, rcConf())
	open := rcOpen(t, a)
	if _, err := open.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	peer := rcAccept(t, b)
	rcReadN(t, peer, 1)
	if peer.PeerClosed() {
		t.Fatal("PeerClosed before any FIN")
	}
	done := rcOpen(t, a)
	if _, err := done.WriteClose([]byte("bc")); err != nil {
		t.Fatal(err)
	}
	peer2 := rcAccept(t, b)
	rcEventually(t, 5*time.Second, "both bytes queued", func() bool { return peer2.Buffered() == 2 })
	rcEventually(t, 5*time.Second, "the FIN processed", func() bool {
		peer2.stateLock.Lock()
		defer peer2.stateLock.Unlock()
		return peer2.state == streamRemoteClose
	})
	if peer2.PeerClosed() {
		t.Fatal("PeerClosed with 2 bytes unread")
	}
	rcReadN(t, peer2, 2)
	if !peer2.PeerClosed() {
		t.Fatal("PeerClosed false after the FIN and every byte were read")
	}
	open.Reset()
	rcEventually(t, 5*time.Second, "the reset", func() bool { return peer.writable() != nil })
	if peer.PeerClosed() {
		t.Error("PeerClosed true for a reset stream")
	}
}

// TestRelaychain_FinAfterLocalReset: a FIN that the receive loop handles
// for a stream this side reset meanwhile (the RST and the FIN crossed) is
// not a protocol error: the session and its other streams go on.
func TestRelaychain_FinAfterLocalReset(t *testing.T) {
	client, _ := testClientServer(t)
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteClose([]byte("request")); err != nil {
		t.Fatal(err)
	}
	st.Reset()
	// What the receive loop does with the peer's FIN when it found the
	// stream just before the reset took it out of the session.
	if err := st.processFlags(flagFIN); err != nil {
		t.Fatalf("FIN after a local reset: %v, want it ignored", err)
	}
	if client.IsClosed() {
		t.Fatal("the session closed")
	}
}
