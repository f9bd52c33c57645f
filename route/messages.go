package route

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// Request asks the chain for one operation. Relays read it, drop their own
// hop and pass it on; the terminal acts on it.
type Request struct {
	Op Op
	// Depth is the index, in the client's original route, of Route[0]. A
	// relay that fails to reach Route[1] reports hop Depth+1.
	Depth int
	// Route holds the hops still to visit, starting with the receiving node.
	Route Route
	// Name is the file name for get and stat; empty for listings.
	Name string
}

// Next returns the request a relay sends on to Route[1]: its own hop
// dropped, one deeper. Route must hold at least two hops.
func (m *Request) Next() Request {
	return Request{Op: m.Op, Depth: m.Depth + 1, Route: m.Route[1:], Name: m.Name}
}

// Validate checks the limits that the encoder and decoder share.
func (m *Request) Validate(maxHops int) error {
	switch {
	case len(m.Route) == 0:
		return fmt.Errorf("%w: empty route", ErrMalformed)
	case len(m.Route) > maxHops:
		return fmt.Errorf("route of %d hops (max %d): %w", len(m.Route), maxHops, ErrTooManyHops)
	case m.Depth < 0 || m.Depth+len(m.Route) > HardMaxHops:
		return fmt.Errorf("%w: depth %d", ErrMalformed, m.Depth)
	case len(m.Name) > MaxName:
		return fmt.Errorf("name of %d bytes (max %d): %w", len(m.Name), MaxName, ErrTooLarge)
	}
	for _, h := range m.Route {
		if len(h) == 0 || len(h) > MaxHopLen {
			return fmt.Errorf("hop address of %d bytes (max %d): %w", len(h), MaxHopLen, ErrMalformed)
		}
	}
	return nil
}

// ErrTooManyHops marks a route longer than the node's max-hops.
var ErrTooManyHops = fmt.Errorf("%w: too many hops", ErrMalformed)

// Append appends the request as a whole frame to dst. It validates against
// HardMaxHops; the receiver applies its own max-hops.
func (m *Request) Append(dst []byte) ([]byte, error) {
	if err := m.Validate(HardMaxHops); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = AppendFrameHeader(dst, FrameRequest, 0)
	dst = append(dst, byte(m.Op), byte(m.Depth), byte(len(m.Route)))
	for _, h := range m.Route {
		dst = appendStr(dst, h)
	}
	dst = appendStr(dst, m.Name)
	return finish(dst, start), nil
}

// DecodeRequest decodes a request payload, refusing routes longer than
// maxHops before it allocates them.
func DecodeRequest(p []byte, maxHops int) (Request, error) {
	d := decoder{p: p}
	m := Request{Op: Op(d.u8()), Depth: int(d.u8())}
	n := int(d.u8())
	if d.err == nil && n > maxHops {
		return m, fmt.Errorf("route of %d hops (max %d): %w", n, maxHops, ErrTooManyHops)
	}
	if d.err == nil && n == 0 {
		d.fail("empty route")
	}
	// Each hop takes at least 3 bytes and the name 2: refuse a count the
	// payload cannot hold before allocating for it.
	if d.err == nil && 3*n+2 > len(d.p) {
		d.fail("%d hops in %d bytes", n, len(d.p))
	}
	if d.err == nil {
		m.Route = make(Route, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		m.Route = append(m.Route, d.str("hop", MaxHopLen))
	}
	m.Name = d.str("name", MaxName)
	if err := d.done(); err != nil {
		return m, err
	}
	return m, m.Validate(maxHops)
}

// ReadRequest reads and decodes one request frame.
func ReadRequest(r io.Reader, maxHops int) (Request, error) {
	p, err := readTyped(r, FrameRequest, nil)
	if err != nil {
		return Request{}, err
	}
	return DecodeRequest(p, maxHops)
}

// Response is the answer of the terminal, or of a relay that could not go on.
type Response struct {
	Status Status
	// Cached says the terminal holds the file in its cache.
	Cached bool
	// HasDigest says Digest holds the SHA-256 of the whole file.
	HasDigest bool
	// HopIndex and Hop name the hop the status is about: the terminal, or
	// the next hop a relay failed to reach.
	HopIndex int
	Hop      string
	// Size and ModTime (Unix nanoseconds) describe the file, for get and stat.
	Size    int64
	ModTime int64
	Digest  [32]byte
	// Message explains a failure to a person.
	Message string
}

const (
	respCached    = 1 << 0
	respHasDigest = 1 << 1
)

// Append appends the response as a whole frame to dst, truncating an
// over-long message or hop address and clamping a negative size or an
// out-of-range hop index rather than failing.
func (m *Response) Append(dst []byte) []byte {
	start := len(dst)
	dst = AppendFrameHeader(dst, FrameResponse, 0)
	var flags byte
	if m.Cached {
		flags |= respCached
	}
	if m.HasDigest {
		flags |= respHasDigest
	}
	dst = append(dst, byte(m.Status), flags, byte(min(max(m.HopIndex, 0), HardMaxHops)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(max(m.Size, 0)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.ModTime))
	if m.HasDigest {
		dst = append(dst, m.Digest[:]...)
	}
	dst = appendStr(dst, clip(m.Hop, MaxHopLen))
	dst = appendStr(dst, clip(m.Message, MaxMessage))
	return finish(dst, start)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// DecodeResponse decodes a response payload.
func DecodeResponse(p []byte) (Response, error) {
	d := decoder{p: p}
	m := Response{Status: Status(d.u8())}
	flags := d.u8()
	m.Cached = flags&respCached != 0
	m.HasDigest = flags&respHasDigest != 0
	m.HopIndex = int(d.u8())
	size := d.u64()
	if size > math.MaxInt64 {
		d.fail("size %d", size)
	}
	m.Size = int64(size)
	m.ModTime = int64(d.u64())
	if m.HasDigest {
		copy(m.Digest[:], d.take(32))
	}
	m.Hop = d.str("hop", MaxHopLen)
	m.Message = d.str("message", MaxMessage)
	return m, d.done()
}

// ReadResponse reads and decodes one response frame.
func ReadResponse(r io.Reader) (Response, error) {
	var buf [128]byte
	p, err := readTyped(r, FrameResponse, buf[:0])
	if err != nil {
		return Response{}, err
	}
	return DecodeResponse(p)
}

// AppendStart appends a START frame asking for the bytes from offset on.
func AppendStart(dst []byte, offset int64) []byte {
	dst = AppendFrameHeader(dst, FrameStart, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(offset))
}

// AppendStartBelow appends a conditional START frame: the terminal sends
// the bytes from offset on only if the file is smaller than below, and
// otherwise sends nothing, which ends the exchange (the client then
// fetches the file another way). A client sends it along with its request,
// before it knows the size. A below of 0 or less is no condition: it
// appends the plain START, the only encoding of an unconditional one.
func AppendStartBelow(dst []byte, offset, below int64) []byte {
	if below <= 0 {
		return AppendStart(dst, offset)
	}
	dst = AppendFrameHeader(dst, FrameStart, 16)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return binary.BigEndian.AppendUint64(dst, uint64(below))
}

// ReadStart reads a START frame and returns its offset.
func ReadStart(r io.Reader) (int64, error) {
	off, _, err := ReadStartBelow(r)
	return off, err
}

// ReadStartBelow reads a START frame and returns its offset and its
// condition (0 for an unconditional START).
func ReadStartBelow(r io.Reader) (offset, below int64, err error) {
	var buf [16]byte
	p, err := readTyped(r, FrameStart, buf[:0])
	if err != nil {
		return 0, 0, err
	}
	return DecodeStartBelow(p)
}

// DecodeStart decodes a START payload and returns its offset.
func DecodeStart(p []byte) (int64, error) {
	off, _, err := DecodeStartBelow(p)
	return off, err
}

// DecodeStartBelow decodes a START payload of 8 bytes (offset) or 16
// (offset, below). A 16-byte payload must have a below above 0: an
// unconditional START has one encoding, the 8-byte one.
func DecodeStartBelow(p []byte) (offset, below int64, err error) {
	d := decoder{p: p}
	off := d.u64()
	var b uint64
	if len(d.p) == 8 {
		b = d.u64()
	}
	if err := d.done(); err != nil {
		return 0, 0, err
	}
	if off > math.MaxInt64 || b > math.MaxInt64 || (len(p) == 16 && b == 0) {
		return 0, 0, fmt.Errorf("%w: offset %d, below %d", ErrMalformed, off, b)
	}
	return int64(off), int64(b), nil
}

// Trailer ends the bytes of a GET. It carries a CRC-64/NVME of the bytes
// sent, a cheap transport check, and the SHA-256 of the whole
// file, its content id. On the wire it is a sequence of digest entries
// (algorithm, length, bytes); a decoder skips algorithms it does not know.
type Trailer struct {
	HasCRC64  bool
	CRC64     uint64 // of the bytes sent, [offset, size)
	HasSHA256 bool
	SHA256    [32]byte // of the whole file, [0, size)
}

// MaxDigest is the longest digest a trailer entry may carry.
const MaxDigest = 64

// Append appends the trailer as a whole frame to dst.
func (m *Trailer) Append(dst []byte) []byte {
	start := len(dst)
	dst = AppendFrameHeader(dst, FrameTrailer, 0)
	if m.HasCRC64 {
		dst = append(dst, DigestCRC64, 8)
		dst = binary.BigEndian.AppendUint64(dst, m.CRC64)
	}
	if m.HasSHA256 {
		dst = append(dst, DigestSHA256, 32)
		dst = append(dst, m.SHA256[:]...)
	}
	return finish(dst, start)
}

// DecodeTrailer decodes a trailer payload.
func DecodeTrailer(p []byte) (Trailer, error) {
	var m Trailer
	d := decoder{p: p}
	for d.err == nil && len(d.p) > 0 {
		alg, n := d.u8(), int(d.u8())
		if n > MaxDigest {
			d.fail("digest of %d bytes", n)
		}
		sum := d.take(n)
		if d.err != nil {
			break
		}
		switch {
		case alg == DigestSHA256 && n == 32:
			m.HasSHA256 = true
			copy(m.SHA256[:], sum)
		case alg == DigestCRC64 && n == 8:
			m.HasCRC64 = true
			m.CRC64 = binary.BigEndian.Uint64(sum)
		case alg == DigestSHA256 || alg == DigestCRC64:
			d.fail("digest %d of %d bytes", alg, n)
		}
	}
	return m, d.done()
}

// ReadTrailer reads and decodes a TRAILER frame.
func ReadTrailer(r io.Reader) (Trailer, error) {
	var buf [2 * (2 + MaxDigest)]byte
	p, err := readTyped(r, FrameTrailer, buf[:0])
	if err != nil {
		return Trailer{}, err
	}
	return DecodeTrailer(p)
}
