package relay

import (
	"bytes"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// inlineMax bounds the queued bytes serveInline takes a request from: a
// REQUEST of many hops with what a client sends with it (maxCarried). Far
// under a stream's first window update (half of at least 256 KiB), so
// reading them from a new stream sends nothing.
const inlineMax = 16 << 10

var inlineBufs = newBufPool(inlineMax)

// inlineBusy is the node's count of streams in flight above which a
// relayed request is served by a goroutine after all: under load, a
// receive loop that forwards every request itself makes each link's
// requests wait in line for one goroutine, where goroutines spread them
// over the cores. (64 concurrent small GETs through 3 relays, alternated
// runs: 0.62-0.67 of the nginx chain's requests per second with every
// request inline, 0.69-0.72 for goroutines; with this threshold
// 0.63-0.67 against 0.65-0.69, within the noise.)
const inlineBusy = 8

// serveInline relays a mux request on the receive loop of its session,
// which hands it the stream once the request's frame is in (yamux
// ServeStreams), when none of it has to wait: the whole REQUEST is queued
// on up, it names a next hop, a pooled session to that hop has room for a
// stream (pool.tryOpen), and the forwarded request goes out with one
// non-blocking write (SendNoWait). The splice then runs with no goroutine
// waiting, as forward's does. So a relayed request costs no goroutine and
// no thread wake-up for one. It reports whether it took the request; when
// it did not, nothing was read from up, and the caller serves the stream
// as before (serveStream). end gets the request's error once it is over.
func (n *Node) serveInline(up *yamux.Stream, answered func(), end func(error)) bool {
	k := up.Buffered()
	if k == 0 || k > inlineMax {
		return false
	}
	bp := inlineBufs.get()
	defer inlineBufs.put(bp)
	b := (*bp)[:k]
	up.Peek(b)
	br := bytes.NewReader(b)
	req, err := route.ReadRequest(br, n.cfg.MaxHops)
	if err != nil || len(req.Route) < 2 {
		return false // a terminal request, or one the goroutine refuses
	}
	start := time.Now()
	fwd := req.Next()
	next := fwd.Route[0]
	// The frame is the forwarded request and what followed it (a START),
	// as forward sends them. Its own buffer: the kernel may not take it
	// all at once, and the rest is written later.
	frame, err := fwd.Append(make([]byte, 0, k))
	if err != nil {
		return false
	}
	frame = append(frame, b[k-br.Len():]...)
	down := n.pool.tryOpen(next)
	if down == nil {
		return false
	}
	// A client that has nothing more to send closed its side with the
	// request: the FIN goes on in the same frame. (Its bytes are all in
	// b, which is read from up below.)
	requestDone := up.FinReceived()
	if err := down.SendNoWait(frame, requestDone); err != nil {
		// Nothing sent: the stream is unknown to the next hop.
		down.Reset()
		n.pool.done(next)
		return false
	}
	up.Read(b) // takes what was peeked; no wait, and no window update yet
	n.inlined.Add(1)
	n.relayTo(up, down, next, requestDone, answered, func(out outcome) {
		_, err := n.endRequest(&req, &out, start)
		end(err)
	})
	return true
}
