package yamux

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestRelaychain_SendLater: on an idle connection sendLater writes at once
// and calls back before it returns; on a busy one it queues without
// waiting, and the send loop writes the frames in order and calls back;
// once the session is closed, queued frames fail and new ones fail with
// ErrSessionShutdown.
func TestRelaychain_SendLater(t *testing.T) {
	cc, sc := testConnTCP(t)
	wire, cw := rcWrap(cc, true)
	client, server := testClientServerConfig(t, cw, sc, rcConf(), rcConf())
	cs := rcOpen(t, client)
	if _, err := cs.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	ss := rcAccept(t, server)
	rcReadN(t, ss, 1)
	frame := func(b []byte) header {
		hdr := header(make([]byte, headerSize))
		hdr.encode(typeData, 0, cs.id, uint32(len(b)))
		return hdr
	}

	called := false
	client.sendLater(frame([]byte("now")), []byte("now"), func(err error) {
		if err != nil {
			t.Errorf("idle sendLater: %v", err)
		}
		called = true
	})
	if !called {
		t.Fatal("idle sendLater: no callback before it returned")
	}
	rcReadN(t, ss, 3)

	wire.closeGate()
	blocked := rcAsync(func() error { return rcQueuedWrite(cs, []byte("first")) })
	wire.waitEntered(t) // a direct write holds the connection
	const k = 10
	var want []byte
	results := make(chan error, k)
	for i := range k {
		b := rcData(3000+i*5000, int64(i)) // small (copied) and large bodies
		want = append(want, b...)
		client.sendLater(frame(b), b, func(err error) { results <- err })
	}
	select {
	case err := <-results:
		t.Fatalf("a queued frame finished (%v) while the connection was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	wire.openGate()
	if err := rcAwait(t, blocked, 10*time.Second, "the blocked write"); err != nil {
		t.Fatal(err)
	}
	for range k {
		if err := rcAwait(t, results, 10*time.Second, "queued frame"); err != nil {
			t.Fatalf("queued frame: %v", err)
		}
	}
	rcReadN(t, ss, 5)
	if got := rcReadN(t, ss, len(want)); !bytes.Equal(got, want) {
		t.Fatal("the queued frames arrived out of order or changed")
	}

	wire.closeGate()
	blocked = rcAsync(func() error { return rcQueuedWrite(cs, []byte("last")) })
	wire.waitEntered(t)
	client.sendLater(frame([]byte("lost")), []byte("lost"), func(err error) { results <- err })
	client.Close()
	wire.openGate()
	// The send loop may have taken it into a write that the close failed.
	if err := rcAwait(t, results, 10*time.Second, "frame queued at the close"); err == nil {
		t.Fatal("frame queued at the close: no error")
	}
	rcAwait(t, blocked, 10*time.Second, "the write at the close")
	client.sendLater(frame([]byte("late")), []byte("late"), func(err error) { results <- err })
	if err := rcAwait(t, results, 10*time.Second, "frame after the close"); !errors.Is(err, ErrSessionShutdown) {
		t.Fatalf("frame after the close: got %v, want ErrSessionShutdown", err)
	}
}
