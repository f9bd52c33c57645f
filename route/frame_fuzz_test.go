package route

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// The fuzz targets check that no input makes a decoder panic, return an
// error that is not ErrMalformed (or, for a stream, a clean or unexpected
// EOF), allocate more than its limits allow, read past its frame, or accept
// a value that does not encode back to the same value.
//
//	go test ./route -run XXX -fuzz '^FuzzDecodeRequest$' -fuzztime 30s

// heapBytes returns the bytes f allocated on the heap.
func heapBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocChecked is how many frames of an input FuzzReadFrame checks the
// allocations of.
const allocChecked = 16

// allocSlack covers what a decoder allocates besides its values: error
// messages, the Route slice header, small buffers.
const allocSlack = 8 << 10

// checkAlloc fails if f allocates more than limit bytes. The count is the
// process's, so other goroutines' allocations (the fuzzing engine's, while
// it gathers coverage) can land in it: an input over the limit is measured
// again, up to twice, and fails only if every count is over. f must give
// the same result each time it runs (a reader it uses is rewound by f
// itself), so what it allocates is the same each time.
func checkAlloc(t *testing.T, what string, limit int, f func()) {
	t.Helper()
	got := heapBytes(f)
	for retry := 0; retry < 2 && got > uint64(limit); retry++ {
		got = min(got, heapBytes(f))
	}
	if got > uint64(limit) {
		t.Fatalf("%s allocated %d bytes, limit %d", what, got, limit)
	}
}

// fuzzRequests are the valid requests the seeds are made of.
func fuzzRequests() []Request {
	return []Request{
		{Op: OpGet, Depth: 1, Route: Route{"127.0.0.1:7002", "127.0.0.1:7000"}, Name: "a.txt"},
		{Op: OpStat, Route: Route{"[::1]:7000"}, Name: "dir/b.bin"},
		{Op: OpLs, Depth: 3, Route: Route{"localhost:1", "example.com:443", "10.0.0.1:9"}},
		{Op: OpList, Route: hops(DefaultMaxHops)},
		{Op: OpGet, Route: Route{strings.Repeat("h", MaxHopLen)}, Name: strings.Repeat("n", 300)},
		{Op: Op(9), Depth: 254, Route: Route{"a:1"}, Name: "\x00"},
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, req := range fuzzRequests() {
		frame, err := req.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame[FrameHeaderLen:], uint8(DefaultMaxHops))
		f.Add(frame[FrameHeaderLen:], uint8(len(req.Route)-1))
	}
	f.Add([]byte{1, 0, 255}, uint8(HardMaxHops))
	f.Add([]byte{1, 0, 1, 0, 0, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, p []byte, maxHops uint8) {
		var req Request
		var err error
		checkAlloc(t, "DecodeRequest", allocSlack+2*len(p), func() {
			req, err = DecodeRequest(p, int(maxHops))
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if errors.Is(err, ErrTooManyHops) && len(req.Route) > int(maxHops) {
				t.Fatalf("decoded %d hops past max-hops %d", len(req.Route), maxHops)
			}
			return
		}
		switch {
		case len(req.Route) == 0 || len(req.Route) > int(maxHops):
			t.Fatalf("accepted %d hops with max-hops %d", len(req.Route), maxHops)
		case req.Depth < 0 || req.Depth+len(req.Route) > HardMaxHops:
			t.Fatalf("accepted depth %d with %d hops", req.Depth, len(req.Route))
		case len(req.Name) > MaxName:
			t.Fatalf("accepted a name of %d bytes", len(req.Name))
		}
		for _, h := range req.Route {
			if len(h) == 0 || len(h) > MaxHopLen {
				t.Fatalf("accepted a hop of %d bytes", len(h))
			}
		}
		frame, err := req.Append(nil)
		if err != nil {
			t.Fatalf("decoded %+v, which does not encode: %v", req, err)
		}
		// The request encoding is canonical: it gives back the input.
		if !bytes.Equal(frame[FrameHeaderLen:], p) {
			t.Fatalf("re-encoded payload differs:\ngot  % x\nwant % x", frame[FrameHeaderLen:], p)
		}
		again, err := ReadRequest(bytes.NewReader(frame), int(maxHops))
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: got %+v, %v, want %+v", again, err, req)
		}
	})
}

// fuzzResponses are the valid responses the seeds are made of.
func fuzzResponses() []Response {
	return []Response{
		{Status: StatusOK, HopIndex: 2, Hop: "127.0.0.1:7002", Size: 1234, ModTime: 1700000000123456789},
		{Status: StatusOK, Cached: true, HasDigest: true, Digest: [32]byte(seq(0, 32)), Size: 1 << 40, ModTime: -1},
		{Status: StatusNotAllowed, HopIndex: 1, Hop: "10.0.0.1:22", Message: "not allowed: 10.0.0.1"},
		{Status: StatusBusy, HopIndex: 254, Hop: strings.Repeat("h", MaxHopLen), Message: strings.Repeat("m", MaxMessage)},
		{Status: Status(200)},
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, resp := range fuzzResponses() {
		f.Add(resp.Append(nil)[FrameHeaderLen:])
	}
	f.Add([]byte{0, 0xfc, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		var resp Response
		var err error
		checkAlloc(t, "DecodeResponse", allocSlack+2*len(p), func() {
			resp, err = DecodeResponse(p)
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch {
		case resp.Size < 0:
			t.Fatalf("accepted size %d", resp.Size)
		case resp.HopIndex < 0 || resp.HopIndex > 255:
			t.Fatalf("accepted hop index %d", resp.HopIndex)
		case len(resp.Hop) > MaxHopLen || len(resp.Message) > MaxMessage:
			t.Fatalf("accepted a hop of %d bytes and a message of %d", len(resp.Hop), len(resp.Message))
		case !resp.HasDigest && resp.Digest != [32]byte{}:
			t.Fatalf("digest set without its flag")
		}
		frame := resp.Append(nil)
		// Canonical except for flag bits that no version defines yet.
		canon := bytes.Clone(p)
		canon[1] &= respCached | respHasDigest
		if !bytes.Equal(frame[FrameHeaderLen:], canon) {
			t.Fatalf("re-encoded payload differs:\ngot  % x\nwant % x", frame[FrameHeaderLen:], canon)
		}
		again, err := ReadResponse(bytes.NewReader(frame))
		if err != nil || again != resp {
			t.Fatalf("round trip: got %+v, %v, want %+v", again, err, resp)
		}
	})
}

// fuzzEntries are the listing entries the seeds are made of.
func fuzzEntries() []Entry {
	return []Entry{
		{Name: "a.txt", Size: 5, Cached: true},
		{Name: "dir/b", Size: 0},
		{Name: "", Size: 1<<63 - 1},
		{Name: strings.Repeat("n", 200), Size: 1 << 30, Cached: true},
	}
}

func FuzzDecodeList(f *testing.F) {
	entries := fuzzEntries()
	for i := range entries {
		stream := listFrames(f, entries[:i+1])
		_, p, err := ReadFrame(bytes.NewReader(stream), nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{0, 1, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		var es []Entry
		var err error
		// An Entry is 40 bytes in memory for at least entryFixed on the wire.
		checkAlloc(t, "DecodeList", allocSlack+(40/entryFixed+1)*len(p)+len(p), func() {
			es, err = DecodeList(p)
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(es)*entryFixed+2 > len(p) {
			t.Fatalf("%d entries from %d bytes", len(es), len(p))
		}
		for _, e := range es {
			if len(e.Name) > MaxName || e.Size < 0 {
				t.Fatalf("accepted entry of %d-byte name, size %d", len(e.Name), e.Size)
			}
		}
		stream := listFrames(t, es)
		if len(p) <= MaxFrame && len(es) > 0 {
			// One frame of the same size, then the end frame.
			if got, want := len(stream), FrameHeaderLen+len(p)+FrameHeaderLen+2; got != want {
				t.Fatalf("re-encoded listing of %d bytes, want %d", got, want)
			}
		}
		again, err := ReadList(bytes.NewReader(stream), len(es))
		if err != nil || len(again) != len(es) || (len(es) > 0 && !reflect.DeepEqual(again, es)) {
			t.Fatalf("round trip: got %d entries, %v, want %d", len(again), err, len(es))
		}
	})
}

func FuzzDecodeTrailer(f *testing.F) {
	for _, tr := range []Trailer{
		{},
		{HasCRC64: true, CRC64: 0xae8b14860a799888},
		{HasCRC64: true, CRC64: 1, HasSHA256: true, SHA256: [32]byte(seq(0, 32))},
	} {
		f.Add(tr.Append(nil)[FrameHeaderLen:])
	}
	f.Add([]byte{9, 3, 1, 2, 3, 2, 4, 1, 2, 3, 4})
	f.Add([]byte{2, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		var tr Trailer
		var err error
		checkAlloc(t, "DecodeTrailer", allocSlack, func() {
			tr, err = DecodeTrailer(p)
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !tr.HasCRC64 && tr.CRC64 != 0 || !tr.HasSHA256 && tr.SHA256 != [32]byte{} {
			t.Fatalf("digest set without its flag: %+v", tr)
		}
		again, err := ReadTrailer(bytes.NewReader(tr.Append(nil)))
		if err != nil || again != tr {
			t.Fatalf("round trip: got %+v, %v, want %+v", again, err, tr)
		}
	})
}

// streamEnd reports whether err is how a read ends on a short or hostile
// stream: EOF (clean or not) or a malformed frame.
func streamEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed)
}

// frameLen returns the whole length of the frame at the start of b, as
// its header announces it, or -1 without a whole header.
func frameLen(b []byte) int {
	if len(b) < FrameHeaderLen {
		return -1
	}
	return FrameHeaderLen + int(uint32(b[1])<<24|uint32(b[2])<<16|uint32(b[3])<<8|uint32(b[4]))
}

// checkSplit checks SplitFrame of b against what ReadFrame read from the
// same bytes (typ, p, err): the same frame and the bytes after it, or an
// error of the same kind, and, with alloc, no allocation but its error.
func checkSplit(t *testing.T, b []byte, typ FrameType, p []byte, err error, alloc bool) {
	t.Helper()
	var styp FrameType
	var sp, rest []byte
	var serr error
	split := func() { styp, sp, rest, serr = SplitFrame(b) }
	if alloc {
		checkAlloc(t, "SplitFrame", allocSlack, split)
	} else {
		split()
	}
	switch {
	case err != nil:
		if serr == nil {
			t.Fatalf("SplitFrame took a frame where ReadFrame failed (%v)", err)
		}
		if errors.Is(serr, ErrTooLarge) != errors.Is(err, ErrTooLarge) || !errors.Is(serr, ErrTooLarge) && !errors.Is(serr, io.ErrUnexpectedEOF) {
			t.Fatalf("SplitFrame error %v, ReadFrame's %v", serr, err)
		}
	case serr != nil:
		t.Fatalf("SplitFrame: %v, where ReadFrame read a frame", serr)
	case styp != typ || !bytes.Equal(sp, p) || len(rest) != len(b)-FrameHeaderLen-len(p):
		t.Fatalf("SplitFrame: type %d, %d-byte payload, %d after; ReadFrame: type %d, %d-byte payload", styp, len(sp), len(rest), typ, len(p))
	}
}

// fuzzMaxList is the listing cap FuzzReadFrame reads with.
const fuzzMaxList = 1000

func FuzzReadFrame(f *testing.F) {
	var all []byte
	for _, req := range fuzzRequests() {
		frame, _ := req.Append(nil)
		f.Add(frame)
		all = append(all, frame...)
	}
	for _, resp := range fuzzResponses() {
		frame := resp.Append(nil)
		f.Add(frame)
		all = append(all, frame...)
	}
	f.Add(AppendStart(nil, 0))
	f.Add(AppendStart(nil, 1<<62))
	f.Add((&Trailer{HasCRC64: true, CRC64: 1, HasSHA256: true}).Append(nil))
	f.Add(listFrames(f, fuzzEntries()))
	f.Add(listFrames(f, nil))
	f.Add(append(listFrames(f, fuzzEntries()[:1]), AppendStart(nil, 5)...))
	f.Add(all)
	f.Add(AppendFrameHeader(nil, FrameList, MaxFrame))
	f.Add(AppendFrameHeader(nil, FrameRequest, MaxFrame+1))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Frame after frame: each read takes exactly the announced frame,
		// and SplitFrame of the same bytes agrees with it.
		// The allocation checks stop the world four times a frame: they
		// cover the first allocChecked frames only, or an input of many
		// empty frames takes minutes (the fuzzing stalled in CI).
		r := bytes.NewReader(data)
		for frames := 0; ; frames++ {
			off := len(data) - r.Len()
			var typ FrameType
			var p []byte
			var err error
			read := func() {
				r.Seek(int64(off), io.SeekStart)
				typ, p, err = ReadFrame(r, nil)
			}
			if frames < allocChecked {
				checkAlloc(t, "ReadFrame", allocSlack+MaxFrame, read)
			} else {
				read()
			}
			checkSplit(t, data[off:], typ, p, err, frames < allocChecked)
			if err != nil {
				if !streamEnd(err) {
					t.Fatalf("ReadFrame at %d: unexpected error %v", off, err)
				}
				if errors.Is(err, ErrTooLarge) && r.Len() != len(data)-off-FrameHeaderLen {
					t.Fatalf("ReadFrame at %d: read past the header of a refused frame", off)
				}
				break
			}
			n := frameLen(data[off:])
			if len(p) > MaxFrame || n != FrameHeaderLen+len(p) || len(data)-r.Len() != off+n {
				t.Fatalf("ReadFrame at %d: %d-byte payload, frame of %d, consumed %d", off, len(p), n, len(data)-r.Len()-off)
			}
			if typ != FrameType(data[off]) || !bytes.Equal(p, data[off+FrameHeaderLen:off+n]) {
				t.Fatalf("ReadFrame at %d: got type %d and payload that differ from the stream", off, typ)
			}
		}

		// Each typed reader, on whole and on one-byte reads: same answer,
		// errors of the allowed kinds, never past its frame(s).
		for _, rd := range fuzzReaders {
			whole := bytes.NewReader(data)
			var v1 any
			var err1 error
			checkAlloc(t, rd.name, rd.limit(len(data)), func() {
				whole.Reset(data)
				v1, err1 = rd.read(whole)
			})
			used := len(data) - whole.Len()
			v2, err2 := rd.read(iotest.OneByteReader(bytes.NewReader(data)))
			if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(v1, v2) {
				t.Fatalf("%s: whole reads give %+v, %v; one-byte reads %+v, %v", rd.name, v1, err1, v2, err2)
			}
			if err1 != nil {
				if !streamEnd(err1) {
					t.Fatalf("%s: unexpected error %v", rd.name, err1)
				}
				continue
			}
			if rd.typ != FrameList && used != frameLen(data) {
				t.Fatalf("%s: consumed %d bytes of a %d-byte frame", rd.name, used, frameLen(data))
			}
			rd.check(t, data[:used], v1)
		}
	})
}

// fuzzReaders are the typed readers FuzzReadFrame runs, with what each may
// allocate for a stream of n bytes, and a check of a value it accepted
// from the frame(s) in consumed.
var fuzzReaders = []struct {
	name  string
	typ   FrameType
	read  func(io.Reader) (any, error)
	limit func(n int) int
	check func(t *testing.T, consumed []byte, v any)
}{
	{
		name:  "ReadRequest",
		typ:   FrameRequest,
		read:  func(r io.Reader) (any, error) { return ReadRequest(r, DefaultMaxHops) },
		limit: func(n int) int { return allocSlack + MaxFrame + 2*n },
		check: func(t *testing.T, consumed []byte, v any) {
			req := v.(Request)
			if len(req.Route) > DefaultMaxHops {
				t.Fatalf("ReadRequest: accepted %d hops", len(req.Route))
			}
			frame, err := req.Append(nil)
			if err != nil || !bytes.Equal(frame, consumed) {
				t.Fatalf("ReadRequest: re-encoded % x, %v, want % x", frame, err, consumed)
			}
		},
	},
	{
		name:  "ReadResponse",
		typ:   FrameResponse,
		read:  func(r io.Reader) (any, error) { return ReadResponse(r) },
		limit: func(n int) int { return allocSlack + MaxFrame + 2*n },
		check: func(t *testing.T, consumed []byte, v any) {
			resp := v.(Response)
			again, err := ReadResponse(bytes.NewReader(resp.Append(nil)))
			if err != nil || again != resp {
				t.Fatalf("ReadResponse: round trip gave %+v, %v, want %+v", again, err, resp)
			}
		},
	},
	{
		name: "ReadStart",
		typ:  FrameStart,
		read: func(r io.Reader) (any, error) {
			off, below, err := ReadStartBelow(r)
			return [2]int64{off, below}, err
		},
		limit: func(int) int { return allocSlack + MaxFrame },
		check: func(t *testing.T, consumed []byte, v any) {
			off, below := v.([2]int64)[0], v.([2]int64)[1]
			frame := AppendStartBelow(nil, off, below)
			if off < 0 || below < 0 || !bytes.Equal(frame, consumed) {
				t.Fatalf("ReadStartBelow: offset %d, below %d re-encoded % x, want % x", off, below, frame, consumed)
			}
		},
	},
	{
		name:  "ReadTrailer",
		typ:   FrameTrailer,
		read:  func(r io.Reader) (any, error) { return ReadTrailer(r) },
		limit: func(int) int { return allocSlack + MaxFrame },
		check: func(t *testing.T, consumed []byte, v any) {
			tr := v.(Trailer)
			again, err := ReadTrailer(bytes.NewReader(tr.Append(nil)))
			if err != nil || again != tr {
				t.Fatalf("ReadTrailer: round trip gave %+v, %v, want %+v", again, err, tr)
			}
		},
	},
	{
		name: "ReadList",
		typ:  FrameList,
		read: func(r io.Reader) (any, error) { return ReadList(r, fuzzMaxList) },
		// Each frame read may allocate a MaxFrame buffer and the entries
		// of one frame; the result holds at most fuzzMaxList entries.
		limit: func(n int) int {
			frames := n/FrameHeaderLen + 1
			return allocSlack + frames*(MaxFrame+(MaxFrame/entryFixed+1)*40) + 4*n + 2*fuzzMaxList*40
		},
		check: func(t *testing.T, consumed []byte, v any) {
			es := v.([]Entry)
			if len(es) > fuzzMaxList {
				t.Fatalf("ReadList: %d entries past the cap of %d", len(es), fuzzMaxList)
			}
			again, err := ReadList(bytes.NewReader(listFrames(t, es)), fuzzMaxList)
			if err != nil || len(again) != len(es) || (len(es) > 0 && !reflect.DeepEqual(again, es)) {
				t.Fatalf("ReadList: round trip gave %d entries, %v, want %d", len(again), err, len(es))
			}
		},
	},
}
