package relay

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/relaychain/relaychain/route"
)

// Sentinel errors that a client's errors wrap, one per wire status; test
// them with errors.Is. A *HopError says which hop they came from.
var (
	ErrNotFound    = errors.New("not found")
	ErrBadRequest  = errors.New("bad request")
	ErrNotAllowed  = errors.New("not allowed")
	ErrUnreachable = errors.New("unreachable")
	ErrNotNode     = errors.New("not a relay node")
	ErrTimeout     = errors.New("timed out")
	ErrTooManyHops = errors.New("too many hops")
	ErrNoFiles     = errors.New("serves no files")
	ErrNotRegular  = errors.New("not a regular file")
	ErrBusy        = errors.New("busy")
	ErrInternal    = errors.New("internal error")
	ErrProtocol    = errors.New("protocol error")
	ErrAuth        = errors.New("authentication failed")
	// ErrTruncated marks a transfer that ended before the announced size.
	ErrTruncated = errors.New("transfer truncated")
	// ErrDigest marks bytes whose digest differs from the trailer's.
	ErrDigest = errors.New("digest mismatch")
)

var statusErrs = map[route.Status]error{
	route.StatusNotFound:    ErrNotFound,
	route.StatusBadRequest:  ErrBadRequest,
	route.StatusNotAllowed:  ErrNotAllowed,
	route.StatusUnreachable: ErrUnreachable,
	route.StatusNotNode:     ErrNotNode,
	route.StatusTimeout:     ErrTimeout,
	route.StatusTooManyHops: ErrTooManyHops,
	route.StatusNoFiles:     ErrNoFiles,
	route.StatusNotRegular:  ErrNotRegular,
	route.StatusBusy:        ErrBusy,
	route.StatusInternal:    ErrInternal,
	route.StatusBadOp:       ErrBadRequest,
	route.StatusBadOffset:   ErrBadRequest,
	route.StatusAuth:        ErrAuth,
}

// HopError is a failure attributed to one hop of a route: the terminal that
// refused a request, or the next hop a relay (or the client) could not use.
type HopError struct {
	Index   int          // the hop's index in the route, 0 for the first
	Addr    string       // the hop's host:port
	Status  route.Status // what went wrong
	Message string       // detail from the node that reported it
}

// Error reads like "hop 2 (127.0.0.1:7002): refused: dial tcp ...".
func (e *HopError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Status.String()
	}
	return fmt.Sprintf("hop %d (%s): %s", e.Index, e.Addr, msg)
}

// Unwrap returns the sentinel error for the status.
func (e *HopError) Unwrap() error {
	if err, ok := statusErrs[e.Status]; ok {
		return err
	}
	return ErrProtocol
}

// dialStatus classifies a failure to reach a next hop, for the wire.
func dialStatus(err error) route.Status {
	switch {
	case errors.Is(err, errForbidden):
		return route.StatusNotAllowed
	case errors.Is(err, errAuth):
		return route.StatusAuth
	case errors.Is(err, errNotNode), errors.Is(err, route.ErrMalformed):
		return route.StatusNotNode
	case errors.Is(err, errBusyLink):
		return route.StatusBusy
	case isTimeout(err):
		return route.StatusTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return route.StatusUnreachable
	}
	return route.StatusUnreachable
}

// hopFailure builds the response a relay (or the client) gives for a next
// hop it could not use. The message starts with the status name so that
// users see "refused", "not allowed", and so on.
func hopFailure(index int, addr string, err error) *route.Response {
	st := dialStatus(err)
	return &route.Response{
		Status:   st,
		HopIndex: index,
		Hop:      addr,
		Message:  fmt.Sprintf("%s: %v", st, err),
	}
}

// responseError turns a non-OK response into a *HopError.
func responseError(r *route.Response) error {
	return &HopError{Index: r.HopIndex, Addr: r.Hop, Status: r.Status, Message: r.Message}
}
