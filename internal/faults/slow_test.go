package faults

import (
	"testing"
	"time"
)

// TestSlowHops: 200 ms of latency and 1 MB/s on every hop, both ways,
// through two relays. The GET completes and is correct although it lasts
// longer than the client's --timeout, which an idle timeout allows (a
// total one would not); a fortiori the default 30s does not kill it.
//
// The mux needs the longer timeout: a yamux frame reaches a stream reader
// only once all of it has arrived, so on a slow link every relay adds a
// frame's (up to 512 KiB) transmission time before it passes the first
// byte on; at 1 MB/s over three hops that is about 4s before the first
// byte, against about 1.3s on raw links, which splice byte by byte.
func TestSlowHops(t *testing.T) {
	t.Parallel()
	const size = 4<<20 - 1 // under the raw threshold: auto fetches it over the mux
	for _, tc := range []struct {
		transport string
		timeout   time.Duration
	}{
		{"auto", 6 * time.Second},
		{"raw", 4 * time.Second},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			c := newChain(t, chainSpec{relays: 2, files: []fileSpec{{name: "slow.bin", size: size}}})
			for _, p := range c.proxies {
				p.both(t, "latency", map[string]any{"latency": 200})
				p.both(t, "bandwidth", map[string]any{"rate": 1000}) // KB/s
			}
			dir := t.TempDir()
			r := c.get(t, []string{"--transport", tc.transport, "--timeout", tc.timeout.String()}, dir, "slow.bin")
			r.ok(t)
			checkOutDir(t, dir, c.want("slow.bin"), false)
			t.Logf("--timeout %s: %d bytes in %s", tc.timeout, size, r.dur.Round(time.Millisecond))
			if r.dur <= tc.timeout {
				t.Errorf("the transfer took %s, no longer than --timeout %s: the toxics did not slow it enough to show the timeout is idle-based", r.dur, tc.timeout)
			}
			c.after(t)
		})
	}
}
