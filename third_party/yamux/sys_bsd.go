//go:build darwin || openbsd

package yamux

import "golang.org/x/sys/unix"

// sysRead is one read(2) of fd into p. Only Linux makes it a raw call
// (sys_linux.go): these systems go through libc.
func sysRead(fd uintptr, p []byte) (int, error) { return unix.Read(int(fd), p) }

// sysWritev is one writev(2) of iov to fd.
func sysWritev(fd uintptr, iov [][]byte) (int, error) { return unix.Writev(int(fd), iov) }
