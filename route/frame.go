package route

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors returned by the decoders. Every decode error wraps ErrMalformed.
var (
	// ErrMalformed marks a frame that does not follow docs/protocol.md.
	ErrMalformed = errors.New("malformed frame")
	// ErrTooLarge marks a frame or field longer than its limit.
	ErrTooLarge = fmt.Errorf("%w: over the size limit", ErrMalformed)
)

// AppendFrameHeader appends a frame header announcing a payload of n bytes.
func AppendFrameHeader(dst []byte, t FrameType, n int) []byte {
	dst = append(dst, byte(t))
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// ReadFrame reads one whole frame from r, which it never reads past. The
// payload is read into buf when it fits, else into a new slice; the length
// is checked against MaxFrame before anything is allocated.
func ReadFrame(r io.Reader, buf []byte) (FrameType, []byte, error) {
	var hdr [FrameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes (max %d): %w", n, MaxFrame, ErrTooLarge)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("read frame payload: %w", unexpected(err))
	}
	return FrameType(hdr[0]), buf, nil
}

// SplitFrame takes the frame at the start of p, which holds bytes already
// received: its type, its payload (a slice of p) and the bytes after it.
// It allocates nothing. When p holds less than the whole frame (or is
// empty, where ReadFrame would return io.EOF) the error wraps
// io.ErrUnexpectedEOF; a length over MaxFrame is ErrTooLarge, as from
// ReadFrame.
func SplitFrame(p []byte) (t FrameType, payload, rest []byte, err error) {
	if len(p) < FrameHeaderLen {
		return 0, nil, nil, fmt.Errorf("frame header in %d bytes: %w", len(p), io.ErrUnexpectedEOF)
	}
	n := binary.BigEndian.Uint32(p[1:FrameHeaderLen])
	if n > MaxFrame {
		return 0, nil, nil, fmt.Errorf("frame of %d bytes (max %d): %w", n, MaxFrame, ErrTooLarge)
	}
	if end := FrameHeaderLen + int(n); end <= len(p) {
		return FrameType(p[0]), p[FrameHeaderLen:end], p[end:], nil
	}
	return 0, nil, nil, fmt.Errorf("frame of %d bytes in %d: %w", n, len(p)-FrameHeaderLen, io.ErrUnexpectedEOF)
}

// readTyped reads a frame and checks that it is of type want.
func readTyped(r io.Reader, want FrameType, buf []byte) ([]byte, error) {
	t, p, err := ReadFrame(r, buf)
	if err != nil {
		return nil, err
	}
	if t != want {
		return nil, fmt.Errorf("%w: got frame type %d, want %d", ErrMalformed, t, want)
	}
	return p, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decoder walks a payload, remembering the first error. Every length is
// checked against the bytes that remain, so nothing is allocated for a
// length the payload cannot back.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.p) {
		d.fail("need %d bytes, %d left", n, len(d.p))
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) u8() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() int {
	if b := d.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// str reads a uint16-length-prefixed string of at most max bytes.
func (d *decoder) str(what string, max int) string {
	n := d.u16()
	if n > max {
		d.fail("%s of %d bytes (max %d)", what, n, max)
		return ""
	}
	return string(d.take(n))
}

// done reports the first error, or trailing bytes as one.
func (d *decoder) done() error {
	if d.err == nil && len(d.p) != 0 {
		d.fail("%d trailing bytes", len(d.p))
	}
	return d.err
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// finish fills in the payload length of a frame that starts at dst[start].
func finish(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-FrameHeaderLen))
	return dst
}
