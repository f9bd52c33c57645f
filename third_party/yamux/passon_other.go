//go:build !(linux || darwin || openbsd)

package yamux

import (
	"errors"
	"syscall"
)

// rawConnOf returns nil: this platform has no writev for writeNow, so
// nothing is passed on (passon.go).
func rawConnOf(any) syscall.RawConn { return nil }

// writeOnce is not reached without a raw connection.
func writeOnce(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.ErrUnsupported
}

// readOnce is not reached without a raw connection.
func readOnce(uintptr, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
