package yamux

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The receive loop's read and writeNow's writev are raw system calls on
// Linux (relaychain patch). Both are tried on a non-blocking socket, once
// the poller has found it ready, and never wait; a plain system call
// (syscall.Syscall) tells the scheduler that the goroutine may block,
// which wakes the runtime's monitor thread (sysmon) whenever it sleeps
// because every P was idle. A relay at one request at a time goes idle
// between the request and the answer, so each of its reads woke sysmon,
// which then slept in 20 µs steps until the relay was idle again: of a
// relay's 4.3 futex calls, 2.3 nanosleeps and 8.2 context switches per
// request, about half were sysmon's. With raw calls the relay made 2.0,
// 0.2 and 4.6, and used a third less CPU per request (BENCHMARKS.md,
// "System calls that wake no monitor"). A raw call cannot be preempted;
// these copy at most one buffer into or out of the socket, as a
// computation of that size would.

// sysRead is one read(2) of fd into p.
func sysRead(fd uintptr, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// sysWritevMax is the most buffers sysWritev passes in one raw call; its
// iovecs are on the stack. writeNow passes two (header and body).
const sysWritevMax = 4

// sysWritev is one writev(2) of iov to fd. Empty buffers are left out.
func sysWritev(fd uintptr, iov [][]byte) (int, error) {
	if len(iov) > sysWritevMax {
		return unix.Writev(int(fd), iov)
	}
	var vecs [sysWritevMax]unix.Iovec
	k := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		vecs[k].Base = &b[0]
		vecs[k].SetLen(len(b))
		k++
	}
	if k == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&vecs[0])), uintptr(k))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
