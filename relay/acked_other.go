//go:build !linux

package relay

import (
	"errors"
	"net"
)

// ackedBytes is Linux-only: elsewhere copies into TCP go in chunks, each
// under its own deadline (copyIdle).
func ackedBytes(*net.TCPConn) (uint64, error) { return 0, errors.ErrUnsupported }
