//go:build linux || darwin || openbsd

package yamux

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// rcRelayAsync starts x.Relay(y, idle) and reports its end on the channel,
// and its count in *total.
func rcRelayAsync(x, y *Stream, idle time.Duration, total *int64) <-chan error {
	ch := make(chan error, 1)
	x.Relay(y, idle, func(n int64, err error) {
		*total = n
		ch <- err
	})
	return ch
}

// rcRelayRunners counts goroutines that are inside a Relay's runner.
func rcRelayRunners() int {
	return rcGoroutines([]string{""}, "yamux.(*relayRun).run", "")
}

// TestRelaychain_Relay_OrderAndCount moves a stream through a relay hop
// with Relay, in frames the receive loop passes on mixed with frames the
// runners send, and checks that the bytes arrive whole and in order with
// the end, and that Relay counts them all.
func TestRelaychain_Relay_OrderAndCount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns func(testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser)
		conf  *Config
	}{
		{"tcp", testConnTCP, rcConf()},
		{"tcp-lazy", testConnTCP, rcConf(rcLazy)},
		{"tls", testConnTLS, rcConf()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := rcHopOver(t, tc.conns, tc.conf)
			data := rcData(2<<20, 11) // 8 windows: the window must come back
			up := rcOpen(t, h.a)
			sent := rcAsync(func() error { return rcSendMixed(up, data, 5) })
			x := rcAccept(t, h.ra)
			y := rcOpen(t, h.rb)
			var total int64
			relayed := rcRelayAsync(x, y, time.Minute, &total)
			z := rcAccept(t, h.b)
			got := rcReadAll(t, z, 30*time.Second)
			if err := rcAwait(t, sent, 10*time.Second, "send"); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := rcAwait(t, relayed, 10*time.Second, "Relay"); err != nil {
				t.Fatalf("Relay: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, not the %d sent in order", len(got), len(data))
			}
			if total != int64(len(data)) {
				t.Fatalf("Relay counted %d bytes, want %d", total, len(data))
			}
			if x.relayFrom.Load() != nil || y.relayTo.Load() != nil {
				t.Fatal("the streams still point to the Relay after its end")
			}
		})
	}
}

// TestRelaychain_Relay_NoGoroutineWhileWaiting relays a stream whose
// sender is slow to start and whose receiver then stops reading: while the
// relay waits for data, and while it holds a full window for the receiver,
// no goroutine runs for it. Once the receiver reads, everything arrives.
func TestRelaychain_Relay_NoGoroutineWhileWaiting(t *testing.T) {
	const window = 256 << 10
	h := rcHopOver(t, testConnTCP, rcConf(rcWindow(window)))
	up := rcOpen(t, h.a)
	if _, err := up.Write([]byte("open")); err != nil {
		t.Fatal(err)
	}
	x := rcAccept(t, h.ra)
	rcReadN(t, x, 4)
	y := rcOpen(t, h.rb)
	var total int64
	relayed := rcRelayAsync(x, y, time.Minute, &total)
	rcEventually(t, 5*time.Second, "no runner while waiting for data", func() bool { return rcRelayRunners() == 0 })
	rcNotDone(t, relayed, 50*time.Millisecond, "Relay with nothing sent")

	data := rcData(8*window, 12)
	sent := rcAsync(func() error {
		if _, err := up.Write(data); err != nil {
			return err
		}
		return up.Close()
	})
	z := rcAccept(t, h.b)
	// The receiver's window and the relay's fill; the sender blocks.
	rcEventually(t, 10*time.Second, "the relay holds a full window", func() bool {
		x.recvLock.Lock()
		defer x.recvLock.Unlock()
		// Less the 4 bytes read, which are not worth an update.
		return x.recv.len() == window-4 && x.recvWindow == 0 && y.sendWindowNow() == 0
	})
	rcEventually(t, 5*time.Second, "no runner while the window is shut", func() bool { return rcRelayRunners() == 0 })
	rcNotDone(t, relayed, 50*time.Millisecond, "Relay of a stalled stream")

	got := rcReadAll(t, z, 30*time.Second)
	if err := rcAwait(t, sent, 10*time.Second, "send"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := rcAwait(t, relayed, 10*time.Second, "Relay"); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if !bytes.Equal(got, data) || total != int64(len(data)) {
		t.Fatalf("got %d bytes (counted %d), want the %d sent", len(got), total, len(data))
	}
}

// TestRelaychain_Relay_Idle ends a Relay that moves nothing for its idle
// time with ErrTimeout: one waiting for data, and one whose receiver
// stopped reading. A stream that keeps moving slowly is not cut.
func TestRelaychain_Relay_Idle(t *testing.T) {
	const window = 256 << 10
	const idle = 300 * time.Millisecond
	h := rcHopOver(t, testConnTCP, rcConf(rcWindow(window)))

	// Nothing sent.
	up := rcOpen(t, h.a)
	up.Write([]byte("a"))
	x := rcAccept(t, h.ra)
	rcReadN(t, x, 1)
	y := rcOpen(t, h.rb)
	rcAccept(t, h.b) // each case's stream is accepted in turn
	var total int64
	start := time.Now()
	if err := rcAwait(t, rcRelayAsync(x, y, idle, &total), 10*time.Second, "idle Relay"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("waiting for data: got %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("cut after %v, before the idle time %v", d, idle)
	}

	// A receiver that stopped reading.
	up = rcOpen(t, h.a)
	sent := rcAsync(func() error { _, err := up.Write(rcData(4*window, 13)); return err })
	x = rcAccept(t, h.ra)
	y = rcOpen(t, h.rb)
	rcAccept(t, h.b)
	if err := rcAwait(t, rcRelayAsync(x, y, idle, &total), 10*time.Second, "stalled Relay"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("stalled receiver: got %v, want ErrTimeout", err)
	}
	x.Reset()
	up.Reset()
	rcAwait(t, sent, 10*time.Second, "stalled send")

	// A slow sender: a frame every idle/3.
	up = rcOpen(t, h.a)
	sent = rcAsync(func() error {
		for range 6 {
			if _, err := up.Write([]byte("tick")); err != nil {
				return err
			}
			time.Sleep(idle / 3)
		}
		return up.Close()
	})
	x = rcAccept(t, h.ra)
	y = rcOpen(t, h.rb)
	relayed := rcRelayAsync(x, y, idle, &total)
	z := rcAccept(t, h.b)
	if got := rcReadAll(t, z, 10*time.Second); string(got) != "ticktickticktickticktick" {
		t.Fatalf("slow stream: got %q", got)
	}
	if err := rcAwait(t, relayed, 10*time.Second, "slow Relay"); err != nil {
		t.Fatalf("slow stream: %v", err)
	}
	rcAwait(t, sent, 10*time.Second, "slow send")
}

// TestRelaychain_Relay_Resets ends a Relay when its source is reset
// (ErrConnectionReset), when its destination is reset while it waits for
// data, and when the source's session closes.
func TestRelaychain_Relay_Resets(t *testing.T) {
	h := rcHopOver(t, testConnTCP, rcConf())
	start := func() (up, x, y *Stream, relayed <-chan error) {
		up = rcOpen(t, h.a)
		up.Write([]byte("a"))
		x = rcAccept(t, h.ra)
		rcReadN(t, x, 1)
		y = rcOpen(t, h.rb)
		y.Write([]byte("b"))
		rcReadN(t, rcAccept(t, h.b), 1)
		var total int64
		return up, x, y, rcRelayAsync(x, y, time.Minute, &total)
	}

	up, _, _, relayed := start()
	rcNotDone(t, relayed, 20*time.Millisecond, "Relay")
	up.Reset()
	if err := rcAwait(t, relayed, 5*time.Second, "Relay of a reset source"); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("source reset: got %v, want ErrConnectionReset", err)
	}

	_, _, y, relayed := start()
	y.Reset()
	if err := rcAwait(t, relayed, 5*time.Second, "Relay to a reset destination"); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("destination reset: got %v, want ErrConnectionReset", err)
	}

	_, _, _, relayed = start()
	h.ra.Close()
	if err := rcAwait(t, relayed, 5*time.Second, "Relay of a closed session"); err == nil {
		t.Fatal("source session closed: Relay ended cleanly")
	}
}

// TestRelaychain_Relay_BusyLink relays many streams into one session whose
// connection is held: the runners queue their frames (sendLater) and end,
// rather than each waiting for the connection. Once it is free, every
// stream arrives whole.
func TestRelaychain_Relay_BusyLink(t *testing.T) {
	const streams = 20
	c1, s1 := testConnTCP(t)
	a, ra := testClientServerConfig(t, c1, s1, rcConf(), rcConf())
	c2, s2 := testConnTCP(t)
	wire, w2 := rcWrap(c2, true)
	// Lazy: opening a stream sends nothing through the held connection.
	rb, b := testClientServerConfig(t, w2, s2, rcConf(rcLazy), rcConf(rcLazy))

	wire.closeGate()
	hold := rcOpen(t, rb)
	blocked := rcAsync(func() error { return rcQueuedWrite(hold, []byte("hold")) })
	wire.waitEntered(t)

	datas := make([][]byte, streams)
	relayed := make([]<-chan error, streams)
	totals := make([]int64, streams)
	xs := make([]*Stream, streams)
	for i := range streams {
		datas[i] = rcData(100<<10, int64(i))
		up := rcOpen(t, a)
		go func() {
			up.Write(datas[i])
			up.Close()
		}()
		x := rcAccept(t, ra)
		y := rcOpen(t, rb)
		xs[i] = x
		relayed[i] = rcRelayAsync(x, y, time.Minute, &totals[i])
	}
	rcEventually(t, 10*time.Second, "a frame of every stream queued for the held connection", func() bool {
		for _, x := range xs {
			if r := x.relayFrom.Load(); r == nil || !r.inflight.Load() {
				return false
			}
		}
		return true
	})
	if n := rcRelayRunners(); n != 0 {
		t.Fatalf("%d runners wait for the held connection", n)
	}
	wire.openGate()
	if err := rcAwait(t, blocked, 10*time.Second, "the held write"); err != nil {
		t.Fatal(err)
	}
	rcAccept(t, b) // hold's stream
	for i := range streams {
		z := rcAccept(t, b)
		got := rcReadAll(t, z, 30*time.Second)
		var want []byte
		for j := range streams {
			if bytes.Equal(got, datas[j]) {
				want = datas[j]
			}
		}
		if want == nil {
			t.Fatalf("stream %d: %d bytes, not one of the streams sent", i, len(got))
		}
	}
	for i := range streams {
		if err := rcAwait(t, relayed[i], 10*time.Second, "Relay"); err != nil || totals[i] != int64(len(datas[i])) {
			t.Fatalf("Relay %d: %v, %d bytes", i, err, totals[i])
		}
	}
}

// TestRelaychain_Relay_DestinationSessionEnds ends a Relay with an error,
// at once rather than at its idle time, when the destination's session
// ends: while the Relay waits for data, and when the source's FIN comes
// after the end (the FIN could not go on, so the end is not clean).
func TestRelaychain_Relay_DestinationSessionEnds(t *testing.T) {
	for _, finAfter := range []bool{false, true} {
		h := rcHopOver(t, testConnTCP, rcConf())
		up := rcOpen(t, h.a)
		up.Write([]byte("a"))
		x := rcAccept(t, h.ra)
		rcReadN(t, x, 1)
		y := rcOpen(t, h.rb)
		var total int64
		start := time.Now()
		relayed := rcRelayAsync(x, y, time.Minute, &total)
		h.rb.Close()
		if finAfter {
			up.Close()
		}
		err := rcAwait(t, relayed, 5*time.Second, "Relay to a closed session")
		if err == nil {
			t.Fatalf("finAfter=%v: the Relay ended cleanly", finAfter)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("finAfter=%v: ended after %v (%v), not at once", finAfter, d, err)
		}
	}
}

// TestRelaychain_Relay_ConfigGo relays a stream through a hop whose
// sessions have Config.Go set: the Relay's runners start through it, and
// the bytes still arrive whole and in order.
func TestRelaychain_Relay_ConfigGo(t *testing.T) {
	var started atomic.Int64
	conf := rcConf(func(c *Config) {
		c.Go = func(f func()) {
			started.Add(1)
			go f()
		}
	})
	h := rcHopOver(t, testConnTCP, conf)
	data := rcData(2<<20, 12)
	up := rcOpen(t, h.a)
	sent := rcAsync(func() error { return rcSendMixed(up, data, 6) })
	x := rcAccept(t, h.ra)
	y := rcOpen(t, h.rb)
	var total int64
	relayed := rcRelayAsync(x, y, time.Minute, &total)
	got := rcReadAll(t, rcAccept(t, h.b), 30*time.Second)
	if err := rcAwait(t, sent, 10*time.Second, "send"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := rcAwait(t, relayed, 10*time.Second, "Relay"); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if !bytes.Equal(got, data) || total != int64(len(data)) {
		t.Fatalf("got %d bytes (Relay counted %d), want the %d sent, in order", len(got), total, len(data))
	}
	if started.Load() == 0 {
		t.Fatal("no runner started through Config.Go")
	}
}
