package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// watchedPair returns the two ends of a loopback TCP connection whose first
// end has had a byte acknowledged, as a link has had its preface
// acknowledged before any transfer: copyWatched takes a count of zero for
// a kernel that does not count.
//
// With sndbuf and rcvbuf not 0, a's send buffer and b's receive buffer are
// set (no autotuning), before the connection is made: set after, a receive
// buffer smaller than the window already offered drops segments, and the
// retransmissions look like a stall.
func watchedPair(t *testing.T, sndbuf, rcvbuf int) (a, b *net.TCPConn) {
	t.Helper()
	ctl := func(opt, size int) func(string, string, syscall.RawConn) error {
		if size == 0 {
			return nil
		}
		return func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size) }); err != nil {
				return err
			}
			return serr
		}
	}
	lc := net.ListenConfig{Control: ctl(syscall.SO_RCVBUF, rcvbuf)}
	d := net.Dialer{Control: ctl(syscall.SO_SNDBUF, sndbuf)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a = c.(*net.TCPConn)
	s, err := ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	b = s.(*net.TCPConn)
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if n, err := ackedBytes(a); err != nil || n > 0 {
			return a, b
		}
		if time.Now().After(end) {
			t.Fatal("the byte sent was not acknowledged within 5s")
		}
	}
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
//   - a slow reader (128 KiB per quarter idle, fixed socket buffers), whose
//     kernel acknowledges in steps of the window it reopens, is never cut;
//   - a source that stalls half way, and a reader that stops reading, are
//     cut after the idle timeout with a timeout error.
func TestCopyIdleWatched(t *testing.T) {
	t.Parallel()
	a, _ := watchedPair(t, 0, 0)
	if _, err := ackedBytes(a); err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("acknowledged bytes of a loopback connection: %v", err)
		}
		t.Skipf("no stall watch on this kernel (%v): copies into TCP go in chunks", err)
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
		slowRd  bool          // ... reads 128 KiB per idle/4
		wantErr bool          // the copy is cut off
		minTook time.Duration // the copy takes at least this long
	}{
		{name: "whole"},
		{name: "whole-from-file", file: true},
		{name: "slow-source", slow: true, minTook: 3 * idle / 2},
		{name: "fast-then-slow", slow: true, fast: 2 << 20, minTook: 3 * idle / 2},
		{name: "source-stalls", stopAt: size / 2, wantErr: true, minTook: idle},
		{name: "slow-reader", slowRd: true, minTook: idle},
		{name: "reader-stalls", noRead: true, wantErr: true, minTook: idle},
		{name: "reader-stalls-file", file: true, noRead: true, wantErr: true, minTook: idle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dst, far *net.TCPConn
			switch {
			case tc.noRead: // buffers that cannot take it all
				dst, far = watchedPair(t, 64<<10, 64<<10)
			case tc.slowRd: // buffers a reader frees in segments
				dst, far = watchedPair(t, 256<<10, 1<<20)
			default:
				dst, far = watchedPair(t, 0, 0)
			}
			want := int64(size)
			if tc.slow {
				want = int64(tc.fast) + 8*minIdleChunk
			}
			if tc.slowRd {
				want = size
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
				feed, in = watchedPair(t, 0, 0)
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
				var b []byte
				if tc.slowRd {
					// step bytes at a time, at most, with a pause before each.
					buf := make([]byte, 128<<10)
					for int64(len(b)) < want {
						time.Sleep(idle / 4)
						k, err := far.Read(buf[:min(int64(len(buf)), want-int64(len(b)))])
						b = append(b, buf[:k]...)
						if err != nil {
							break
						}
					}
				} else {
					b, _ = io.ReadAll(io.LimitReader(far, want))
				}
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
