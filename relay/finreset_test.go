package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// TestRequestCarriesFIN checks that a mux client that has nothing more to
// send closes its side with its request, and that relays pass that FIN on
// with the request: a fake terminal reads the request (and a GET's
// pipelined START), then must read EOF before it answers, directly and
// through 2 relays. A FIN sent only after the answer would stall it.
func TestRequestCarriesFIN(t *testing.T) {
	t.Parallel()
	data := []byte("hello, relaychain\n")
	var sawFIN atomic.Int64
	term := fakeTerminal(t, func(s net.Conn, req route.Request) {
		if req.Op == route.OpGet {
			if off, err := route.ReadStart(s); err != nil || off != 0 {
				return
			}
		}
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		var b [1]byte
		if _, err := s.Read(b[:]); err != io.EOF {
			return // no answer: the client fails
		}
		sawFIN.Add(1)
		r := route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0], Size: int64(len(data)), ModTime: time.Now().UnixNano()}
		frame := r.Append(nil)
		if req.Op == route.OpGet {
			tr := dataTrailer(data)
			frame = tr.Append(append(frame, data...))
		}
		writeClose(s, frame)
	})
	for _, relays := range []int{0, 2} {
		rt := append(relayRoute(t, relays, Config{}), term.Addr)
		c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
		before := sawFIN.Load()
		var got countWriter
		got.w = io.Discard
		if _, err := c.Get(testCtx(t, 30*time.Second), "f", &got, nil); err != nil || got.n != int64(len(data)) {
			t.Errorf("%d relays: Get: %d bytes, %v", relays, got.n, err)
		}
		if _, err := c.Stat(testCtx(t, 30*time.Second), "f"); err != nil {
			t.Errorf("%d relays: Stat: %v", relays, err)
		}
		if n := sawFIN.Load() - before; n != 2 {
			t.Errorf("%d relays: the terminal read the client's FIN before answering in %d of 2 requests", relays, n)
		}
	}
}

// TestCancelReachesStalledTerminal cancels a Get whose terminal has
// stalled half way, through relays with the default 60s idle timeout:
// nothing moves on the chain, so the cancel must travel on its own (on
// the mux a stream reset, passed on by each relay's receive loop; on raw
// links a closed connection). The terminal must see it within 3s.
func TestCancelReachesStalledTerminal(t *testing.T) {
	t.Parallel()
	data := make([]byte, 20000)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			term, ended := trickleTerminal(t, data, 1000, time.Millisecond, len(data)/2)
			rt := append(relayRoute(t, 3, Config{}), term.Addr)
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			ctx, cancel := context.WithCancel(testCtx(t, time.Minute))
			defer cancel()
			gate := newGate(io.Discard, int64(len(data)/2))
			done := make(chan error, 1)
			go func() {
				_, err := c.Get(ctx, "stall", gate, nil)
				done <- err
			}()
			waitFor(t, gate.reached, 30*time.Second, "half the file received")
			close(gate.release)
			time.Sleep(50 * time.Millisecond) // the chain is idle
			cancel()
			canceled := time.Now()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Get: got %v, want context.Canceled", err)
			}
			select {
			case <-ended:
			case <-time.After(3 * time.Second):
				t.Fatalf("the stalled terminal did not see the cancel within 3s (idle timeouts are 60s)")
			}
			t.Logf("the terminal saw the cancel %v after it", time.Since(canceled).Round(time.Millisecond))
		})
	}
}

// dataTrailer returns the trailer a terminal sends after all of data.
func dataTrailer(data []byte) route.Trailer {
	return route.Trailer{HasCRC64: true, CRC64: cache.CRC(data), HasSHA256: true, SHA256: sha256.Sum256(data)}
}
