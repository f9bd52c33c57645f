package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// stallBound is how long after its last progress a stallWatch of idle may
// take to cut, on a loaded machine: idle plus a check period, plus slack.
func stallBound(idle time.Duration) time.Duration { return idle + idle/stallChecks + 2*time.Second }

// TestStallWatch drives a stallWatch with a counter the test moves: steady
// or slow progress (minIdleChunk per half idle) is never cut, a stall is cut
// once, after idle and not much later, an unreadable counter is cut at the
// first check, and a stopped watch never cuts.
func TestStallWatch(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		step      uint64        // progress per tick
		every     time.Duration // tick
		moveFor   time.Duration // ticks, then nothing
		err       bool          // the counter cannot be read
		stopAt    time.Duration // stop the watch then (0: after the cut)
		wantCut   bool
		minAfter  time.Duration // the cut comes no sooner after the last move
		fromStart bool          // minAfter counts from the start instead
	}{
		{name: "steady", step: 64 << 10, every: 10 * time.Millisecond, moveFor: 5 * idle, stopAt: 5 * idle},
		{name: "slow", step: minIdleChunk, every: idle / 2, moveFor: 5 * idle, stopAt: 5 * idle},
		{name: "stall-after-progress", step: 64 << 10, every: 10 * time.Millisecond, moveFor: 2 * idle, wantCut: true, minAfter: idle - idle/stallChecks},
		{name: "stall-at-once", wantCut: true, minAfter: idle},
		{name: "too-slow", step: minIdleChunk / 4, every: idle / 2, moveFor: 4 * idle, wantCut: true, minAfter: idle, fromStart: true},
		{name: "unreadable", err: true, wantCut: true},
		{name: "stopped", stopAt: idle / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var moved atomic.Uint64
			cuts := make(chan time.Time, 2)
			progress := func() (uint64, error) {
				if tc.err {
					return 0, errors.New("gone")
				}
				return moved.Load(), nil
			}
			start := time.Now()
			w := watchStall(progress, 0, func() { cuts <- time.Now() }, idle)
			lastMove := start
			if tc.step > 0 {
				tick := time.NewTicker(tc.every)
				for time.Since(start) < tc.moveFor {
					<-tick.C
					moved.Add(tc.step)
					lastMove = time.Now()
				}
				tick.Stop()
			}
			if tc.stopAt > 0 {
				time.Sleep(time.Until(start.Add(tc.stopAt)))
				cut := w.stop()
				if cut != tc.wantCut {
					t.Fatalf("stop reports cut %v, want %v", cut, tc.wantCut)
				}
				time.Sleep(idle + idle/stallChecks) // no cut after stop
				if len(cuts) != 0 {
					t.Fatalf("cut %v after the watch was stopped", (<-cuts).Sub(start))
				}
				return
			}
			select {
			case at := <-cuts:
				after := at.Sub(lastMove)
				if tc.fromStart {
					after = at.Sub(start)
				}
				if after < tc.minAfter || after > stallBound(idle) {
					t.Errorf("cut %v after the last progress, want %v to %v", after, tc.minAfter, stallBound(idle))
				}
			case <-time.After(tc.moveFor + stallBound(idle)):
				t.Fatal("no cut")
			}
			if !w.stop() {
				t.Error("stop does not report the cut")
			}
			time.Sleep(idle / stallChecks * 2)
			if len(cuts) != 0 {
				t.Error("cut twice")
			}
		})
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.AcceptTCP()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestCopyIdleWatched runs copyIdle between loopback TCP connections, as a
// raw relay splices (and from a file, as the terminal sends), where the
// copy is one io.Copy under a stallWatch:
//   - a whole copy returns no error, leaves no deadline behind and is not
//     cut later;
//   - a slow source (minIdleChunk*2 per half idle) is never cut, though the
//     copy lasts several idle timeouts, even after a fast start (which
//     the chunks of the other OSes do not allow: a chunk sized to a fast
//     start must end within the idle timeout);
//   - a source that stalls half way, and a reader that stops reading, are
//     cut after the idle timeout with a timeout error.
func TestCopyIdleWatched(t *testing.T) {
	t.Parallel()
	a, _ := tcpPair(t)
	if _, err := ackedBytes(a); err != nil {
		if runtime.GOOS == "linux" && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("acknowledged bytes of a loopback connection: %v", err)
		}
		t.Skipf("no stall watch here (%v): copies into TCP go in chunks", err)
	}
	const idle = 300 * time.Millisecond
	const size = 4 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 13)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		file    bool          // the source is the file (sendfile)
		slow    bool          // the source writes minIdleChunk*2 per idle/2
		fast    int           // ... after this many bytes at once
		stopAt  int           // the source stops after this many bytes (0: never)
		noRead  bool          // the destination's reader reads nothing
		wantErr bool          // the copy is cut off
		minTook time.Duration // the copy takes at least this long
	}{
		{name: "whole"},
		{name: "whole-from-file", file: true},
		{name: "slow-source", slow: true, minTook: 3 * idle / 2},
		{name: "fast-then-slow", slow: true, fast: 2 << 20, minTook: 3 * idle / 2},
		{name: "source-stalls", stopAt: size / 2, wantErr: true, minTook: idle},
		{name: "reader-stalls", noRead: true, wantErr: true, minTook: idle},
		{name: "reader-stalls-file", file: true, noRead: true, wantErr: true, minTook: idle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst, far := tcpPair(t)
			want := int64(size)
			if tc.slow {
				want = int64(tc.fast) + 8*minIdleChunk
			}
			if tc.noRead {
				// No autotuned buffers: they could take all of it.
				dst.SetWriteBuffer(64 << 10)
				far.SetReadBuffer(64 << 10)
			}
			var src io.Reader
			var srcConn, feed net.Conn
			if tc.file {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				src = f
			} else {
				var in *net.TCPConn
				feed, in = tcpPair(t)
				src, srcConn = in, in
				go func() {
					p := data[:want]
					if tc.stopAt > 0 {
						p = p[:tc.stopAt]
					}
					if _, err := feed.Write(p[:tc.fast]); err != nil {
						return
					}
					p = p[tc.fast:]
					for len(p) > 0 {
						k := len(p)
						if tc.slow {
							k = min(k, 2*minIdleChunk)
							time.Sleep(idle / 2)
						}
						if _, err := feed.Write(p[:k]); err != nil {
							return
						}
						p = p[k:]
					}
				}()
			}
			got := make(chan []byte, 1)
			go func() {
				if tc.noRead {
					got <- nil
					return
				}
				far.SetReadDeadline(time.Now().Add(time.Minute))
				b, _ := io.ReadAll(io.LimitReader(far, want))
				got <- b
			}()
			start := time.Now()
			k, err := copyIdle(dst, src, want, idle)
			took := time.Since(start)
			if tc.wantErr {
				if err == nil || !isTimeout(err) {
					t.Fatalf("copy of a stalled transfer: %d bytes, error %v; want a timeout", k, err)
				}
				if k >= want {
					t.Errorf("copied %d of %d bytes, yet cut off", k, want)
				}
				if took < tc.minTook || took > stallBound(idle)+5*time.Second {
					t.Errorf("cut off after %v, want at least %v and not much more", took, tc.minTook)
				}
				t.Logf("cut off after %v with %d bytes: %v", took.Round(time.Millisecond), k, err)
				return
			}
			if err != nil || k != want {
				t.Fatalf("copy: %d of %d bytes, %v", k, want, err)
			}
			if took < tc.minTook {
				t.Errorf("took %v, want at least %v: the source was not slow", took, tc.minTook)
			}
			if b := <-got; int64(len(b)) != want || string(b) != string(data[:want]) {
				t.Fatalf("the reader got %d bytes, not the %d sent", len(b), want)
			}
			// No deadline is left, and no cut comes later: the connections
			// still carry bytes after more than the idle timeout.
			time.Sleep(idle + 2*idle/stallChecks)
			if _, err := dst.Write([]byte("more")); err != nil {
				t.Fatalf("write after the copy: %v", err)
			}
			if srcConn != nil {
				go feed.Write([]byte("next"))
				var b [4]byte
				if _, err := io.ReadFull(srcConn, b[:]); err != nil {
					t.Fatalf("read after the copy: %v", err)
				}
			}
		})
	}
}
