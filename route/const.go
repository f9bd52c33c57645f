package route

import "strconv"

// Wire constants. docs/protocol.md is the authoritative description of the
// byte layout; this file and that document change together.

// Magic opens every link preface, in both directions.
const Magic = "RLYC"

// Version is the protocol version carried in the link preface. Version 2
// changed how a mux exchange ends: a client may send its FIN with its
// request, and cancels by resetting the stream (version 1 clients kept
// their side open and canceled with a FIN). Version 3 changed the
// trailer's transport check from CRC-32C to CRC-64 (DigestCRC64), which a
// client requires. Nodes and clients of different versions must not share
// a chain: the preface refuses them.
const Version byte = 3

// PrefaceLen is the length of a link preface: magic, version, and a mode byte
// (dialer) or a status byte (acceptor).
const PrefaceLen = len(Magic) + 2

// Mode is the transport a link carries, chosen by the dialer in its preface.
type Mode byte

// Link modes.
const (
	// ModeMux carries a yamux session: one stream per request.
	ModeMux Mode = 'M'
	// ModeRaw carries a single request directly on the connection.
	ModeRaw Mode = 'R'
)

// FrameType is the first byte of every frame.
type FrameType byte

// Frame types. Append only: never renumber.
const (
	FrameRequest  FrameType = 1 // client -> terminal: op, route, name
	FrameResponse FrameType = 2 // terminal or failing relay -> client: status and metadata
	FrameStart    FrameType = 3 // client -> terminal: offset to start a GET at
	FrameTrailer  FrameType = 4 // terminal -> client: digest of the bytes sent
	FrameList     FrameType = 5 // terminal -> client: a chunk of listing entries; an empty chunk ends the listing
)

// Op is the operation a request asks the terminal for.
type Op byte

// Operations. Append only: never renumber.
const (
	OpGet  Op = 1 // fetch a file
	OpStat Op = 2 // size, mtime and whether it is cached
	OpLs   Op = 3 // list the served directory recursively
	OpList Op = 4 // list the cache
)

// String returns the op's name as used in logs.
func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpStat:
		return "stat"
	case OpLs:
		return "ls"
	case OpList:
		return "list"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Limits that every decoder checks before it allocates.
const (
	// FrameHeaderLen is the fixed frame prefix: type (1) and payload length (4).
	FrameHeaderLen = 5
	// MaxFrame is the largest payload of any frame.
	MaxFrame = 64 << 10
	// MaxName is the longest file name in a request.
	MaxName = 4 << 10
	// MaxHopLen is the longest hop address ("host:port").
	MaxHopLen = 300
	// MaxMessage is the longest error message in a response.
	MaxMessage = 1 << 10
	// DefaultMaxHops is the default cap on route length.
	DefaultMaxHops = 16
	// HardMaxHops is the largest max-hops a node may be configured with.
	HardMaxHops = 255
)

// Digest algorithms carried in a trailer. Append only.
const (
	// DigestSHA256 is SHA-256 of the whole file: its content id.
	DigestSHA256 byte = 1
	// 2 was CRC-32C (Castagnoli) of the bytes sent, which DigestCRC64
	// replaced: it is no longer sent, and a decoder skips it as it skips any
	// algorithm it does not know.

	// DigestCRC64 is CRC-64/NVME of the bytes sent: the transport check,
	// cheap enough for wire speed (carry-less multiplies), and a 64-bit
	// check where CRC-32C was a 32-bit one.
	DigestCRC64 byte = 3
)
