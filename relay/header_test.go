package relay

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

const testHeaderTimeout = 300 * time.Millisecond

// headerNode starts a terminal with a short header timeout and a client
// that checks the node still serves.
func headerNode(t *testing.T) (*testNode, func(t *testing.T)) {
	t.Helper()
	cfg := terminalConfig("testdata/root")
	cfg.HeaderTimeout = testHeaderTimeout
	term := startNode(t, cfg)
	c := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: TransportMux})
	stillServes := func(t *testing.T) {
		t.Helper()
		sum, n, _, err := getSum(testCtx(t, 30*time.Second), c, "hello.txt")
		if err != nil || n != int64(len("hello, relaychain\n")) {
			t.Fatalf("Get after the attack: got %d bytes (sum %x), err %v; want the file", n, sum, err)
		}
	}
	return term, stillServes
}

func frameHeader(typ byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{typ}, n)
}

func requestFrame(t *testing.T, addr, name string) []byte {
	t.Helper()
	req := route.Request{Op: route.OpGet, Route: route.Route{addr}, Name: name}
	b, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadHeaderOnStream sends broken request headers on a mux stream: the
// node answers bad request and closes the stream, and keeps serving.
func TestBadHeaderOnStream(t *testing.T) {
	t.Parallel()
	term, stillServes := headerNode(t)
	valid := requestFrame(t, term.Addr, "hello.txt")
	trailing := append(frameHeader(byte(route.FrameRequest), uint32(len(valid)-route.FrameHeaderLen+1)), valid[route.FrameHeaderLen:]...)
	trailing = append(trailing, 'x')
	for _, tc := range []struct {
		name string
		send []byte
		want string
	}{
		{"garbage", []byte("hello, world!\n\n"), "bytes (max 65536)"},
		{"wrong-frame-type", route.AppendStart(nil, 0), "got frame type 3, want 1"},
		{"oversized", frameHeader(byte(route.FrameRequest), 64<<10+1), "frame of 65537 bytes (max 65536)"},
		{"oversized-4GiB", frameHeader(byte(route.FrameRequest), 1<<32-1), "frame of 4294967295 bytes (max 65536)"},
		{"empty-route", append(frameHeader(byte(route.FrameRequest), 5), byte(route.OpGet), 0, 0, 0, 0), "empty route"},
		{"trailing-bytes", trailing, "1 trailing bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := rawLink(t, term.Addr)
			st, err := sess.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := st.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			resp, err := route.ReadResponse(st)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			if resp.Status != route.StatusBadRequest || !strings.Contains(resp.Message, tc.want) {
				t.Errorf("got %s %q, want bad request mentioning %q", resp.Status, resp.Message, tc.want)
			}
			if rest, err := io.ReadAll(st); err != nil || len(rest) != 0 {
				t.Errorf("after the response: got %q, %v; want EOF", rest, err)
			}
			stillServes(t)
		})
	}
}

// TestSlowHeader sends half a request and stalls: the node cuts the stream
// (or raw link) off after its header timeout, serving others meanwhile.
func TestSlowHeader(t *testing.T) {
	t.Parallel()
	term, stillServes := headerNode(t)
	valid := requestFrame(t, term.Addr, "hello.txt")
	half := valid[:len(valid)/2]

	check := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
		stillServes(t) // while the slow header waits
		got, err := io.ReadAll(c)
		d := time.Since(start)
		if isTimeout(err) || len(got) != 0 {
			t.Errorf("got %q, %v after %v; want the node to hang up without an answer", got, err, d)
		}
		if d < testHeaderTimeout*3/4 || d > testHeaderTimeout+5*time.Second {
			t.Errorf("hung up after %v, want about the %v header timeout", d, testHeaderTimeout)
		}
		stillServes(t)
	}
	t.Run("mux", func(t *testing.T) {
		st, err := rawLink(t, term.Addr).OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		check(t, st)
	})
	t.Run("raw", func(t *testing.T) {
		c := dialPrefaced(t, term.Addr, "RLYC\x03R")
		check(t, c)
	})
}

// dialPrefaced dials addr and completes the link preface with the given
// dialer preface. Cleanup closes the connection.
func dialPrefaced(t *testing.T, addr, preface string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(preface)); err != nil {
		t.Fatal(err)
	}
	var in [prefaceSize]byte
	if _, err := io.ReadFull(c, in[:]); err != nil || string(in[:]) != acceptorOK {
		t.Fatalf("preface: got %q, %v; want %q", in[:], err, acceptorOK)
	}
	c.SetDeadline(time.Time{})
	return c
}

// TestOversizedHeaderRaw sends an oversized header on a raw link.
func TestOversizedHeaderRaw(t *testing.T) {
	t.Parallel()
	term, stillServes := headerNode(t)
	c := dialPrefaced(t, term.Addr, "RLYC\x03R")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frameHeader(byte(route.FrameRequest), 64<<10+1)); err != nil {
		t.Fatal(err)
	}
	resp, err := route.ReadResponse(c)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if want := "frame of 65537 bytes (max 65536)"; resp.Status != route.StatusBadRequest || !strings.Contains(resp.Message, want) {
		t.Errorf("got %s %q, want bad request mentioning %q", resp.Status, resp.Message, want)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("after the response: got %q, %v; want EOF", rest, err)
	}
	stillServes(t)
}

// TestOldVersionPreface dials a node with a preface of protocol version
// 1: the node answers with its own version and status not-a-node, so that
// the dialer can say why, and hangs up.
func TestOldVersionPreface(t *testing.T) {
	t.Parallel()
	term, stillServes := headerNode(t)
	c, err := net.DialTimeout("tcp", term.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("RLYC\x02M")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if string(got) != "RLYC\x03\x05" || isTimeout(err) {
		t.Errorf("got %q, %v; want %q and the node to hang up", got, err, "RLYC\x03\x05")
	}
	stillServes(t)
}

// TestBadPreface sends what is not a link preface: the node drops the
// connection without answering anything, and keeps serving.
func TestBadPreface(t *testing.T) {
	t.Parallel()
	term, stillServes := headerNode(t)
	for _, tc := range []struct{ name, send string }{
		{"http", "GET / HTTP/1.1\r\nHost: relay\r\n\r\n"},
		{"tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
		{"bad-mode", "RLYC\x03X"},
		{"short", "RLY"},
		{"silent", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", term.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			if _, err := c.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if len(got) != 0 || isTimeout(err) {
				t.Errorf("got %q, %v after %v; want the node to hang up without a byte", got, err, time.Since(start))
			}
			if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				t.Logf("read: %v (a reset is fine)", err)
			}
			stillServes(t)
		})
	}
}
