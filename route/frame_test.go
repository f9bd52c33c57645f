package route

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// The codec is tested three ways: pinned wire values (the bytes below are
// written by hand from docs/protocol.md, never produced by the encoder),
// round trips, and ReadFrame's behavior on hostile streams. The fuzz
// targets are in frame_fuzz_test.go.

// wireHex decodes a hex string in which spaces, newlines and "|" only
// separate fields for the reader.
func wireHex(tb testing.TB, s string) []byte {
	tb.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// hexStr is the hex of a string, for building expected frames.
func hexStr(s string) string { return hex.EncodeToString([]byte(s)) }

// seq returns n bytes counting up from first.
func seq(first byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

// allocBytes returns the bytes f allocates on the heap, on average over runs.
func allocBytes(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	f() // warm up, as testing.AllocsPerRun does
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// ---- (a) pinned wire values ----

// TestWireConstants pins every number that is on the wire or bounds it.
// Codes and types are append only: a failure here means a shipped value
// changed, which breaks every deployed node.
func TestWireConstants(t *testing.T) {
	tests := []struct {
		name      string
		got, want any
	}{
		{"Magic", Magic, "RLYC"},
		{"Version", Version, byte(3)},
		{"PrefaceLen", PrefaceLen, 6},
		{"ModeMux", ModeMux, Mode('M')},
		{"ModeRaw", ModeRaw, Mode('R')},

		{"FrameRequest", FrameRequest, FrameType(1)},
		{"FrameResponse", FrameResponse, FrameType(2)},
		{"FrameStart", FrameStart, FrameType(3)},
		{"FrameTrailer", FrameTrailer, FrameType(4)},
		{"FrameList", FrameList, FrameType(5)},

		{"OpGet", OpGet, Op(1)},
		{"OpStat", OpStat, Op(2)},
		{"OpLs", OpLs, Op(3)},
		{"OpList", OpList, Op(4)},

		{"DigestSHA256", DigestSHA256, byte(1)},
		{"DigestCRC64", DigestCRC64, byte(3)},
		{"MaxDigest", MaxDigest, 64},

		{"FrameHeaderLen", FrameHeaderLen, 5},
		{"MaxFrame", MaxFrame, 65536},
		{"MaxName", MaxName, 4096},
		{"MaxHopLen", MaxHopLen, 300},
		{"MaxMessage", MaxMessage, 1024},
		{"DefaultMaxHops", DefaultMaxHops, 16},
		{"HardMaxHops", HardMaxHops, 255},

		{"respCached", respCached, 1},
		{"respHasDigest", respHasDigest, 2},
		{"entryFixed", entryFixed, 11},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		s    Status
		code byte
		name string
	}{
		{StatusOK, 0, "ok"},
		{StatusNotFound, 1, "not found"},
		{StatusBadRequest, 2, "bad request"},
		{StatusNotAllowed, 3, "not allowed"},
		{StatusUnreachable, 4, "refused"},
		{StatusNotNode, 5, "not a relay node"},
		{StatusTimeout, 6, "timed out"},
		{StatusTooManyHops, 7, "too many hops"},
		{StatusNoFiles, 8, "serves no files"},
		{StatusNotRegular, 9, "not a regular file"},
		{StatusBusy, 10, "busy"},
		{StatusInternal, 11, "internal error"},
		{StatusBadOp, 12, "unknown operation"},
		{StatusBadOffset, 13, "bad offset"},
		{StatusAuth, 14, "authentication failed"},
		// Unknown codes still print, so a newer peer's code is readable.
		{Status(15), 15, "status(15)"},
		{Status(255), 255, "status(255)"},
	}
	for _, tt := range tests {
		if byte(tt.s) != tt.code {
			t.Errorf("%s: got code %d, want %d", tt.name, byte(tt.s), tt.code)
		}
		if got := tt.s.String(); got != tt.name {
			t.Errorf("Status(%d).String(): got %q, want %q", tt.code, got, tt.name)
		}
	}
	// Every code below the first unknown one has a name: a new code must
	// be added to this test (and docs/protocol.md) with its name.
	if got, want := len(statusNames), 15; got != want {
		t.Errorf("len(statusNames): got %d, want %d; pin the new code above", got, want)
	}
}

func TestOpString(t *testing.T) {
	tests := []struct {
		op   Op
		want string
	}{
		{OpGet, "get"},
		{OpStat, "stat"},
		{OpLs, "ls"},
		{OpList, "list"},
		{Op(0), "op(0)"},
		{Op(5), "op(5)"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("Op(%d).String(): got %q, want %q", byte(tt.op), got, tt.want)
		}
	}
}

func TestFrameHeaderLayout(t *testing.T) {
	tests := []struct {
		t    FrameType
		n    int
		want string
	}{
		{FrameStart, 0x01020304, "03 01020304"},
		{FrameRequest, 0, "01 00000000"},
		{FrameList, MaxFrame, "05 00010000"},
		{FrameType(0xff), 0xfffffffe, "ff fffffffe"},
	}
	for _, tt := range tests {
		got := AppendFrameHeader([]byte("x"), tt.t, tt.n)
		want := append([]byte("x"), wireHex(t, tt.want)...)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendFrameHeader(%d, %d): got % x, want % x", tt.t, tt.n, got, want)
		}
	}
}

func TestPinnedRequest(t *testing.T) {
	req := Request{Op: OpGet, Depth: 1, Route: Route{"127.0.0.1:7002", "127.0.0.1:7000"}, Name: "a.txt"}
	want := wireHex(t, "01 0000002a"+ // REQUEST, 42 bytes
		"| 01 | 01 | 02"+ // op get, depth 1, 2 hops
		"| 000e"+hexStr("127.0.0.1:7002")+
		"| 000e"+hexStr("127.0.0.1:7000")+
		"| 0005"+hexStr("a.txt"))
	got, err := req.Append([]byte("prefix"))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("Append did not keep dst: got %q", got)
	}
	if got := got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Errorf("request frame:\ngot  % x\nwant % x", got, want)
	}
	dec, err := ReadRequest(bytes.NewReader(want), DefaultMaxHops)
	if err != nil {
		t.Fatalf("ReadRequest: %v", err)
	}
	if !reflect.DeepEqual(dec, req) {
		t.Errorf("ReadRequest: got %+v, want %+v", dec, req)
	}
}

func TestPinnedResponse(t *testing.T) {
	digest := [32]byte(seq(0, 32))
	tests := []struct {
		name string
		resp Response
		want string
	}{
		{
			name: "ok",
			resp: Response{Status: StatusOK, HopIndex: 2, Hop: "127.0.0.1:7002", Size: 1234, ModTime: 1700000000123456789},
			want: "02 00000025" + // RESPONSE, 37 bytes
				"| 00 | 00 | 02" + // status ok, no flags, hop 2
				"| 00000000000004d2" + // size 1234
				"| 17979cfe3d85cd15" + // mtime
				"| 000e" + hexStr("127.0.0.1:7002") +
				"| 0000", // no message
		},
		{
			name: "cached with digest",
			resp: Response{Status: StatusOK, Cached: true, HasDigest: true, Digest: digest, HopIndex: 2,
				Hop: "127.0.0.1:7002", Size: 1234, ModTime: 1700000000123456789},
			want: "02 00000045" + // 69 bytes
				"| 00 | 03 | 02" + // flags cached|digest
				"| 00000000000004d2 | 17979cfe3d85cd15" +
				"| 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
				"| 000e" + hexStr("127.0.0.1:7002") +
				"| 0000",
		},
		{
			name: "cached only",
			resp: Response{Status: StatusOK, Cached: true, Size: 5, ModTime: -1},
			want: "02 00000017" + // 23 bytes
				"| 00 | 01 | 00" +
				"| 0000000000000005 | ffffffffffffffff" + // mtime -1
				"| 0000 | 0000",
		},
		{
			name: "relay error",
			resp: Response{Status: StatusNotAllowed, HopIndex: 1, Hop: "10.0.0.1:22", Message: "not allowed: 10.0.0.1"},
			want: "02 00000037" + // 55 bytes
				"| 03 | 00 | 01" + // not allowed, hop 1
				"| 0000000000000000 | 0000000000000000" +
				"| 000b" + hexStr("10.0.0.1:22") +
				"| 0015" + hexStr("not allowed: 10.0.0.1"),
		},
	}
	for _, tt := range tests {
		want := wireHex(t, tt.want)
		if got := tt.resp.Append(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: response frame:\ngot  % x\nwant % x", tt.name, got, want)
		}
		got, err := ReadResponse(bytes.NewReader(want))
		if err != nil {
			t.Errorf("%s: ReadResponse: %v", tt.name, err)
			continue
		}
		if got != tt.resp {
			t.Errorf("%s: ReadResponse: got %+v, want %+v", tt.name, got, tt.resp)
		}
	}
}

func TestPinnedStart(t *testing.T) {
	tests := []struct {
		off  int64
		want string
	}{
		{0, "03 00000008 | 0000000000000000"},
		{0x0102030405060708, "03 00000008 | 0102030405060708"},
	}
	for _, tt := range tests {
		want := wireHex(t, tt.want)
		if got := AppendStart(nil, tt.off); !bytes.Equal(got, want) {
			t.Errorf("AppendStart(%d): got % x, want % x", tt.off, got, want)
		}
		off, err := ReadStart(bytes.NewReader(want))
		if err != nil || off != tt.off {
			t.Errorf("ReadStart(% x): got %d, %v, want %d", want, off, err, tt.off)
		}
	}
}

func TestPinnedTrailer(t *testing.T) {
	sha := [32]byte(seq(0xa0, 32))
	tests := []struct {
		name string
		tr   Trailer
		want string
	}{
		{
			name: "crc64 and sha256",
			tr:   Trailer{HasCRC64: true, CRC64: 0xae8b14860a799888, HasSHA256: true, SHA256: sha},
			want: "04 0000002c" + // TRAILER, 44 bytes
				"| 03 | 08 | ae8b14860a799888" + // CRC-64/NVME (of "123456789"), 8 bytes
				"| 01 | 20 | a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", // SHA-256, 32 bytes
		},
		{"crc64 only", Trailer{HasCRC64: true, CRC64: 1}, "04 0000000a | 03 08 0000000000000001"},
		{"sha256 only", Trailer{HasSHA256: true, SHA256: sha},
			"04 00000022 | 01 20 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"},
		{"no digests", Trailer{}, "04 00000000"},
	}
	for _, tt := range tests {
		want := wireHex(t, tt.want)
		if got := tt.tr.Append(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: trailer frame:\ngot  % x\nwant % x", tt.name, got, want)
		}
		got, err := ReadTrailer(bytes.NewReader(want))
		if err != nil || got != tt.tr {
			t.Errorf("%s: ReadTrailer: got %+v, %v, want %+v", tt.name, got, err, tt.tr)
		}
	}
}

func TestPinnedList(t *testing.T) {
	var buf bytes.Buffer
	lw := NewListWriter(&buf)
	for _, e := range []Entry{{Name: "a.txt", Size: 5, Cached: true}, {Name: "dir/b", Size: 0}} {
		if err := lw.Add(e); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("Add wrote %d bytes before Close, want 0 (entries are batched)", buf.Len())
	}
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := wireHex(t, "05 00000022"+ // LIST, 34 bytes
		"| 0002"+ // 2 entries
		"| 01 | 0000000000000005 | 0005"+hexStr("a.txt")+ // cached, size 5
		"| 00 | 0000000000000000 | 0005"+hexStr("dir/b")+
		"| 05 00000002 | 0000") // the empty chunk that ends the listing
	if got := buf.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("listing:\ngot  % x\nwant % x", got, want)
	}

	buf.Reset()
	lw = NewListWriter(&buf)
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := buf.Bytes(), wireHex(t, "05 00000002 0000"); !bytes.Equal(got, want) {
		t.Errorf("empty listing: got % x, want % x", got, want)
	}
}

// ---- (b) round trips ----

// hops returns n distinct hop addresses.
func hops(n int) Route {
	r := make(Route, n)
	for i := range r {
		r[i] = fmt.Sprintf("10.0.%d.%d:%d", i/256, i%256, 7000+i)
	}
	return r
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"get one hop", Request{Op: OpGet, Route: Route{"127.0.0.1:7000"}, Name: "a.txt"}},
		{"get three hops", Request{Op: OpGet, Route: Route{"a:1", "b:2", "c:3"}, Name: "dir/file name.bin"}},
		{"stat", Request{Op: OpStat, Depth: 3, Route: Route{"[::1]:7000"}, Name: "x"}},
		{"ls no name", Request{Op: OpLs, Route: Route{"localhost:7000"}}},
		{"list", Request{Op: OpList, Depth: 7, Route: hops(2)}},
		{"unknown op passes the codec", Request{Op: Op(200), Route: hops(1), Name: "n"}},
		{"max name", Request{Op: OpGet, Route: hops(1), Name: strings.Repeat("n", MaxName)}},
		{"max hop length", Request{Op: OpGet, Route: Route{strings.Repeat("h", MaxHopLen-5) + ":7000"}, Name: "n"}},
		{"default max hops", Request{Op: OpGet, Route: hops(DefaultMaxHops), Name: "n"}},
		{"hard max hops", Request{Op: OpGet, Route: hops(HardMaxHops), Name: "n"}},
		{"deepest", Request{Op: OpGet, Depth: HardMaxHops - 1, Route: hops(1), Name: "n"}},
		{"binary name", Request{Op: OpGet, Route: hops(1), Name: "\x00\xff\n"}},
	}
	for _, tt := range tests {
		frame, err := tt.req.Append(nil)
		if err != nil {
			t.Errorf("%s: Append: %v", tt.name, err)
			continue
		}
		if got, want := len(frame)-FrameHeaderLen, int(frame[1])<<24|int(frame[2])<<16|int(frame[3])<<8|int(frame[4]); got != want {
			t.Errorf("%s: payload of %d bytes, header says %d", tt.name, got, want)
		}
		got, err := DecodeRequest(frame[FrameHeaderLen:], HardMaxHops)
		if err != nil {
			t.Errorf("%s: DecodeRequest: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.req) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.req)
		}
	}
}

// TestSplitFrame checks SplitFrame on a request followed by a START, as a
// relay finds them in a stream's received bytes: the frame, what follows
// it, no allocation, and the errors for a cut or oversized frame.
func TestSplitFrame(t *testing.T) {
	req := Request{Op: OpGet, Route: hops(3), Name: "a.txt"}
	frame, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := AppendStart(append([]byte(nil), frame...), 7)
	typ, p, rest, err := SplitFrame(b)
	if err != nil || typ != FrameRequest || !bytes.Equal(p, frame[FrameHeaderLen:]) || !bytes.Equal(rest, b[len(frame):]) {
		t.Fatalf("SplitFrame = %d, %d-byte payload, %d after, %v; want the request and the START after it", typ, len(p), len(rest), err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _, _, _ = SplitFrame(b) }); allocs != 0 {
		t.Fatalf("SplitFrame made %.1f allocations, want 0", allocs)
	}
	for _, cut := range []int{0, 1, FrameHeaderLen - 1, FrameHeaderLen, len(frame) - 1} {
		if _, _, _, err := SplitFrame(frame[:cut]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("SplitFrame of %d of %d bytes: %v, want io.ErrUnexpectedEOF", cut, len(frame), err)
		}
	}
	if _, _, _, err := SplitFrame(AppendFrameHeader(nil, FrameRequest, MaxFrame+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("SplitFrame of a frame over MaxFrame: %v, want ErrTooLarge", err)
	}
}

func TestRequestAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"no hops", Request{Op: OpGet, Name: "n"}, ErrMalformed},
		{"empty route slice", Request{Op: OpGet, Route: Route{}, Name: "n"}, ErrMalformed},
		{"name too long", Request{Op: OpGet, Route: hops(1), Name: strings.Repeat("n", MaxName+1)}, ErrTooLarge},
		{"too many hops", Request{Op: OpGet, Route: hops(HardMaxHops + 1), Name: "n"}, ErrTooManyHops},
		{"empty hop", Request{Op: OpGet, Route: Route{"a:1", ""}, Name: "n"}, ErrMalformed},
		{"hop too long", Request{Op: OpGet, Route: Route{strings.Repeat("h", MaxHopLen+1)}, Name: "n"}, ErrMalformed},
		{"negative depth", Request{Op: OpGet, Depth: -1, Route: hops(1), Name: "n"}, ErrMalformed},
		{"depth past hard max", Request{Op: OpGet, Depth: HardMaxHops, Route: hops(1), Name: "n"}, ErrMalformed},
		{"depth plus hops past hard max", Request{Op: OpGet, Depth: 200, Route: hops(56), Name: "n"}, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := tt.req.Append([]byte("keep"))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v does not wrap ErrMalformed", tt.name, err)
		}
		if string(got) != "keep" {
			t.Errorf("%s: got dst %q after an error, want it unchanged", tt.name, got)
		}
	}
}

func TestDecodeRequestMaxHops(t *testing.T) {
	tests := []struct {
		hops, maxHops int
		want          error
	}{
		{1, 1, nil},
		{2, 1, ErrTooManyHops},
		{DefaultMaxHops, DefaultMaxHops, nil},
		{DefaultMaxHops + 1, DefaultMaxHops, ErrTooManyHops},
		{HardMaxHops, DefaultMaxHops, ErrTooManyHops},
		{HardMaxHops, HardMaxHops, nil},
		{1, 0, ErrTooManyHops},
	}
	for _, tt := range tests {
		req := Request{Op: OpGet, Route: hops(tt.hops), Name: "n"}
		frame, err := req.Append(nil)
		if err != nil {
			t.Fatalf("Append %d hops: %v", tt.hops, err)
		}
		got, err := DecodeRequest(frame[FrameHeaderLen:], tt.maxHops)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%d hops, max %d: got error %v, want %v", tt.hops, tt.maxHops, err, tt.want)
		}
		if tt.want != nil && len(got.Route) != 0 {
			t.Errorf("%d hops, max %d: decoded %d hops past the limit", tt.hops, tt.maxHops, len(got.Route))
		}
		// The same limit applies through ReadRequest.
		if _, err := ReadRequest(bytes.NewReader(frame), tt.maxHops); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("ReadRequest %d hops, max %d: got error %v, want %v", tt.hops, tt.maxHops, err, tt.want)
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	hop := func(s string) string { return fmt.Sprintf("%04x", len(s)) + hexStr(s) }
	long := func(n int) string { return fmt.Sprintf("%04x", n) + strings.Repeat("61", n) }
	tests := []struct {
		name    string
		payload string
		want    error
	}{
		{"empty", "", ErrMalformed},
		{"op only", "01", ErrMalformed},
		{"no hop count", "01 00", ErrMalformed},
		{"zero hops", "01 00 00 | 0000", ErrMalformed},
		{"hop count past payload", "01 00 02" + hop("a:1") + "0000", ErrMalformed},
		{"no name", "01 00 01" + hop("a:1"), ErrMalformed},
		{"name length past payload", "01 00 01" + hop("a:1") + "0005 6162", ErrMalformed},
		{"trailing byte", "01 00 01" + hop("a:1") + "0000 | 00", ErrMalformed},
		{"empty hop", "01 00 01 0000 0000", ErrMalformed},
		{"hop too long", "01 00 01" + long(MaxHopLen+1) + "0000", ErrMalformed},
		{"hop length ffff", "01 00 01 ffff", ErrMalformed},
		{"name too long", "01 00 01" + hop("a:1") + long(MaxName+1), ErrMalformed},
		{"depth 255", "01 ff 01" + hop("a:1") + "0000", ErrMalformed},
		{"255 hops over max", "01 00 ff", ErrTooManyHops},
	}
	for _, tt := range tests {
		_, err := DecodeRequest(wireHex(t, tt.payload), DefaultMaxHops)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
	}
	// Any truncation of a valid payload is an error.
	req := Request{Op: OpGet, Depth: 1, Route: Route{"127.0.0.1:7002", "127.0.0.1:7000"}, Name: "a.txt"}
	frame, _ := req.Append(nil)
	p := frame[FrameHeaderLen:]
	for i := range len(p) {
		if _, err := DecodeRequest(p[:i], DefaultMaxHops); !errors.Is(err, ErrMalformed) {
			t.Errorf("payload cut to %d of %d bytes: got error %v, want ErrMalformed", i, len(p), err)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		resp Response
	}{
		{"zero", Response{}},
		{"ok", Response{Status: StatusOK, HopIndex: 2, Hop: "127.0.0.1:7002", Size: 1 << 40, ModTime: 1700000000123456789}},
		{"cached", Response{Status: StatusOK, Cached: true, Size: 1}},
		{"digest", Response{Status: StatusOK, HasDigest: true, Digest: [32]byte(seq(7, 32)), Size: 32}},
		{"max size", Response{Status: StatusOK, Size: 1<<63 - 1, ModTime: -1 << 63}},
		{"max hop index", Response{Status: StatusTimeout, HopIndex: HardMaxHops, Hop: "h:1"}},
		{"max hop and message", Response{Status: StatusInternal, Hop: strings.Repeat("h", MaxHopLen), Message: strings.Repeat("m", MaxMessage)}},
		{"unknown status", Response{Status: Status(99), Message: "from a newer node"}},
	}
	for _, tt := range tests {
		frame := tt.resp.Append(nil)
		got, err := ReadResponse(bytes.NewReader(frame))
		if err != nil {
			t.Errorf("%s: ReadResponse: %v", tt.name, err)
			continue
		}
		if got != tt.resp {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.resp)
		}
	}
}

func TestResponseAppendTruncates(t *testing.T) {
	tests := []struct {
		name             string
		hop, msg         string
		wantHop, wantMsg string
	}{
		{"long message", "h:1", strings.Repeat("m", MaxMessage+100), "h:1", strings.Repeat("m", MaxMessage)},
		{"long hop", strings.Repeat("h", MaxHopLen+5), "x", strings.Repeat("h", MaxHopLen), "x"},
		// A cut inside a multi-byte rune drops the partial rune.
		{"utf-8 message", "h:1", "x" + strings.Repeat("é", MaxMessage), "h:1", "x" + strings.Repeat("é", (MaxMessage-1)/2)},
		{"utf-8 hop", "é" + strings.Repeat("h", MaxHopLen), "", "é" + strings.Repeat("h", MaxHopLen-2), ""},
	}
	for _, tt := range tests {
		frame := (&Response{Status: StatusInternal, Hop: tt.hop, Message: tt.msg}).Append(nil)
		got, err := ReadResponse(bytes.NewReader(frame))
		if err != nil {
			t.Errorf("%s: ReadResponse: %v", tt.name, err)
			continue
		}
		if got.Hop != tt.wantHop || got.Message != tt.wantMsg {
			t.Errorf("%s: got hop %d bytes, message %d bytes; want %d, %d", tt.name,
				len(got.Hop), len(got.Message), len(tt.wantHop), len(tt.wantMsg))
		}
		if !utf8.ValidString(got.Hop) || !utf8.ValidString(got.Message) {
			t.Errorf("%s: truncation left invalid UTF-8", tt.name)
		}
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"empty", ""},
		{"status only", "00"},
		{"no size", "00 00 00"},
		{"size over MaxInt64", "00 00 00 | 8000000000000000 | 0000000000000000 | 0000 | 0000"},
		{"size ffff...", "00 00 00 | ffffffffffffffff | 0000000000000000 | 0000 | 0000"},
		{"digest flag, no digest", "00 02 00 | 0000000000000000 | 0000000000000000 | 0000 | 0000"},
		{"hop too long", "00 00 00 | 0000000000000000 | 0000000000000000 | 012d" + strings.Repeat("61", MaxHopLen+1) + "| 0000"},
		{"message too long", "00 00 00 | 0000000000000000 | 0000000000000000 | 0000 | 0401" + strings.Repeat("61", MaxMessage+1)},
		{"message length past payload", "00 00 00 | 0000000000000000 | 0000000000000000 | 0000 | 0003 6161"},
		{"trailing byte", "00 00 00 | 0000000000000000 | 0000000000000000 | 0000 | 0000 | 00"},
	}
	for _, tt := range tests {
		_, err := DecodeResponse(wireHex(t, tt.payload))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got error %v, want ErrMalformed", tt.name, err)
		}
	}
	p := (&Response{Status: StatusOK, HasDigest: true, Hop: "h:1", Message: "m", Size: 3}).Append(nil)[FrameHeaderLen:]
	for i := range len(p) {
		if _, err := DecodeResponse(p[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("payload cut to %d of %d bytes: got error %v, want ErrMalformed", i, len(p), err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame string
	}{
		{"offset over MaxInt64", "03 00000008 8000000000000000"},
		{"short payload", "03 00000007 00000000000000"},
		{"long payload", "03 00000009 000000000000000000"},
		{"empty payload", "03 00000000"},
	}
	for _, tt := range tests {
		if _, err := ReadStart(bytes.NewReader(wireHex(t, tt.frame))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got error %v, want ErrMalformed", tt.name, err)
		}
	}
}

func TestDecodeTrailer(t *testing.T) {
	sha := "01 20" + strings.Repeat("5a", 32)
	tests := []struct {
		name    string
		payload string
		want    Trailer
		err     error
	}{
		{"empty", "", Trailer{}, nil},
		{"sha256 before crc64", sha + "| 03 08 0102030405060708",
			Trailer{HasCRC64: true, CRC64: 0x0102030405060708, HasSHA256: true, SHA256: [32]byte(bytes.Repeat([]byte{0x5a}, 32))}, nil},
		// Unknown algorithms are skipped, so a trailer can grow.
		{"unknown algorithm skipped", "09 03 aabbcc | 03 08 0102030405060708 | 00 00",
			Trailer{HasCRC64: true, CRC64: 0x0102030405060708}, nil},
		// 2 was CRC-32C, which the CRC-64 replaced: a trailer of an older
		// terminal decodes, with no CRC in it.
		{"retired crc32c skipped", "02 04 01020304 |" + sha,
			Trailer{HasSHA256: true, SHA256: [32]byte(bytes.Repeat([]byte{0x5a}, 32))}, nil},
		{"longest unknown digest", "09 40" + strings.Repeat("00", MaxDigest), Trailer{}, nil},
		{"digest over MaxDigest", "09 41" + strings.Repeat("00", MaxDigest+1), Trailer{}, ErrMalformed},
		{"crc64 of 4 bytes", "03 04 01020304", Trailer{}, ErrMalformed},
		{"sha256 of 31 bytes", "01 1f" + strings.Repeat("00", 31), Trailer{}, ErrMalformed},
		{"digest past payload", "03 08 0102", Trailer{}, ErrMalformed},
		{"algorithm without length", "03 08 0102030405060708 | 03", Trailer{}, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := DecodeTrailer(wireHex(t, tt.payload))
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	for _, tr := range []Trailer{
		{},
		{HasCRC64: true},
		{HasCRC64: true, CRC64: 0xffffffffffffffff},
		{HasSHA256: true, SHA256: [32]byte(seq(1, 32))},
		{HasCRC64: true, CRC64: 7, HasSHA256: true, SHA256: [32]byte(seq(9, 32))},
	} {
		got, err := ReadTrailer(bytes.NewReader(tr.Append(nil)))
		if err != nil || got != tr {
			t.Errorf("round trip: got %+v, %v, want %+v", got, err, tr)
		}
	}
}

// listFrames writes entries with a ListWriter and returns the stream.
func listFrames(tb testing.TB, entries []Entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	lw := NewListWriter(&buf)
	for _, e := range entries {
		if err := lw.Add(e); err != nil {
			tb.Fatalf("Add(%q): %v", e.Name, err)
		}
	}
	if err := lw.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// frameSizes splits a stream into frames and returns their payload sizes.
func frameSizes(tb testing.TB, stream []byte, want FrameType) []int {
	tb.Helper()
	r := bytes.NewReader(stream)
	var sizes []int
	for r.Len() > 0 {
		typ, p, err := ReadFrame(r, nil)
		if err != nil {
			tb.Fatalf("frame %d: %v", len(sizes), err)
		}
		if typ != want {
			tb.Fatalf("frame %d: got type %d, want %d", len(sizes), typ, want)
		}
		sizes = append(sizes, len(p))
	}
	return sizes
}

func TestListRoundTrip(t *testing.T) {
	many := make([]Entry, 20000)
	for i := range many {
		many[i] = Entry{Name: fmt.Sprintf("dir%d/file-%05d.txt", i%7, i), Size: int64(i) * 4097, Cached: i%3 == 0}
	}
	longNames := make([]Entry, 100)
	for i := range longNames {
		longNames[i] = Entry{Name: strings.Repeat(string(rune('a'+i%26)), MaxName), Size: int64(i)}
	}
	emptyNames := make([]Entry, 20000) // the smallest entries: most per frame
	tests := []struct {
		name       string
		entries    []Entry
		wantFrames int // including the empty end frame
	}{
		{"one", []Entry{{Name: "a", Size: 1}}, 2},
		{"max size", []Entry{{Name: "big", Size: 1<<63 - 1, Cached: true}}, 2},
		{"thousands", many, 0},
		{"long names", longNames, 1 + (100+14)/15}, // 15 entries of 4107 bytes per frame
		{"empty names", emptyNames, 1 + (20000+5956)/5957},
	}
	for _, tt := range tests {
		stream := listFrames(t, tt.entries)
		sizes := frameSizes(t, stream, FrameList)
		if tt.wantFrames != 0 && len(sizes) != tt.wantFrames {
			t.Errorf("%s: got %d frames, want %d", tt.name, len(sizes), tt.wantFrames)
		}
		if len(sizes) < 2 && len(tt.entries) > 0 {
			t.Errorf("%s: got %d frames, want data and an end frame", tt.name, len(sizes))
		}
		for i, n := range sizes {
			if n > MaxFrame {
				t.Errorf("%s: frame %d of %d bytes, max %d", tt.name, i, n, MaxFrame)
			}
			if last := i == len(sizes)-1; last != (n == 2) {
				t.Errorf("%s: frame %d of %d has %d bytes", tt.name, i, len(sizes), n)
			}
		}
		if tt.name == "thousands" && len(sizes) < 4 {
			t.Errorf("%s: %d entries fit in %d frames, want them split over several", tt.name, len(tt.entries), len(sizes))
		}
		r := bytes.NewReader(append(stream, "after"...))
		got, err := ReadList(r, len(tt.entries))
		if err != nil {
			t.Errorf("%s: ReadList: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.entries) {
			t.Errorf("%s: got %d entries back, want %d equal ones", tt.name, len(got), len(tt.entries))
		}
		if rest, _ := io.ReadAll(r); string(rest) != "after" {
			t.Errorf("%s: ReadList left %q, want %q", tt.name, rest, "after")
		}
	}
}

func TestReadListMax(t *testing.T) {
	entries := make([]Entry, 100)
	for i := range entries {
		entries[i] = Entry{Name: fmt.Sprint(i), Size: int64(i)}
	}
	stream := listFrames(t, entries)
	tests := []struct {
		max  int
		want error
	}{
		{100, nil},
		{1000, nil},
		{99, ErrTooLarge},
		{0, ErrTooLarge},
	}
	for _, tt := range tests {
		got, err := ReadList(bytes.NewReader(stream), tt.max)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("max %d: got error %v, want %v", tt.max, err, tt.want)
		}
		if len(got) > tt.max {
			t.Errorf("max %d: got %d entries", tt.max, len(got))
		}
	}
	// An empty listing is fine even with max 0.
	if got, err := ReadList(bytes.NewReader(listFrames(t, nil)), 0); err != nil || len(got) != 0 {
		t.Errorf("empty listing: got %v, %v, want no entries and no error", got, err)
	}
}

func TestReadListErrors(t *testing.T) {
	one := listFrames(t, []Entry{{Name: "a", Size: 1}})
	withoutEnd := one[:len(one)-7]
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"no end frame", withoutEnd, io.EOF},
		{"cut in end frame", one[:len(one)-1], io.ErrUnexpectedEOF},
		{"cut in data frame", one[:10], io.ErrUnexpectedEOF},
		{"response instead", append(withoutEnd, (&Response{}).Append(nil)...), ErrMalformed},
		{"empty payload", wireHex(t, "05 00000000"), ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := ReadList(bytes.NewReader(tt.stream), 10); !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDecodeListErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"empty", ""},
		{"one byte", "00"},
		{"count past payload", "0002 | 00 0000000000000001 0001 61"},
		{"count ffff, no entries", "ffff"},
		{"size over MaxInt64", "0001 | 00 8000000000000000 0000"},
		{"name too long", "0001 | 00 0000000000000000 1001" + strings.Repeat("61", MaxName+1)},
		{"name past payload", "0001 | 00 0000000000000000 0002 61"},
		{"trailing byte", "0001 | 00 0000000000000000 0000 | 00"},
		{"end frame with trailing byte", "0000 00"},
	}
	for _, tt := range tests {
		if _, err := DecodeList(wireHex(t, tt.payload)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got error %v, want ErrMalformed", tt.name, err)
		}
	}
}

func TestListWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"name too long", Entry{Name: strings.Repeat("n", MaxName+1)}},
		{"negative size", Entry{Name: "n", Size: -1}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := NewListWriter(&buf).Add(tt.e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got error %v, want ErrMalformed", tt.name, err)
		}
	}
	errW := errWriter{errors.New("boom")}
	lw := NewListWriter(errW)
	for i := 0; i < 10000; i++ {
		if err := lw.Add(Entry{Name: "n"}); err != nil {
			if !errors.Is(err, errW.err) {
				t.Errorf("Add: got error %v, want %v", err, errW.err)
			}
			break
		}
	}
	if err := NewListWriter(errW).Close(); !errors.Is(err, errW.err) {
		t.Errorf("Close: got error %v, want %v", err, errW.err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// ---- (c) ReadFrame on hostile streams ----

// headerOnlyReader serves hdr and fails the test if anything reads past it.
type headerOnlyReader struct {
	tb  testing.TB
	hdr []byte
}

func (r *headerOnlyReader) Read(p []byte) (int, error) {
	if len(r.hdr) == 0 {
		r.tb.Errorf("read of %d bytes past the frame header", len(p))
		return 0, io.EOF
	}
	n := copy(p, r.hdr)
	r.hdr = r.hdr[n:]
	return n, nil
}

func TestReadFrameTooLarge(t *testing.T) {
	for _, n := range []uint32{MaxFrame + 1, 1 << 20, 1 << 31, 0xffffffff} {
		hdr := AppendFrameHeader(nil, FrameList, int(n))
		r := &headerOnlyReader{tb: t}
		read := func() {
			r.hdr = hdr
			_, p, err := ReadFrame(r, nil)
			if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrMalformed) || p != nil {
				t.Errorf("length %d: got %d bytes, error %v; want ErrTooLarge", n, len(p), err)
			}
		}
		// Only the error is allocated, never anything near the payload.
		if got := allocBytes(50, read); got > 1024 {
			t.Errorf("length %d: allocated %d bytes per read, want < 1024", n, got)
		}
	}
	// Check that allocBytes would notice: a frame of MaxFrame is read into
	// a new slice of that size when no buffer is given.
	frame := append(AppendFrameHeader(nil, FrameList, MaxFrame), make([]byte, MaxFrame)...)
	got := allocBytes(10, func() {
		if _, _, err := ReadFrame(bytes.NewReader(frame), nil); err != nil {
			t.Errorf("frame of MaxFrame bytes: %v", err)
		}
	})
	if got < MaxFrame {
		t.Errorf("reading a %d-byte frame allocated %d bytes; the allocation check is broken", MaxFrame, got)
	}
}

func TestReadFrameBuffer(t *testing.T) {
	frame := append(AppendFrameHeader(nil, FrameStart, 8), seq(1, 8)...)
	buf := make([]byte, 3, 16)
	_, p, err := ReadFrame(bytes.NewReader(frame), buf)
	if err != nil {
		t.Fatal(err)
	}
	if &p[0] != &buf[:1][0] {
		t.Errorf("payload of 8 bytes not read into a buffer of capacity 16")
	}
	small := make([]byte, 0, 4)
	_, p, err = ReadFrame(bytes.NewReader(frame), small)
	if err != nil || !bytes.Equal(p, seq(1, 8)) {
		t.Errorf("payload larger than buffer: got % x, %v", p, err)
	}
	if &p[0] == &small[:1][0] {
		t.Errorf("payload of 8 bytes written into a buffer of capacity 4")
	}
	if got := allocBytes(20, func() { ReadFrame(bytes.NewReader(frame), buf) }); got > 64 {
		t.Errorf("reading into a big enough buffer allocated %d bytes per frame", got)
	}
}

func TestReadFrameShort(t *testing.T) {
	full := append(AppendFrameHeader(nil, FrameRequest, 10), seq(0, 10)...)
	tests := []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty stream", nil, io.EOF},
		{"partial header", full[:3], io.ErrUnexpectedEOF},
		{"header only", full[:FrameHeaderLen], io.ErrUnexpectedEOF},
		{"short payload", full[:len(full)-1], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, r := range []io.Reader{bytes.NewReader(tt.stream), iotest.OneByteReader(bytes.NewReader(tt.stream))} {
			_, _, err := ReadFrame(r, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
			}
			if tt.want == io.ErrUnexpectedEOF && errors.Is(err, io.EOF) {
				t.Errorf("%s: error %v is io.EOF, a clean end; want it unexpected", tt.name, err)
			}
		}
	}
	// A reader error other than EOF comes through as it is.
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(full[:7]), iotest.ErrReader(boom))
	if _, _, err := ReadFrame(r, nil); !errors.Is(err, boom) {
		t.Errorf("reader error: got %v, want %v", err, boom)
	}
}

func TestReadFrameZeroLength(t *testing.T) {
	typ, p, err := ReadFrame(bytes.NewReader(wireHex(t, "07 00000000")), nil)
	if err != nil || typ != 7 || len(p) != 0 {
		t.Errorf("empty frame of unknown type: got %d, %d bytes, %v; want 7, 0, nil", typ, len(p), err)
	}
}

// frameReaders lists the typed readers, each as a function of a stream.
var frameReaders = []struct {
	name string
	typ  FrameType
	read func(io.Reader) error
}{
	{"ReadRequest", FrameRequest, func(r io.Reader) error { _, err := ReadRequest(r, DefaultMaxHops); return err }},
	{"ReadResponse", FrameResponse, func(r io.Reader) error { _, err := ReadResponse(r); return err }},
	{"ReadStart", FrameStart, func(r io.Reader) error { _, err := ReadStart(r); return err }},
	{"ReadTrailer", FrameTrailer, func(r io.Reader) error { _, err := ReadTrailer(r); return err }},
	{"ReadList", FrameList, func(r io.Reader) error { _, err := ReadList(r, 10); return err }},
}

// validFrames holds one valid frame (or, for LIST, a whole listing) per type.
func validFrames(tb testing.TB) map[FrameType][]byte {
	req, err := (&Request{Op: OpGet, Depth: 1, Route: Route{"127.0.0.1:7002", "127.0.0.1:7000"}, Name: "a.txt"}).Append(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return map[FrameType][]byte{
		FrameRequest:  req,
		FrameResponse: (&Response{Status: StatusOK, Size: 5, Hop: "127.0.0.1:7000"}).Append(nil),
		FrameStart:    AppendStart(nil, 3),
		FrameTrailer:  (&Trailer{HasCRC64: true, CRC64: 1, HasSHA256: true, SHA256: [32]byte(seq(0, 32))}).Append(nil),
		FrameList:     listFrames(tb, []Entry{{Name: "a.txt", Size: 5}, {Name: "b", Size: 7, Cached: true}}),
	}
}

func TestReadWrongFrameType(t *testing.T) {
	frames := validFrames(t)
	for _, rd := range frameReaders {
		for typ, frame := range frames {
			if typ == rd.typ {
				continue
			}
			err := rd.read(bytes.NewReader(frame))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s of a type %d frame: got error %v, want ErrMalformed", rd.name, typ, err)
			}
		}
		unknown := wireHex(t, "09 00000001 00")
		if err := rd.read(bytes.NewReader(unknown)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s of a type 9 frame: got error %v, want ErrMalformed", rd.name, err)
		}
	}
}

func TestReadersStopAtFrameEnd(t *testing.T) {
	frames := validFrames(t)
	const tail = "\x02\x00\x00\x00\x00next frame"
	for _, rd := range frameReaders {
		stream := append(append([]byte(nil), frames[rd.typ]...), tail...)
		for _, slow := range []bool{false, true} {
			br := bytes.NewReader(stream)
			var r io.Reader = br
			if slow {
				r = iotest.OneByteReader(br)
			}
			if err := rd.read(r); err != nil {
				t.Errorf("%s (one byte reads %v): %v", rd.name, slow, err)
				continue
			}
			if rest, _ := io.ReadAll(br); string(rest) != tail {
				t.Errorf("%s (one byte reads %v): left %q, want %q", rd.name, slow, rest, tail)
			}
		}
	}
	// ReadFrame itself, frame after frame.
	var stream []byte
	for _, typ := range []FrameType{FrameRequest, FrameResponse, FrameStart, FrameTrailer} {
		stream = append(stream, frames[typ]...)
	}
	r := bytes.NewReader(stream)
	for _, typ := range []FrameType{FrameRequest, FrameResponse, FrameStart, FrameTrailer} {
		before := r.Len()
		got, p, err := ReadFrame(r, nil)
		if err != nil || got != typ {
			t.Fatalf("frame of type %d: got type %d, %v", typ, got, err)
		}
		if used, want := before-r.Len(), len(frames[typ]); used != want || len(p) != want-FrameHeaderLen {
			t.Errorf("frame of type %d: consumed %d bytes, payload %d; want %d, %d", typ, used, len(p), want, want-FrameHeaderLen)
		}
	}
	if _, _, err := ReadFrame(r, nil); err == nil || !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: got %v, want io.EOF", err)
	}
}

// TestStartBelow pins the conditional START (offset, below) and checks that
// both forms decode through ReadStartBelow and ReadStart.
func TestStartBelow(t *testing.T) {
	want := wireHex(t, "03 00000010 0000000000000005 0000000000400000")
	if got := AppendStartBelow(nil, 5, 4<<20); !bytes.Equal(got, want) {
		t.Errorf("AppendStartBelow(5, 4 MiB): got % x, want % x", got, want)
	}
	off, below, err := ReadStartBelow(bytes.NewReader(want))
	if off != 5 || below != 4<<20 || err != nil {
		t.Errorf("ReadStartBelow: got %d, %d, %v; want 5, %d, nil", off, below, err, 4<<20)
	}
	if off, err := ReadStart(bytes.NewReader(want)); off != 5 || err != nil {
		t.Errorf("ReadStart of a conditional START: got %d, %v; want 5, nil", off, err)
	}
	if got, want := AppendStartBelow(nil, 7, 0), AppendStart(nil, 7); !bytes.Equal(got, want) {
		t.Errorf("AppendStartBelow(7, 0): got % x, want the plain START % x", got, want)
	}
	off, below, err = ReadStartBelow(bytes.NewReader(AppendStart(nil, 7)))
	if off != 7 || below != 0 || err != nil {
		t.Errorf("ReadStartBelow of a plain START: got %d, %d, %v; want 7, 0, nil", off, below, err)
	}
	for _, bad := range []string{
		"03 00000010 0000000000000005 8000000000000000", // below over MaxInt64
		"03 0000000c 0000000000000005 00000000",         // 12 bytes
		"03 00000010 0000000000000005 0000000000000000", // below 0: the 8-byte form is the only one
	} {
		if _, _, err := ReadStartBelow(bytes.NewReader(wireHex(t, bad))); !errors.Is(err, ErrMalformed) {
			t.Errorf("ReadStartBelow(%s): got %v, want ErrMalformed", bad, err)
		}
	}
}

// TestRequestNext: the request a relay sends on drops its own hop, goes one
// deeper, and keeps the operation and the name.
func TestRequestNext(t *testing.T) {
	req := Request{Op: OpGet, Depth: 2, Route: Route{"a:1", "b:2", "c:3"}, Name: "f.bin"}
	got := req.Next()
	want := Request{Op: OpGet, Depth: 3, Route: Route{"b:2", "c:3"}, Name: "f.bin"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Next: got %+v, want %+v", got, want)
	}
}
