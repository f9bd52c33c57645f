package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/relaychain/relaychain/route"
)

// outcome is what one request did, for its log line.
type outcome struct {
	role   string // "relay" or "terminal"
	status route.Status
	bytes  int64
	cache  string // "hit", "miss", "stream" or ""
	err    error
}

// serveStream handles one request on s: it reads the header under the
// header deadline, then relays or serves. It closes s.
func (n *Node) serveStream(s net.Conn) error {
	defer s.Close()
	start := time.Now()
	s.SetReadDeadline(start.Add(n.cfg.HeaderTimeout))
	req, err := route.ReadRequest(s, n.cfg.MaxHops)
	if err != nil {
		n.refuseHeader(s, req, err)
		return fmt.Errorf("read request: %w", err)
	}
	s.SetReadDeadline(time.Time{})
	var out outcome
	if len(req.Route) == 1 {
		out = n.serveTerminal(s, &req)
	} else {
		out = n.forward(s, &req)
	}
	n.logRequest(&req, &out, time.Since(start))
	return out.err
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
	bp := respBufs.get()
	defer respBufs.put(bp)
	*bp = r.Append((*bp)[:0])
	s.SetWriteDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	_, err := s.Write(*bp)
	s.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}

// forward relays req to the next hop and splices the two streams. When the
// next hop cannot be used it answers with a status that names that hop.
func (n *Node) forward(up net.Conn, req *route.Request) outcome {
	out := outcome{role: "relay"}
	next, index := req.Route[1], req.Depth+1
	down, err := n.pool.open(n.ctx, next)
	if err != nil {
		r := hopFailure(index, next, err)
		out.status, out.err = r.Status, err
		n.respond(up, r)
		return out
	}
	fwd := route.Request{Op: req.Op, Depth: index, Route: req.Route[1:], Name: req.Name}
	frame, err := fwd.Append(nil)
	if err == nil {
		down.SetWriteDeadline(time.Now().Add(n.cfg.HeaderTimeout))
		_, err = down.Write(frame)
		down.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		down.Close()
		r := hopFailure(index, next, err)
		out.status, out.err = r.Status, err
		n.respond(up, r)
		return out
	}
	out.bytes, out.err = splice(up, down, n.cfg.Linger)
	return out
}

// logRequest writes the one line per request.
func (n *Node) logRequest(req *route.Request, out *outcome, d time.Duration) {
	level := slog.LevelInfo
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
	if out.err != nil {
		attrs = append(attrs, slog.String("err", out.err.Error()))
	}
	n.cfg.Logger.LogAttrs(n.ctx, level, "request", attrs...)
}
