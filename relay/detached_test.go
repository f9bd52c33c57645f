package relay

import (
	"crypto/sha256"
	"hash"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

// relayGoroutines counts goroutines that are relaying a mux exchange:
// in a relay's forward, or in a yamux Relay's runner.
func relayGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "relay.(*Node).forward") || strings.Contains(g, "yamux.(*relayRun).run") {
			n++
		}
	}
	return n
}

// TestStalledStreamHoldsNoGoroutine fetches a large file over the mux
// through 2 relays into a writer that stops after 1 MiB: once the windows
// on the way are full, no goroutine waits in the relays for the stalled
// stream (they hold its windows and nothing else). Then the writer goes on
// and the file arrives whole. Both with the START pipelined (the client's
// FIN comes with the request) and sent after the RESPONSE (the relays
// relay the request direction too until the FIN).
func TestStalledStreamHoldsNoGoroutine(t *testing.T) {
	// Windows that do not grow, so that 24 MiB is more than every buffer
	// on the way holds: the stream stalls well before its end.
	const window = DefaultStreamWindow
	dir := t.TempDir()
	big, err := genFile(dir, "stall", 24<<20)
	if err != nil {
		t.Fatal(err)
	}
	term := terminalConfig(dir)
	term.StreamWindowMax = window
	rt := route.Route{
		startNode(t, Config{StreamWindowMax: window}).Addr,
		startNode(t, Config{StreamWindowMax: window}).Addr,
		startNode(t, term).Addr,
	}
	c := newClient(t, ClientConfig{Route: rt, Transport: TransportMux, StreamWindowMax: window})
	for _, tc := range []struct {
		name  string
		start startFunc
	}{
		{"pipelined", nil},
		{"start-after-response", func(FileInfo, *route.Response) (int64, hash.Hash, error) { return 0, nil, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 2*time.Minute)
			h := sha256.New()
			gate := newGate(h, 1<<20)
			done := make(chan error, 1)
			go func() {
				_, err := c.get(ctx, big.Name, gate, tc.start, nil)
				done <- err
			}()
			waitFor(t, gate.reached, time.Minute, "1 MiB received")
			deadline := time.Now().Add(10 * time.Second)
			for relayGoroutines() > 0 {
				if time.Now().After(deadline) {
					close(gate.release)
					t.Fatalf("10s into the stall, %d goroutines still relay the stream", relayGoroutines())
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(gate.release)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Get not done a minute after the release")
			}
			var sum [32]byte
			h.Sum(sum[:0])
			if gate.n != big.Size || sum != big.Sum {
				t.Fatalf("got %d bytes (sha256 %x), want %d (%x)", gate.n, sum[:4], big.Size, big.Sum[:4])
			}
		})
	}
}
