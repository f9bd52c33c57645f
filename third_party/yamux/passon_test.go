//go:build linux || darwin || openbsd

package yamux

import (
	"bytes"
	"context"
	"errors"
	"io"
	mrand "math/rand"
	"net"
	"syscall"
	"testing"
	"time"
)

// rcHop is one relay hop for the pass-on tests: a sender session a, the
// relay's sessions ra (facing a) and rb (facing b), and the receiver b.
type rcHop struct{ a, ra, rb, b *Session }

// rcHopOver builds an rcHop with the given connections and config.
func rcHopOver(t *testing.T, conns func(testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser), conf *Config) rcHop {
	var h rcHop
	c1, s1 := conns(t)
	h.a, h.ra = testClientServerConfig(t, c1, s1, conf, conf)
	c2, s2 := conns(t)
	h.rb, h.b = testClientServerConfig(t, c2, s2, conf, conf)
	return h
}

// relay forwards the relay's stream x to y as relaychain does: pass-on
// set, ForwardTo, then y closed if ForwardTo left the close to it.
func rcRelay(x, y *Stream, idle time.Duration, total *int64) <-chan error {
	return rcAsync(func() error {
		x.SetPassOn(y, idle)
		n, err := x.ForwardTo(y)
		*total = n
		if err == nil {
			err = y.Close()
		}
		return err
	})
}

// rcSendMixed writes data to st in pieces: mostly small ones, which the
// relay can pass on from its receive loop, and some larger than
// passOnMax, which go through the forwarder's queue. Then it closes st.
func rcSendMixed(st *Stream, data []byte, seed int64) error {
	rng := mrand.New(mrand.NewSource(seed))
	for off := 0; off < len(data); {
		n := 1 + rng.Intn(4000)
		if rng.Intn(8) == 0 {
			n = passOnMax + 1 + rng.Intn(64<<10)
		}
		if n > len(data)-off {
			n = len(data) - off
		}
		if _, err := st.Write(data[off : off+n]); err != nil {
			return err
		}
		off += n
	}
	return st.Close()
}

// TestRelaychain_PassOn_OrderAndCount moves a stream through a relay hop,
// in frames the receive loop passes on mixed with frames it queues, and
// checks that the bytes arrive whole and in order with the end, that both
// paths were taken, and that ForwardTo counts the bytes passed on. Over
// TLS nothing is passed on (no bare socket to write without waiting).
func TestRelaychain_PassOn_OrderAndCount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		conns  func(testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser)
		conf   *Config
		passes bool
	}{
		{"tcp", testConnTCP, rcConf(), true},
		{"tcp-lazy", testConnTCP, rcConf(rcLazy), true},
		{"tls", testConnTLS, rcConf(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := rcHopOver(t, tc.conns, tc.conf)
			data := rcData(2<<20, 7) // 8 windows: the window must come back
			up := rcOpen(t, h.a)
			sent := rcAsync(func() error { return rcSendMixed(up, data, 3) })
			x := rcAccept(t, h.ra)
			y := rcOpen(t, h.rb)
			var total int64
			relayed := rcRelay(x, y, 0, &total)
			z := rcAccept(t, h.b)
			got := rcReadAll(t, z, 30*time.Second)
			if err := rcAwait(t, sent, 10*time.Second, "send"); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := rcAwait(t, relayed, 10*time.Second, "ForwardTo"); err != nil {
				t.Fatalf("ForwardTo: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, not the %d sent in order", len(got), len(data))
			}
			if total != int64(len(data)) {
				t.Fatalf("ForwardTo counted %d bytes, want %d", total, len(data))
			}
			passed := x.passed.Load()
			if tc.passes && (passed == 0 || passed == int64(len(data))) {
				t.Fatalf("passed on %d of %d bytes: want both paths taken", passed, len(data))
			}
			if !tc.passes && passed != 0 {
				t.Fatalf("passed on %d bytes over TLS", passed)
			}
		})
	}
}

// TestRelaychain_PassOn_StalledNextHop gives the relay a next hop that
// grants a large window and then never reads: a frame passed on that the
// kernel cannot take must not hold the receive loop of the session it
// came from, which other streams share, until the write times out.
func TestRelaychain_PassOn_StalledNextHop(t *testing.T) {
	// A large window, so that passOn may pass on far more than the
	// kernel buffers hold.
	conf := rcConf(rcWindow(16 << 20))
	c1, s1 := testConnTCP(t)
	a, ra := testClientServerConfig(t, c1, s1, conf, conf)

	// The next hop: a socket that never reads, with small buffers (set on
	// the listener, so that the accepted socket starts with them).
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ln.(*net.TCPListener)
	defer l.Close()
	holeCh := make(chan *net.TCPConn, 1)
	go func() {
		c, _ := l.AcceptTCP()
		holeCh <- c
	}()
	rc, err := net.DialTCP("tcp", nil, l.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	rc.SetWriteBuffer(4 << 10)
	hole := <-holeCh
	if hole == nil {
		t.Fatal("accept failed")
	}
	defer hole.Close()
	rbConf := rcConf()
	rbConf.ConnectionWriteTimeout = 3 * time.Second
	rb, err := Client(rc, rbConf)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	up := rcOpen(t, a)
	if _, err := up.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	x := rcAccept(t, ra)
	rcReadN(t, x, 1)
	y := rcOpen(t, rb)
	// The hole grants stream 1 (y) 8 MiB, so y's window never stops it.
	grant := header(make([]byte, headerSize))
	grant.encode(typeWindowUpdate, flagACK, y.id, 8<<20)
	if _, err := hole.Write(grant); err != nil {
		t.Fatal(err)
	}
	rcEventually(t, 5*time.Second, "window granted", func() bool { return y.sendWindowNow() > 4<<20 })

	var total int64
	relayed := rcRelay(x, y, 0, &total)
	// rcRelay sets the pass-on from a goroutine: a frame that came before
	// would be queued, and with y stalled the queue never drains, so no
	// later frame could be passed on (it failed so in 1 of 40 runs beside
	// other packages' tests, under -race).
	rcEventually(t, 5*time.Second, "pass-on set", func() bool {
		x.recvLock.Lock()
		defer x.recvLock.Unlock()
		return x.passTo != nil
	})
	piece := make([]byte, 32<<10)
	wrote := rcAsync(func() error {
		for i := 0; i < 64; i++ { // 2 MiB, within the half window passOn allows
			if _, err := up.Write(piece); err != nil {
				return err
			}
		}
		return nil
	})
	// Well within rb's write timeout: the receive loop came back from the
	// frame the kernel could not take, and answers a ping meanwhile.
	rcEventually(t, time.Second, "a frame passed on", func() bool { return x.passed.Load() > 0 })
	pinged := rcAsync(func() error { _, err := a.Ping(); return err })
	if err := rcAwait(t, pinged, time.Second, "ping while the next hop stalls"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if rb.IsClosed() {
		t.Fatalf("the stalled session ended before the test could see it stall")
	}
	// The stalled write ends the next hop's session at its write timeout,
	// which ends the forwarding.
	rcEventually(t, 10*time.Second, "stalled session ended", rb.IsClosed)
	up.Close()
	rcAwait(t, wrote, 10*time.Second, "writes")
	if err := rcAwait(t, relayed, 10*time.Second, "ForwardTo"); err == nil {
		t.Fatalf("ForwardTo into a dead session succeeded")
	}
}

// TestRelaychain_PassOn_IdleRenewed sends small frames slower than the
// relay's idle timeout allows in all but far less than it between frames:
// frames passed on move the read deadline as the forwarder's progress
// would, so ForwardTo does not time out while they flow, and does once
// they stop.
func TestRelaychain_PassOn_IdleRenewed(t *testing.T) {
	h := rcHopOver(t, testConnTCP, rcConf())
	const idle = 300 * time.Millisecond
	up := rcOpen(t, h.a)
	if _, err := up.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	x := rcAccept(t, h.ra)
	rcReadN(t, x, 1)
	y := rcOpen(t, h.rb)
	x.SetReadDeadline(time.Now().Add(idle))
	var total int64
	relayed := rcRelay(x, y, idle, &total)
	z := rcAccept(t, h.b)
	msg := bytes.Repeat([]byte("p"), 100)
	for i := 0; i < 10; i++ { // 1 s in all, 100 ms apart
		if _, err := up.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 3)
	}
	rcReadN(t, z, 10*len(msg))
	rcNotDone(t, relayed, 0, "ForwardTo while frames flowed")
	if err := rcAwait(t, relayed, 5*time.Second, "ForwardTo after the frames stopped"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ForwardTo: %v, want a timeout", err)
	}
	if got := x.passed.Load(); got != int64(10*len(msg)) {
		t.Fatalf("passed on %d bytes, want all %d", got, 10*len(msg))
	}
}
