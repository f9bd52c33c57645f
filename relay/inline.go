package relay

import (
	"fmt"
	"io"
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

// serveInline relays a mux request on the receive loop of its session,
// which hands it the stream once the request's frame is in (yamux
// ServeStreams), when none of it has to wait: the whole REQUEST is queued
// on up, it names a next hop, a pooled session to that hop has room for a
// stream (pool.tryOpen), and the forwarded request can go out without a
// wait (SendNoWaitFor). The splice then runs with no goroutine waiting, as
// forward's does. So a relayed request costs no goroutine and no thread
// wake-up for one. Under load, the requests that one read of the link
// brought go on to the next hop together, in one write, with the frames
// the receive loop passes on to it (the patched yamux's cork). A relay
// request that must wait (for a session with room, or for a busy link) is
// queued for one of the hop's queue workers (pool.queue, at most 128),
// which forwards it as forward does, without decoding or building it
// again (decodedRequest). It reports whether it took the request; when it did
// not (not a relay request, or not all of it received yet), nothing was
// read from up, and the caller serves the stream as before (serveStream).
// end gets the request's error once it is over.
//
// It is done for every request it can take, however many are in flight.
// Before the cork it was done up to 8 streams in flight only: above, one
// receive loop forwarding every request, with a write each, served fewer
// requests per second than goroutines spread over the cores (64
// concurrent small GETs through 3 relays: 0.62-0.67 of the nginx chain
// against 0.69-0.72). With the cork the writes are shared, and every
// request inline gave 1.10-1.21 against 0.83-0.93 (BENCHMARKS.md).
func (n *Node) serveInline(up *yamux.Stream, answered func(), end func(error)) bool {
	k := up.Buffered()
	if k == 0 || k > inlineMax {
		return false
	}
	bp := inlineBufs.get()
	defer inlineBufs.put(bp)
	b := (*bp)[:k]
	up.Peek(b)
	// The request is decoded from the peeked bytes in place (SplitFrame),
	// which costs no reader and no copy of its payload.
	typ, p, rest, err := route.SplitFrame(b)
	if err != nil || typ != route.FrameRequest {
		return false // the goroutine reads it, and refuses it
	}
	req, err := route.DecodeRequest(p, n.cfg.MaxHops)
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
	frame = append(frame, rest...)
	// What forwarding it needs from here on, in one struct, whether here
	// or from a queue worker.
	q := &decodedRequest{n: n, up: up, req: req, frame: frame, k: k, start: start, answered: answered, end: end}
	down := n.pool.tryOpen(next)
	if down == nil {
		// Forwarded by a goroutine, as it cannot be done here: one of the
		// hop's queue workers, rather than one per request.
		return n.pool.queue(next, q.serve)
	}
	// A client that has nothing more to send closed its side with the
	// request: the FIN goes on in the same frame. (Its bytes are all in
	// b, which is read from up below.)
	requestDone := up.FinReceived()
	if err := down.SendNoWaitFor(up, frame, requestDone); err != nil {
		// Nothing sent: the stream is unknown to the next hop.
		down.Reset()
		n.pool.done(next)
		return n.pool.queue(next, q.serve)
	}
	up.Read(b)    // takes what was peeked; no wait, and no window update yet
	q.frame = nil // sent or copied by the session; q lives as long as the splice
	n.inlined.Add(1)
	n.relayTo(up, down, next, requestDone, answered, q.finish)
	return true
}

// decodedRequest is a relay request that serveInline decoded from up: req
// is the request, frame the forwarded request it built, followed by what
// the client sent after it, and k the bytes of both on up (peeked there).
// A queue worker forwards it (serve) when serveInline cannot; finish ends
// it either way.
type decodedRequest struct {
	n        *Node
	up       *yamux.Stream
	req      route.Request
	frame    []byte
	k        int
	start    time.Time
	answered func()
	end      func(error)
}

// serve takes the request's bytes off up, where they are still queued,
// and forwards it as forward does (forwardFrame).
func (q *decodedRequest) serve() {
	bp := inlineBufs.get()
	_, err := io.ReadFull(q.up, (*bp)[:q.k])
	inlineBufs.put(bp)
	if err != nil {
		// Reset by the client while queued: nobody to answer.
		q.up.Close()
		q.finish(outcome{role: "relay", err: fmt.Errorf("read the request: %w", err), broken: true})
		return
	}
	fwd := q.req.Next()
	frame := q.frame
	q.frame = nil // q lives as long as the splice
	if out, detached := q.n.forwardFrame(q.up, fwd.Route[0], fwd.Depth, frame, q.answered, q.finish); !detached {
		q.up.Close()
		q.finish(out)
	}
}

// finish logs the request once it is over, and ends it.
func (q *decodedRequest) finish(out outcome) {
	_, err := q.n.endRequest(q.up, &q.req, &out, q.start)
	q.end(err)
}
