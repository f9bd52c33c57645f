package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// outcome is what one request did, for its log line.
type outcome struct {
	role   string // "relay" or "terminal"
	status route.Status
	bytes  int64
	cache  string // "hit", "miss" or "" (not a get)
	// streamed says the file went from disk, being larger than the cache.
	streamed  bool
	abandoned bool // the client left before START
	err       error
	// canceled says err is the client's cancel (endRequest): a reset of
	// the stream from upstream, or on a raw link the client's close.
	canceled bool
	// broken says the exchange stopped part way, so the connection cannot
	// carry another request.
	broken bool
}

// serveStream handles the one request of a mux stream, closes it, and
// calls end with the request's error. A relayed request may finish after
// serveStream returns, with no goroutine waiting for its answer (yamux
// Relay); end is then called from the goroutine that finished it.
// answered, if not nil, is called once the answer has been passed on in
// full, when all the stream waits for is its peer's close; it may be
// called again later.
func (n *Node) serveStream(s net.Conn, answered func(), end func(error)) {
	_, detached, err := n.serveRequest(s, s, route.ModeMux, answered, func(err error) {
		s.Close()
		end(err)
	})
	if !detached {
		s.Close()
		end(err)
	}
}

// serveRequest handles one request on s, reading its header from r (s, or
// s behind bytes already read) under the header deadline, then relaying or
// serving it. It reports whether the exchange completed, so that a raw
// connection can carry the next request. A relayed mux request finishes
// without this goroutine: serveRequest then reports detached, and later
// (which mux mode needs) gets the request's error once it is over.
func (n *Node) serveRequest(s net.Conn, r io.Reader, mode route.Mode, answered func(), later func(error)) (clean, detached bool, err error) {
	start := time.Now()
	s.SetReadDeadline(start.Add(n.cfg.HeaderTimeout))
	req, err := route.ReadRequest(r, n.cfg.MaxHops)
	if err != nil {
		n.refuseHeader(s, req, err)
		return false, false, fmt.Errorf("read request: %w", err)
	}
	s.SetReadDeadline(time.Time{})
	var out outcome
	switch {
	case len(req.Route) == 1:
		out = n.serveTerminal(s, &req)
	case mode == route.ModeRaw:
		out = n.forwardRaw(s, &req)
	default:
		// A mux stream: its answer may end after this goroutine.
		up := s.(*yamux.Stream)
		if out, detached = n.forward(up, &req, answered, func(out outcome) {
			_, err := n.endRequest(up, &req, &out, start)
			later(err)
		}); detached {
			return false, true, nil
		}
	}
	clean, err = n.endRequest(s, &req, &out, start)
	return clean, false, err
}

// errCanceled marks the error of a raw exchange that the client gave up
// while the answer was sent (watchCancel saw it close or reset its link).
var errCanceled = errors.New("canceled by the client")

// endRequest logs a request that is over, whose client side was up, and
// reports whether its connection can carry another, and the request's
// error. An error that the client's cancel caused (out.canceled) is told
// apart: a mux stream reset by its peer (a relay resets up itself when
// the next hop fails), or errCanceled on a raw link.
func (n *Node) endRequest(up net.Conn, req *route.Request, out *outcome, start time.Time) (clean bool, err error) {
	if out.err != nil {
		ys, mux := up.(*yamux.Stream)
		out.canceled = errors.Is(out.err, errCanceled) || (mux && ys.ResetByPeer())
	}
	n.logRequest(req, out, time.Since(start))
	// An error under an OK status stopped the exchange part way; an error
	// status was answered in full.
	broken := out.broken || (out.err != nil && out.status == route.StatusOK)
	return !broken, out.err
}

// refuseHeader answers a request header that could not be used, when the
// peer can still be told why. A timed-out or vanished peer is just closed.
func (n *Node) refuseHeader(s net.Conn, req route.Request, err error) {
	st := route.StatusBadRequest
	switch {
	case errors.Is(err, route.ErrTooManyHops):
		st = route.StatusTooManyHops
	case !errors.Is(err, route.ErrMalformed):
		return
	}
	hop := ""
	if len(req.Route) > 0 {
		hop = req.Route[0]
	}
	n.respond(s, &route.Response{Status: st, HopIndex: req.Depth, Hop: hop,
		Message: fmt.Sprintf("%s: %v", st, err)})
}

// respBufs pools response frame buffers, so a hit allocates nothing.
var respBufs = newBufPool(512)

// respond writes one response frame under the header deadline.
func (n *Node) respond(s net.Conn, r *route.Response) error {
	return writeFrame(s, n.cfg.HeaderTimeout, func(b []byte) []byte { return r.Append(b) })
}

// writeFrame writes the frame that appendTo appends, from a pooled buffer,
// under a write deadline.
func writeFrame(s net.Conn, timeout time.Duration, appendTo func([]byte) []byte) error {
	bp := respBufs.get()
	defer respBufs.put(bp)
	*bp = appendTo((*bp)[:0])
	s.SetWriteDeadline(time.Now().Add(timeout))
	_, err := s.Write(*bp)
	s.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// forward relays req, read from the mux stream up, to the next hop and
// splices the two streams with no goroutine waiting (splice): it reports
// detached, and finish gets the outcome once the exchange is over. When
// the next hop cannot be used it answers with a status that names that
// hop, and returns that outcome.
func (n *Node) forward(up *yamux.Stream, req *route.Request, answered func(), finish func(outcome)) (out outcome, detached bool) {
	fwd := req.Next()
	frame, err := fwd.Append(nil)
	if err != nil {
		return n.hopFailed(up, fwd.Depth, fwd.Route[0], err), false
	}
	return n.forwardFrame(up, fwd.Route[0], fwd.Depth, frame, answered, finish)
}

// forwardFrame is forward once the forwarded request is built: frame holds
// it, and what the client sent after the request that has been taken off
// up; what is still queued on up goes with it (appendQueued). next is the
// next hop, index its place in the route.
func (n *Node) forwardFrame(up *yamux.Stream, next string, index int, frame []byte, answered func(), finish func(outcome)) (out outcome, detached bool) {
	conn, err := n.pool.open(n.ctx, next)
	if err != nil {
		return n.hopFailed(up, index, next, err), false
	}
	down := conn.(*yamux.Stream) // the pool's sessions are yamux ones
	if frame, err = appendQueued(frame, up); err != nil {
		// The client's side failed, not the next hop: nobody to answer.
		down.Reset()
		n.pool.done(next)
		return outcome{role: "relay", err: err, broken: true}, false
	}
	down.SetWriteDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	// A client that has nothing more to send closed its side with the
	// request: the FIN goes on in the same frame, and the request
	// direction is over.
	requestDone := up.PeerClosed()
	if requestDone {
		_, err = down.WriteClose(frame)
	} else {
		_, err = down.Write(frame)
	}
	down.SetWriteDeadline(time.Time{})
	if err != nil {
		down.Reset()
		n.pool.done(next)
		return n.hopFailed(up, index, next, err), false
	}
	n.relayTo(up, down, next, requestDone, answered, finish)
	return outcome{}, true
}

// relayTo splices up with down, a stream to the next hop next that has
// carried the request on (with the client's FIN if requestDone), with no
// goroutine waiting (splice), and gives finish the relay's outcome once
// the exchange is over.
func (n *Node) relayTo(up, down *yamux.Stream, next string, requestDone bool, answered func(), finish func(outcome)) {
	splice(up, down, requestDone, n.cfg.Linger, n.cfg.IdleTimeout, answered, func(toUp int64, err error) {
		n.pool.done(next)
		finish(outcome{role: "relay", bytes: toUp, err: err, broken: true})
	})
}

// maxCarried bounds what appendQueued carries along with a request.
const maxCarried = 4 << 10

// appendQueued appends to frame what up has already received beyond the
// request, such as the START a client pipelines with it, up to maxCarried,
// so that the request and its START travel on in one frame and the
// terminal finds both at once. It never blocks.
func appendQueued(frame []byte, up net.Conn) ([]byte, error) {
	ys, ok := up.(*yamux.Stream)
	if !ok {
		return frame, nil
	}
	k := min(ys.Buffered(), maxCarried)
	if k == 0 {
		return frame, nil
	}
	n := len(frame)
	frame = append(frame, make([]byte, k)...)
	if _, err := io.ReadFull(ys, frame[n:]); err != nil {
		return frame[:n], fmt.Errorf("read what followed the request: %w", err)
	}
	return frame, nil
}

// hopFailed answers upstream that the next hop could not be used.
func (n *Node) hopFailed(up net.Conn, index int, next string, err error) outcome {
	r := hopFailure(index, next, err)
	out := outcome{role: "relay", status: r.Status, err: err}
	if n.respond(up, r) != nil {
		out.broken = true
	}
	return out
}

// logRequest writes the one line per request.
func (n *Node) logRequest(req *route.Request, out *outcome, d time.Duration) {
	level := slog.LevelInfo
	switch {
	case out.canceled:
		// A client may cancel any request: not a failure of this node or
		// the ones after it, so not a warning.
		if n.cfg.NoRequestLog {
			return
		}
	case out.err != nil || out.status != route.StatusOK:
		level = slog.LevelWarn
	case n.cfg.NoRequestLog:
		return
	}
	if !n.cfg.Logger.Enabled(n.ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("role", out.role),
		slog.String("op", req.Op.String()),
		slog.String("name", req.Name),
	}
	if out.role == "terminal" || out.status != route.StatusOK {
		// A relay does not parse the answer it splices, so it has no status
		// of its own unless it failed to reach the next hop.
		attrs = append(attrs, slog.String("status", out.status.String()))
	}
	attrs = append(attrs, slog.Int64("bytes", out.bytes), slog.Duration("duration", d))
	if len(req.Route) > 1 {
		attrs = append(attrs, slog.String("next", req.Route[1]))
	}
	if out.cache != "" {
		attrs = append(attrs, slog.String("cache", out.cache))
	}
	if out.streamed {
		attrs = append(attrs, slog.Bool("streamed", true))
	}
	if out.abandoned {
		attrs = append(attrs, slog.Bool("abandoned", true))
	}
	if out.canceled {
		attrs = append(attrs, slog.Bool("canceled", true))
	}
	if out.err != nil {
		attrs = append(attrs, slog.String("err", out.err.Error()))
	}
	n.cfg.Logger.LogAttrs(n.ctx, level, "request", attrs...)
}
