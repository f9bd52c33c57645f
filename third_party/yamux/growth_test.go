package yamux

import (
	"io"
	"math"
	"testing"
	"time"
)

// rcGrowConf is rcConf with window growth from 256 KiB up to max, drawing
// on b.
func rcGrowConf(b *WindowBudget) *Config {
	return rcConf(rcLazy, func(c *Config) { c.WindowGrowth = b })
}

// rcStreamWindow returns the window st grants now.
func rcStreamWindow(st *Stream) uint32 {
	st.recvLock.Lock()
	defer st.recvLock.Unlock()
	return st.grow.window
}

// rcGranted returns the window st has granted its peer: what is still
// open plus what is queued or held.
func rcGranted(st *Stream) uint32 {
	st.recvLock.Lock()
	defer st.recvLock.Unlock()
	return st.recvWindow + uint32(st.recv.len())
}

// rcSend writes n bytes to st in writes of piece bytes and closes it.
func rcSend(st *Stream, n, piece int) error {
	buf := make([]byte, piece)
	for n > 0 {
		k := len(buf)
		if n < k {
			k = n
		}
		if _, err := st.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return st.Close()
}

// A reader that keeps up with a sender whose writes the window cuts (4 MiB
// writes into a 256 KiB window) lets the window grow, up to the budget's
// Max; the growth goes back to the budget when the stream closes.
func TestRelaychain_WindowGrowth_FastReader(t *testing.T) {
	b := NewWindowBudget(4<<20, 64<<20)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcGrowConf(b))
	// Whether the reader waits enough is up to the scheduler: on a loaded
	// machine a stream may stop short of Max, so up to 3 streams are tried.
	var peak, granted uint32
	for try := 0; try < 3 && peak != 4<<20; try++ {
		cs := rcOpen(t, client)
		sent := rcAsync(func() error { return rcSend(cs, 64<<20, 4<<20) })
		st := rcAccept(t, server)
		peak = 0
		buf := make([]byte, 256<<10)
		var got int
		for {
			n, err := st.Read(buf)
			got += n
			if w := rcStreamWindow(st); w > peak {
				peak = w
			}
			if w := rcGranted(st); w > granted {
				granted = w
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Read after %d bytes: %v", got, err)
			}
		}
		if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
			t.Fatalf("send: %v", err)
		}
		t.Logf("try %d: peak window %d, budget used %d", try, peak, b.Used())
		st.Close()
		rcEventually(t, 10*time.Second, "growth given back", func() bool { return b.Used() == 0 })
	}
	if peak != 4<<20 {
		t.Fatalf("window peaked at %d, want it grown to %d", peak, 4<<20)
	}
	if granted <= initialStreamWindow {
		t.Fatalf("the peer was granted at most %d bytes at once: the growth never reached the wire", granted)
	}
}

// rcSlowRead reads st to EOF in 64 KiB reads, sleeping pause before each:
// a reader slower than the sender.
func rcSlowRead(st *Stream, pause time.Duration, peak *uint32) error {
	buf := make([]byte, 64<<10)
	for {
		time.Sleep(pause)
		_, err := st.Read(buf)
		if w := rcStreamWindow(st); w > *peak {
			*peak = w
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// A reader slower than its sender is the bottleneck: it never waits for
// data, and its window stays where it started.
func TestRelaychain_WindowGrowth_SlowReaderStays(t *testing.T) {
	b := NewWindowBudget(4<<20, 64<<20)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcGrowConf(b))
	cs := rcOpen(t, client)
	sent := rcAsync(func() error { return rcSend(cs, 4<<20, 4<<20) })
	st := rcAccept(t, server)
	var peak uint32
	if err := rcSlowRead(st, 2*time.Millisecond, &peak); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if peak != initialStreamWindow || b.Used() != 0 {
		t.Fatalf("slow reader: window peaked at %d (budget used %d), want it kept at %d", peak, b.Used(), initialStreamWindow)
	}
}

// A sender slower than the window allows (small writes with pauses) never
// uses all of it: a reader that waits for it does not grow its window.
func TestRelaychain_WindowGrowth_SlowSenderStays(t *testing.T) {
	b := NewWindowBudget(4<<20, 64<<20)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcGrowConf(b))
	cs := rcOpen(t, client)
	sent := rcAsync(func() error {
		buf := make([]byte, 32<<10)
		for i := 0; i < 64; i++ { // 2 MiB, 8 windows
			if _, err := cs.Write(buf); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return cs.Close()
	})
	st := rcAccept(t, server)
	var peak uint32
	if err := rcSlowRead(st, 0, &peak); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if peak != initialStreamWindow || b.Used() != 0 {
		t.Fatalf("slow sender: window peaked at %d (budget used %d), want it kept at %d", peak, b.Used(), initialStreamWindow)
	}
}

// Without WindowGrowth a fast reader's window stays at MaxStreamWindowSize,
// as upstream's does.
func TestRelaychain_WindowGrowth_Off(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcConf(rcLazy, rcWindow(512<<10)))
	cs := rcOpen(t, client)
	sent := rcAsync(func() error { return rcSend(cs, 16<<20, 4<<20) })
	st := rcAccept(t, server)
	var peak uint32
	if err := rcSlowRead(st, 0, &peak); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if peak != 512<<10 {
		t.Fatalf("window peaked at %d without WindowGrowth, want %d", peak, 512<<10)
	}
}

// The budget bounds the growth of all the streams that share it, across
// sessions, and every stream gives its growth back when it closes, or when
// its session does.
func TestRelaychain_WindowGrowth_Budget(t *testing.T) {
	const budget = 256 << 10 // one doubling of one 256 KiB window
	b := NewWindowBudget(4<<20, budget)
	var streams []*Stream
	var sessions []*Session
	for i := 0; i < 2; i++ {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcGrowConf(b))
		sessions = append(sessions, server)
		for j := 0; j < 2; j++ {
			cs := rcOpen(t, client)
			sent := rcAsync(func() error { return rcSend(cs, 16<<20, 4<<20) })
			st := rcAccept(t, server)
			var peak uint32
			if err := rcSlowRead(st, 0, &peak); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := rcAwait(t, sent, 10*time.Second, "sender"); err != nil {
				t.Fatalf("send: %v", err)
			}
			if b.Used() > budget {
				t.Fatalf("budget of %d overdrawn: %d used", budget, b.Used())
			}
			streams = append(streams, st)
		}
	}
	if b.Used() != budget {
		t.Fatalf("4 fast streams drew %d of a %d budget, want all of it", b.Used(), budget)
	}
	var grown int
	for _, st := range streams {
		if w := rcStreamWindow(st); w > initialStreamWindow {
			grown++
		}
	}
	if grown != 1 {
		t.Fatalf("%d streams grew on a budget for one", grown)
	}
	// The streams are half-closed by their senders; closing one here ends
	// it (both sides closed). The grown stream and one other are left to
	// their sessions' Close, which must give the growth back too.
	for i, st := range streams {
		if i%2 == 1 && rcStreamWindow(st) == initialStreamWindow {
			st.Close()
		}
	}
	for _, s := range sessions {
		s.Close()
	}
	rcEventually(t, 10*time.Second, "growth given back", func() bool { return b.Used() == 0 })
	for _, st := range streams {
		st.endGrowth() // again: a no-op
	}
	if b.Used() != 0 {
		t.Fatalf("a second endGrowth gave back more: used %d", b.Used())
	}
}

// Closing a stream gives its growth back under the stream's stateLock
// (processFlags closes a stream whose both sides are closed with stateLock
// held), while a Read sending a window update holds recvLock and then
// takes stateLock: endGrowth must not take recvLock. Many streams that
// are closed on their side and read the peer's data and FIN while sending
// window updates must all end.
func TestRelaychain_WindowGrowth_CloseWhileReading(t *testing.T) {
	b := NewWindowBudget(4<<20, 64<<20)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, rcGrowConf(b), rcGrowConf(b)) // the readers are the client's
	const streams = 100
	done := make(chan error, 2*streams)
	for i := 0; i < streams; i++ {
		cs := rcOpen(t, client)
		go func() {
			if err := cs.Close(); err != nil { // opens the stream, with its FIN
				done <- err
				return
			}
			buf := make([]byte, 16<<10) // small reads: many window updates
			for {
				_, err := cs.Read(buf)
				if err == io.EOF {
					done <- nil
					return
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
		st := rcAccept(t, server)
		go func() { done <- rcSend(st, 1<<20, 1<<20) }()
	}
	for i := 0; i < 2*streams; i++ {
		if err := rcAwait(t, rcAsync(func() error { return <-done }), 20*time.Second, "stream end"); err != nil {
			t.Fatalf("stream: %v", err)
		}
	}
	rcEventually(t, 10*time.Second, "growth given back", func() bool { return b.Used() == 0 })
}

// With SetWriteIdle a Write of many windows to a slow reader keeps going
// as long as each frame moves within the idle time, where the same
// deadline set once would cut it; and it fails once the reader stops.
func TestRelaychain_SetWriteIdle(t *testing.T) {
	const idle = 400 * time.Millisecond
	for _, mode := range []string{"idle", "deadline", "stalled"} {
		cc, sc := testConnTCP(t)
		client, server := testClientServerConfig(t, cc, sc, rcConf(rcLazy), rcConf(rcLazy))
		cs := rcOpen(t, client)
		if mode == "deadline" {
			cs.SetWriteDeadline(time.Now().Add(idle))
		} else {
			cs.SetWriteIdle(idle)
		}
		if _, err := cs.Write([]byte("x")); err != nil { // opens the stream
			t.Fatalf("%s: first write: %v", mode, err)
		}
		st := rcAccept(t, server)
		wrote := rcAsync(func() error {
			_, err := cs.Write(make([]byte, 1<<20)) // 4 windows
			return err
		})
		// The reader takes 64 KiB every 50 ms: the window comes back in
		// steps of 128 KiB every 100 ms, and the whole write takes ~800 ms.
		// It stops at the end, once the write has failed, or (stalled)
		// after 300 KiB.
		buf := make([]byte, 64<<10)
		got, ended := 0, false
		var err error
		for got < 1<<20+1 && !ended && !(mode == "stalled" && got >= 300<<10) {
			time.Sleep(50 * time.Millisecond)
			select {
			case err = <-wrote:
				ended = true
				if mode != "idle" {
					continue
				}
			default:
			}
			want := len(buf)
			if rest := 1<<20 + 1 - got; rest < want {
				want = rest
			}
			st.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, rerr := io.ReadFull(st, buf[:want])
			got += n
			if rerr != nil {
				t.Fatalf("%s: read after %d bytes: %v", mode, got, rerr)
			}
		}
		if !ended {
			err = rcAwait(t, wrote, 10*time.Second, mode+" write")
		}
		switch mode {
		case "idle":
			if err != nil {
				t.Fatalf("idle: a write that kept moving failed: %v", err)
			}
		default:
			if err != ErrTimeout {
				t.Fatalf("%s: write returned %v, want ErrTimeout", mode, err)
			}
		}
	}
}

// maybeGrow doubles the window at each epoch in which the window held the
// stream back, from the second epoch on, up to the budget's Max; the first
// doubling takes two windows' worth of them.
func TestRelaychain_WindowGrowth_Epochs(t *testing.T) {
	b := NewWindowBudget(4<<20, 64<<20)
	cc, sc := testConnTCP(t)
	client, _ := testClientServerConfig(t, cc, sc, rcGrowConf(b), rcConf(rcLazy))
	st := rcOpen(t, client)
	epoch := func(exhausted bool, waited time.Duration) uint32 {
		st.recvLock.Lock()
		defer st.recvLock.Unlock()
		now := time.Now()
		if st.grow.epoch != 0 {
			st.grow.epoch = encodeDeadline(now.Add(-10 * time.Millisecond))
		}
		st.grow.exhausted = exhausted
		st.grow.waited = waited
		st.maybeGrow(now, st.grow.window)
		return st.grow.window
	}
	for i, step := range []struct {
		exhausted bool
		waited    time.Duration // of a 10 ms epoch
		want      uint32
	}{
		{true, 9 * time.Millisecond, 256 << 10},  // the first update only starts an epoch
		{true, 9 * time.Millisecond, 256 << 10},  // held back for one window: not yet
		{false, 9 * time.Millisecond, 256 << 10}, // the sender did not use the window
		{true, 9 * time.Millisecond, 512 << 10},  // held back for a second window: double
		{false, 9 * time.Millisecond, 512 << 10}, // the sender did not use the window
		{true, 2 * time.Millisecond, 512 << 10},  // the reader hardly waited
		{true, 3 * time.Millisecond, 1 << 20},    // waited over a quarter: once is enough now
		{true, 9 * time.Millisecond, 2 << 20},
		{true, 9 * time.Millisecond, 4 << 20}, // the budget's Max
		{true, 9 * time.Millisecond, 4 << 20}, // and no further
	} {
		if got := epoch(step.exhausted, step.waited); got != step.want {
			t.Fatalf("epoch %d (exhausted %v, waited %v): window %d, want %d", i, step.exhausted, step.waited, got, step.want)
		}
	}
	if b.Used() != 4<<20-256<<10 {
		t.Fatalf("budget used %d, want %d", b.Used(), 4<<20-256<<10)
	}
}

// The count of bytes moved in limited epochs before the first doubling
// does not overflow with a window near the uint32 limit.
func TestRelaychain_WindowGrowth_LargeBase(t *testing.T) {
	const base = 3 << 30
	b := NewWindowBudget(math.MaxUint32, 1<<32)
	st := &Stream{session: &Session{config: &Config{MaxStreamWindowSize: base, WindowGrowth: b}}}
	st.grow.window = base
	now := time.Now()
	for i, want := range []uint32{base, base, math.MaxUint32, math.MaxUint32} {
		st.grow.exhausted, st.grow.waited = true, time.Second
		st.maybeGrow(now, base)
		now = now.Add(time.Second)
		if st.grow.window != want {
			t.Fatalf("epoch %d: window %d, want %d (proven %d)", i, st.grow.window, want, st.grow.proven)
		}
	}
}
