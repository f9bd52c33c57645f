package relay

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// ackedBytes returns the bytes c's peer has acknowledged so far
// (tcpi_bytes_acked of TCP_INFO, Linux 4.1 and later).
func ackedBytes(c *net.TCPConn) (uint64, error) {
	if !ackedCounted() {
		return 0, errors.ErrUnsupported
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("acknowledged bytes: %w", err)
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, fmt.Errorf("acknowledged bytes: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("acknowledged bytes: getsockopt TCP_INFO: %w", serr)
	}
	return info.Bytes_acked, nil
}

// ackedCounted reports whether the kernel fills in tcpi_bytes_acked, which
// Linux 4.1 added: an older one leaves it at zero, which would look like a
// stall.
var ackedCounted = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 4 || major == 4 && minor >= 1
})
