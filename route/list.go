package route

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Entry is one file in a listing of the served directory or of the cache.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Cached bool   `json:"-"`
}

const entryFixed = 1 + 8 + 2 // flags, size, name length

// ListWriter writes a listing as LIST frames of at most MaxFrame bytes each.
// Close writes the empty frame that ends the listing. It is not safe for
// concurrent use.
type ListWriter struct {
	w   io.Writer
	buf []byte
	n   int
}

// NewListWriter returns a ListWriter writing to w.
func NewListWriter(w io.Writer) *ListWriter {
	return &ListWriter{w: w, buf: make([]byte, 0, 4096)}
}

// Add queues one entry, flushing a full frame first when needed.
func (lw *ListWriter) Add(e Entry) error {
	if len(e.Name) > MaxName || e.Size < 0 {
		return fmt.Errorf("list entry %q: %w", e.Name, ErrMalformed)
	}
	if lw.n > 0 && len(lw.buf)-FrameHeaderLen+entryFixed+len(e.Name) > MaxFrame {
		if err := lw.flush(); err != nil {
			return err
		}
	}
	if lw.n == 0 {
		lw.buf = AppendFrameHeader(lw.buf[:0], FrameList, 0)
		lw.buf = append(lw.buf, 0, 0) // count, filled by flush
	}
	var flags byte
	if e.Cached {
		flags = 1
	}
	lw.buf = append(lw.buf, flags)
	lw.buf = binary.BigEndian.AppendUint64(lw.buf, uint64(e.Size))
	lw.buf = appendStr(lw.buf, e.Name)
	lw.n++
	return nil
}

func (lw *ListWriter) flush() error {
	binary.BigEndian.PutUint16(lw.buf[FrameHeaderLen:], uint16(lw.n))
	finish(lw.buf, 0)
	lw.n = 0
	if _, err := lw.w.Write(lw.buf); err != nil {
		return fmt.Errorf("write list frame: %w", err)
	}
	return nil
}

// Close flushes queued entries and writes the empty frame that ends the listing.
func (lw *ListWriter) Close() error {
	if lw.n > 0 {
		if err := lw.flush(); err != nil {
			return err
		}
	}
	end := AppendFrameHeader(lw.buf[:0], FrameList, 2)
	end = append(end, 0, 0)
	if _, err := lw.w.Write(end); err != nil {
		return fmt.Errorf("write list end: %w", err)
	}
	return nil
}

// DecodeList decodes one LIST payload. An empty result ends the listing.
func DecodeList(p []byte) ([]Entry, error) {
	d := decoder{p: p}
	n := d.u16()
	// Each entry takes at least entryFixed bytes: refuse a count the
	// payload cannot hold before allocating for it.
	if d.err == nil && n*entryFixed > len(d.p) {
		d.fail("%d entries in %d bytes", n, len(d.p))
	}
	if d.err != nil {
		return nil, d.err
	}
	out := make([]Entry, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		flags := d.u8()
		size := d.u64()
		if size > math.MaxInt64 {
			d.fail("size %d", size)
		}
		out = append(out, Entry{Cached: flags&1 != 0, Size: int64(size), Name: d.str("name", MaxName)})
	}
	return out, d.done()
}

// ReadList reads a whole listing, up to max entries.
func ReadList(r io.Reader, max int) ([]Entry, error) {
	var all []Entry
	buf := make([]byte, 0, 4096)
	for {
		p, err := readTyped(r, FrameList, buf)
		if err != nil {
			return all, err
		}
		buf = p[:0] // keep a grown buffer; DecodeList copies what it keeps
		es, err := DecodeList(p)
		if err != nil {
			return all, err
		}
		if len(es) == 0 {
			return all, nil
		}
		if len(all)+len(es) > max {
			return all, fmt.Errorf("listing of more than %d entries: %w", max, ErrTooLarge)
		}
		all = append(all, es...)
	}
}
