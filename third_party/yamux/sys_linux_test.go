package yamux

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// nonblockingPair returns the two ends of a non-blocking stream socket
// pair, closed at the end of the test.
func nonblockingPair(t *testing.T) (a, b uintptr) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return uintptr(fds[0]), uintptr(fds[1])
}

// TestRelaychain_SysReadWritev checks the raw read and writev (sys_linux.go):
// EAGAIN from an empty socket, empty buffers left out, more buffers than
// the raw call takes, a short write when the socket fills, and a read of
// what is there.
func TestRelaychain_SysReadWritev(t *testing.T) {
	a, b := nonblockingPair(t)
	buf := make([]byte, 1<<16)
	if n, err := sysRead(b, buf); !errors.Is(err, unix.EAGAIN) || n != 0 {
		t.Fatalf("read of an empty socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := sysWritev(a, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writev of empty buffers: %d, %v", n, err)
	}
	for _, iov := range [][][]byte{
		{[]byte("head"), nil, []byte("body")},
		{[]byte("1"), []byte("22"), []byte("333"), []byte("4444"), []byte("55555")}, // over sysWritevMax
	} {
		want := bytes.Join(iov, nil)
		n, err := sysWritev(a, iov)
		if err != nil || n != len(want) {
			t.Fatalf("writev of %q: %d, %v", want, n, err)
		}
		n, err = sysRead(b, buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	// Fill the socket: the last writev is short or EAGAIN, never blocks.
	chunk := bytes.Repeat([]byte{'x'}, 1<<16)
	total := 0
	for i := 0; ; i++ {
		if i == 10000 {
			t.Fatal("the socket never filled")
		}
		n, err := sysWritev(a, [][]byte{chunk[:8], chunk})
		if errors.Is(err, unix.EAGAIN) {
			if n != 0 {
				t.Fatalf("EAGAIN with %d bytes", n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < len(chunk)+8 {
			break // short: the kernel took what fitted
		}
	}
	got := 0
	for i := 0; got < total; i++ {
		if i == 100000 {
			t.Fatalf("read %d of %d bytes", got, total)
		}
		n, err := sysRead(b, buf)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", got, total, err)
		}
		got += n
	}
	if n, err := sysRead(b, buf); !errors.Is(err, unix.EAGAIN) || n != 0 {
		t.Fatalf("read of a drained socket: %d, %v; want 0, EAGAIN", n, err)
	}
	if err := unix.Shutdown(int(a), unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if n, err := sysRead(b, buf); err != nil || n != 0 {
		t.Fatalf("read after the peer's shutdown: %d, %v; want 0 (EOF)", n, err)
	}
}
