//go:build linux || darwin || openbsd

package yamux

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawConnOf returns the raw connection under conn, for writeNow, when conn
// is a bare socket; nil otherwise (TLS, a pipe), where nothing is passed
// on.
func rawConnOf(conn any) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeOnce writes iov to rc with one writev that does not wait: it
// returns what the kernel took (0 when the socket buffer is full).
func writeOnce(rc syscall.RawConn, iov [][]byte) (int, error) {
	n := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = sysWritev(fd, iov)
			if !errors.Is(werr, unix.EINTR) {
				return true // one try: EAGAIN leaves the rest to writeRest
			}
		}
	})
	if err == nil {
		err = werr
	}
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// readOnce reads fd into p with one read that does not wait (EAGAIN when
// the socket has nothing), retrying only on EINTR.
func readOnce(fd uintptr, p []byte) (int, error) {
	for {
		n, err := sysRead(fd, p)
		if !errors.Is(err, unix.EINTR) {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}
