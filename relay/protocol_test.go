package relay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// fakeTerminal is a terminal that speaks the protocol by hand, on raw and
// mux links, so that a test can make it misbehave in exact ways. answer
// gets each request's stream after the request was read.
func fakeTerminal(t testing.TB, answer func(s net.Conn, req route.Request)) *fakePeer {
	t.Helper()
	serve := func(s net.Conn) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(time.Minute))
		req, err := route.ReadRequest(s, route.HardMaxHops)
		if err != nil {
			return
		}
		answer(s, req)
	}
	return startFake(t, func(c net.Conn, rec io.Writer) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		var in [prefaceSize]byte
		if _, err := io.ReadFull(c, in[:]); err != nil || string(in[:5]) != "RLYC\x03" {
			return
		}
		if _, err := c.Write([]byte(acceptorOK)); err != nil {
			return
		}
		c.SetDeadline(time.Time{})
		if in[5] == 'R' {
			serve(c)
			return
		}
		ycfg := yamux.DefaultConfig()
		ycfg.LogOutput = io.Discard
		sess, err := yamux.Server(c, ycfg)
		if err != nil {
			return
		}
		defer sess.Close()
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			serve(st) // one at a time is enough here
		}
	})
}

// TestErrFromTerminal makes a terminal misbehave after its OK: a transfer
// cut short, a missing trailer, wrong digests; and answer statuses that have
// no file behind them. Through 0 and 1 relays, over both transports.
func TestErrFromTerminal(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("relaychain "), 100) // 1100 bytes
	good := route.Trailer{HasCRC64: true, CRC64: cache.CRC(data), HasSHA256: true, SHA256: sha256.Sum256(data)}
	badSHA, badCRC, noCRC := good, good, good
	badSHA.SHA256[0] ^= 1
	badCRC.CRC64 ^= 1
	noCRC.HasCRC64, noCRC.CRC64 = false, 0

	ok := func(s net.Conn, req route.Request) bool {
		r := route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0], Size: int64(len(data)), ModTime: time.Now().UnixNano()}
		if _, err := s.Write(r.Append(nil)); err != nil {
			return false
		}
		off, err := route.ReadStart(s)
		return err == nil && off == 0
	}
	send := func(body []byte, tr *route.Trailer) func(net.Conn, route.Request) {
		return func(s net.Conn, req route.Request) {
			if !ok(s, req) {
				return
			}
			s.Write(body)
			if tr != nil {
				s.Write(tr.Append(nil))
			}
			// and hang up (a mux stream half-closes)
		}
	}
	status := func(st route.Status, msg string) func(net.Conn, route.Request) {
		return func(s net.Conn, req route.Request) {
			r := route.Response{Status: st, HopIndex: req.Depth, Hop: req.Route[0], Message: msg}
			s.Write(r.Append(nil))
		}
	}
	for _, tc := range []struct {
		name     string
		answer   func(net.Conn, route.Request)
		sentinel error
		hopError bool // a status answer: a *HopError naming the terminal
		want     string
	}{
		{"good", send(data, &good), nil, false, ""},
		{"truncated", send(data[:500], nil), ErrTruncated, false, "got 500 of 1100 bytes"},
		{"no-trailer", send(data, nil), ErrTruncated, false, "no trailer after 1100 bytes"},
		{"bad-sha256", send(data, &badSHA), ErrDigest, false, "SHA-256"},
		{"bad-crc64", send(data, &badCRC), ErrDigest, false, "CRC-64"},
		{"no-crc64", send(data, &noCRC), ErrProtocol, false, "trailer without a CRC-64 after 1100 bytes"},
		{"corrupt-byte", send(append([]byte("R"), data[1:]...), &good), ErrDigest, false, "digest mismatch"},
		{"internal", status(route.StatusInternal, "internal error: disk on fire"), ErrInternal, true, "disk on fire"},
		{"bad-offset", status(route.StatusBadOffset, "bad offset: 7 beyond 3"), ErrBadRequest, true, "bad offset"},
		{"bad-op", status(route.StatusBadOp, "unknown operation: op(9)"), ErrBadRequest, true, "unknown operation"},
		{"unknown-status", status(route.Status(200), "from the future"), ErrProtocol, true, "from the future"},
		{"not-a-response", func(s net.Conn, _ route.Request) { s.Write(route.AppendStart(nil, 0)) }, route.ErrMalformed, false, "frame type"},
	} {
		for _, relays := range []int{0, 1} {
			for _, tp := range transports {
				t.Run(fmt.Sprintf("%s/relays=%d/%s", tc.name, relays, tp.name), func(t *testing.T) {
					t.Parallel()
					term := fakeTerminal(t, tc.answer)
					rt := route.Route{term.Addr}
					if relays == 1 {
						rt = route.Route{startNode(t, Config{}).Addr, term.Addr}
					}
					c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr, Timeout: 10 * time.Second})
					dir := t.TempDir()
					_, info, err := c.Download(testCtx(t, 30*time.Second), "f.txt", dir, nil)
					if tc.sentinel == nil {
						if err != nil || info.SHA256 != good.SHA256 {
							t.Fatalf("Download: got %x, %v; want %x, nil", info.SHA256, err, good.SHA256)
						}
						return
					}
					switch {
					case tc.hopError:
						wantHopError(t, err, tc.sentinel, relays, term.Addr, tc.want)
					case tc.sentinel == route.ErrMalformed && relays == 1 && tp.tr == TransportRaw:
						// A raw relay reads the answer's frames itself, and
						// reports the next hop as failed.
						var he *HopError
						if !errors.As(err, &he) || he.Index != 1 || he.Addr != term.Addr || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
							t.Errorf("got %v, want a *HopError naming hop 1 (%s) and saying %q", err, term.Addr, tc.want)
						}
					default:
						if !errors.Is(err, tc.sentinel) {
							t.Errorf("got %v, want %v", err, tc.sentinel)
						}
						if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
							t.Errorf("got message %q, want it to contain %q", err, tc.want)
						}
					}
					// Truncation is never success: nothing is left behind.
					if names := dirNames(t, dir); len(names) != 0 {
						t.Errorf("after the failed Download: got %q in the directory, want nothing", names)
					}
					if tc.name == "no-crc64" {
						// A broken protocol says nothing against the bytes:
						// Resume keeps them for the next try (a damaged
						// byte, ErrDigest, removes them).
						rdir := t.TempDir()
						if _, _, err := c.Resume(testCtx(t, 30*time.Second), "f.txt", rdir, nil); !errors.Is(err, ErrProtocol) {
							t.Fatalf("Resume: got %v, want ErrProtocol", err)
						}
						if names := dirNames(t, rdir); len(names) == 0 {
							t.Error("Resume removed its partial download after a trailer without a CRC-64")
						}
					}
				})
			}
		}
	}
}
