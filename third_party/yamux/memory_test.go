//go:build linux || darwin || openbsd

package yamux

import (
	"errors"
	"testing"
	"time"
	"unsafe"
)

// Tests of what a relayed stream holds (relaychain patch): a relay with
// 10,000 stalled streams is bounded by 50 MiB plus a window per stream, so
// the rest of each stream counts.

// A relay holds two streams per request: the struct must stay in the
// 352-byte allocation class it was packed into (stream.go, growth.go).
func TestRelaychain_StreamSize(t *testing.T) {
	if n := unsafe.Sizeof(Stream{}); n > 352 {
		t.Fatalf("Stream is %d bytes, over the 352-byte class: keep the fields packed", n)
	}
}

// A relayed stream makes no wake-up channel: Relay never waits on one.
// Only a stream that a Read or Write waited on has one (notify.go).
func TestRelaychain_NotifierMadeAtFirstWait(t *testing.T) {
	h := rcHopOver(t, testConnTCP, rcConf())
	up := rcOpen(t, h.a)
	data := rcData(1<<20, 21)
	sent := rcAsync(func() error {
		if _, err := up.Write(data); err != nil {
			return err
		}
		return up.Close()
	})
	x := rcAccept(t, h.ra)
	y := rcOpen(t, h.rb)
	var total int64
	relayed := rcRelayAsync(x, y, time.Minute, &total)
	z := rcAccept(t, h.b)
	if got := rcReadAll(t, z, 30*time.Second); len(got) != len(data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
	if err := rcAwait(t, relayed, 10*time.Second, "Relay"); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	rcAwait(t, sent, 10*time.Second, "send")
	for name, n := range map[string]*notifier{
		"x.recvNotify": &x.recvNotify, "x.sendNotify": &x.sendNotify,
		"y.recvNotify": &y.recvNotify, "y.sendNotify": &y.sendNotify,
	} {
		if n.ch.Load() != nil {
			t.Errorf("%s: a channel was made for a relayed stream", name)
		}
	}

	// A stream's channel is made by the first Read that waits.
	w := rcOpen(t, h.a) // not lazy: the SYN goes at once, with no data
	r := rcAccept(t, h.ra)
	if r.recvNotify.ch.Load() != nil {
		t.Fatal("a channel was made before any Read")
	}
	read := rcAsync(func() error { _, err := r.Read(make([]byte, 1)); return err })
	rcEventually(t, 5*time.Second, "the waiting Read's channel", func() bool { return r.recvNotify.ch.Load() != nil })
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := rcAwait(t, read, 10*time.Second, "the waiting Read"); err != nil {
		t.Fatalf("the waiting Read: %v", err)
	}
}

// A frame that arrives for a Relay whose destination's window is shut
// starts no runner: it waits, with its arrival noted for window growth,
// until the destination's window update moves it (kickData).
func TestRelaychain_Relay_NoRunnerForShutWindow(t *testing.T) {
	const window = 256 << 10
	b := NewWindowBudget(4<<20, 64<<20)
	conf := rcConf(rcWindow(window))
	conf.WindowGrowth = b
	h := rcHopOver(t, testConnTCP, conf)
	up := rcOpen(t, h.a)
	// The first window fills the receiver's; then one small frame more.
	sent := rcAsync(func() error {
		if _, err := up.Write(rcData(window, 22)); err != nil {
			return err
		}
		return nil
	})
	x := rcAccept(t, h.ra)
	y := rcOpen(t, h.rb)
	var total int64
	relayed := rcRelayAsync(x, y, time.Minute, &total)
	z := rcAccept(t, h.b)
	rcEventually(t, 10*time.Second, "the receiver's window is full", func() bool {
		return y.sendWindowNow() == 0 && !x.relayFrom.Load().inflight.Load()
	})
	// The receiver's ACK is in: nothing more comes from it that would
	// start a runner (it does not read).
	rcEventually(t, 10*time.Second, "the receiver's ACK", func() bool { return rcState(y) == streamEstablished })
	if err := rcAwait(t, sent, 10*time.Second, "send"); err != nil {
		t.Fatal(err)
	}
	r := x.relayFrom.Load()
	rcEventually(t, 5*time.Second, "no runner", func() bool { return r.pending.Load() == 0 })
	if _, err := up.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	rcEventually(t, 10*time.Second, "the late frame queued", func() bool {
		x.recvLock.Lock()
		defer x.recvLock.Unlock()
		return x.recv.len() == 4
	})
	if r.queuedAt.Load() == 0 || r.pending.Load() != 0 {
		t.Fatalf("a runner started for a frame it could not move (queuedAt %d, pending %d)", r.queuedAt.Load(), r.pending.Load())
	}
	up.Close()
	got := rcReadAll(t, z, 30*time.Second)
	if len(got) != window+4 || string(got[window:]) != "late" {
		t.Fatalf("got %d bytes, want the %d sent with the late frame last", len(got), window+4)
	}
	if err := rcAwait(t, relayed, 10*time.Second, "Relay"); err != nil {
		t.Fatalf("Relay: %v", err)
	}
}

// A Relay whose idle rule is no longer than StreamCloseTimeout holds its
// source's close timer, which could never cut first, and arms it again
// when it ends on a stream that still waits for the peer's FIN
// (holdCloseTimer).
func TestRelaychain_Relay_HoldsCloseTimer(t *testing.T) {
	conf := rcConf()
	conf.StreamCloseTimeout = time.Minute
	h := rcHopOver(t, testConnTCP, conf)
	up := rcOpen(t, h.a)
	up.Write([]byte("a"))
	x := rcAccept(t, h.ra)
	rcReadN(t, x, 1)
	x.Close() // the relay's FIN, as with a request: the timer starts
	x.stateLock.Lock()
	armed := x.closeTimer != nil
	x.stateLock.Unlock()
	if !armed {
		t.Fatal("no close timer after the local close")
	}
	y := rcOpen(t, h.rb)
	y.Write([]byte("b"))
	rcReadN(t, rcAccept(t, h.b), 1)
	var total int64
	relayed := rcRelayAsync(x, y, time.Minute, &total)
	x.stateLock.Lock()
	held := x.closeTimer == nil && x.relayIdle
	x.stateLock.Unlock()
	if !held {
		t.Fatal("the close timer runs beside the Relay's idle rule")
	}
	y.Reset()
	if err := rcAwait(t, relayed, 5*time.Second, "Relay"); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("Relay: got %v, want ErrConnectionReset", err)
	}
	x.stateLock.Lock()
	rearmed := x.closeTimer != nil && !x.relayIdle && x.state == streamLocalClose
	x.stateLock.Unlock()
	if !rearmed {
		t.Fatal("the close timer was not armed again after the Relay, with the peer's FIN still due")
	}

	// An idle rule longer than the close timeout leaves the timer alone.
	up = rcOpen(t, h.a)
	up.Write([]byte("a"))
	x = rcAccept(t, h.ra)
	rcReadN(t, x, 1)
	x.Close()
	y = rcOpen(t, h.rb)
	relayed = rcRelayAsync(x, y, 2*time.Minute, &total)
	x.stateLock.Lock()
	kept := x.closeTimer != nil
	x.stateLock.Unlock()
	if !kept {
		t.Fatal("a Relay with an idle rule longer than the close timeout held the close timer")
	}
	y.Reset()
	rcAwait(t, relayed, 5*time.Second, "Relay")
}

// A session's keepalive holds no goroutine between pings, and keeps
// pinging.
func TestRelaychain_KeepAliveNoGoroutine(t *testing.T) {
	conf := rcConf()
	conf.EnableKeepAlive = true
	conf.KeepAliveInterval = 20 * time.Millisecond
	cc, sc := testConnTCP(t)
	client, _ := testClientServerConfig(t, cc, sc, conf, conf)
	rcEventually(t, 10*time.Second, "three pings", func() bool {
		client.pingLock.Lock()
		defer client.pingLock.Unlock()
		return client.pingID >= 3
	})
	// "keepalive(": not keepaliveOnce, whose ping waits for its answer.
	if n := rcParked("yamux.(*Session).keepalive(", ""); n != 0 {
		t.Fatalf("%d goroutines wait in keepalive", n)
	}
}

// A download whose client reads its first window and then stalls does not
// grow the relay's window: the relay passes the client's two windows on at
// once, which looks limited, and the first doubling takes two windows
// moved in limited epochs after the first (growth.go). Before, each such
// stream held a grown window until the budget ran out.
func TestRelaychain_Relay_StalledClientNoGrowth(t *testing.T) {
	const window = 256 << 10
	for i := range 6 {
		// Whole windows in a frame (as a terminal sends), and small frames,
		// whose updates each give back half a window.
		piece := window
		if i%2 == 1 {
			piece = 32 << 10
		}
		b := NewWindowBudget(4<<20, 64<<20)
		conf := rcConf(rcWindow(window))
		conf.WindowGrowth = b
		h := rcHopOver(t, testConnTCP, conf)
		up := rcOpen(t, h.a)
		sent := rcAsync(func() error {
			data := rcData(6*window, int64(i))
			for off := 0; off < len(data); off += piece {
				if _, err := up.Write(data[off : off+piece]); err != nil {
					return err
				}
			}
			return nil
		})
		x := rcAccept(t, h.ra)
		y := rcOpen(t, h.rb)
		var total int64
		relayed := rcRelayAsync(x, y, time.Minute, &total)
		z := rcAccept(t, h.b)
		rcReadN(t, z, window) // the client's first window, then nothing
		rcEventually(t, 10*time.Second, "the relay holds a full window", func() bool {
			x.recvLock.Lock()
			defer x.recvLock.Unlock()
			return x.recvWindow == 0 && y.sendWindowNow() == 0 && x.recv.len() > 0
		})
		time.Sleep(20 * time.Millisecond) // for a late update
		if w := rcStreamWindow(x); w != window || b.Used() != 0 {
			t.Fatalf("run %d (%d-byte frames): the stalled relay's window grew to %d (budget used %d)", i, piece, w, b.Used())
		}
		x.Reset()
		up.Reset()
		rcAwait(t, relayed, 10*time.Second, "Relay")
		rcAwait(t, sent, 10*time.Second, "send")
	}
}
