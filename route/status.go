package route

import "strconv"

// Status is the one-byte outcome carried in a response frame. Codes are
// append only: a code, once shipped, keeps its number and meaning.
type Status byte

// Status codes.
const (
	StatusOK          Status = 0  // success; metadata follows
	StatusNotFound    Status = 1  // the file does not exist under the root
	StatusBadRequest  Status = 2  // malformed request or a refused name (absolute, "..", NUL)
	StatusNotAllowed  Status = 3  // the next hop is not in the relay's allow list
	StatusUnreachable Status = 4  // the next hop refused or could not be dialed
	StatusNotNode     Status = 5  // the next hop did not answer like a relaychain node
	StatusTimeout     Status = 6  // the next hop did not answer in time
	StatusTooManyHops Status = 7  // the route is longer than the node's max-hops
	StatusNoFiles     Status = 8  // the route ends at a node that serves no files
	StatusNotRegular  Status = 9  // the name is a directory or not a regular file
	StatusBusy        Status = 10 // the node is at a configured limit
	StatusInternal    Status = 11 // an unexpected error at the node
	StatusBadOp       Status = 12 // the operation is unknown to the node
	StatusBadOffset   Status = 13 // reserved: a START beyond the file ends the exchange instead
	StatusAuth        Status = 14 // the next hop refused mutual TLS, or was not TLS
)

var statusNames = [...]string{
	StatusOK:          "ok",
	StatusNotFound:    "not found",
	StatusBadRequest:  "bad request",
	StatusNotAllowed:  "not allowed",
	StatusUnreachable: "refused",
	StatusNotNode:     "not a relay node",
	StatusTimeout:     "timed out",
	StatusTooManyHops: "too many hops",
	StatusNoFiles:     "serves no files",
	StatusNotRegular:  "not a regular file",
	StatusBusy:        "busy",
	StatusInternal:    "internal error",
	StatusBadOp:       "unknown operation",
	StatusBadOffset:   "bad offset",
	StatusAuth:        "authentication failed",
}

// String returns the short human name of the status, as shown to users.
func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}
