package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/relaychain/relaychain/route"
)

// serveRaw serves requests one after another on a raw link, until the peer
// closes it, an exchange breaks, it idles past RawIdleTimeout, or the node
// stops.
func (n *Node) serveRaw(conn net.Conn) error {
	var r io.Reader = conn
	for {
		n.active.add()
		clean, _, err := n.serveRequest(conn, r, route.ModeRaw, nil, nil)
		n.active.done()
		if !clean || n.stopping() {
			return err
		}
		// Wait for the first byte of the next request; the rest of it
		// must then come within the header deadline.
		var b [1]byte
		conn.SetReadDeadline(time.Now().Add(RawIdleTimeout))
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return nil
		}
		r = io.MultiReader(bytes.NewReader(b[:]), conn)
	}
}

// forwardRaw relays req over a raw link to the next hop. Unlike the mux
// path it follows the answer's framing, so that it knows where the exchange
// ends and both connections can carry further requests; the file bytes
// themselves go by io.Copy between the two connections, which on TCP is
// splice(2): they never enter user space.
func (n *Node) forwardRaw(up net.Conn, req *route.Request) outcome {
	out := outcome{role: "relay"}
	fwd := req.Next()
	next, index := fwd.Route[0], fwd.Depth
	frame, err := fwd.Append(nil)
	if err != nil {
		return n.hopFailed(up, index, next, err)
	}
	for attempt := 0; ; attempt++ {
		down, reused, err := n.rawPool.get(n.ctx, next)
		if err != nil {
			return n.hopFailed(up, index, next, err)
		}
		// Close must not wait for a next hop that went silent: the link
		// to it is not tracked with the inbound ones.
		stop := context.AfterFunc(n.ctx, func() { down.Close() })
		resp, err := n.sendRequest(down, frame)
		if err != nil {
			stop()
			down.Close()
			if reused && attempt == 0 {
				continue // a stale pooled link: retry once on a fresh one
			}
			return n.hopFailed(up, index, next, err)
		}
		out.bytes, out.err = n.relayAnswer(up, down, req.Op, resp)
		if !stop() && out.err == nil {
			out.err = errClosed // the node closed down under the answer
		}
		if out.err != nil {
			out.broken = true
			down.Close()
			return out
		}
		n.rawPool.put(next, down)
		return out
	}
}

// sendRequest writes a request frame on a raw link and reads the response
// frame, under the header deadline.
func (n *Node) sendRequest(down net.Conn, frame []byte) ([]byte, error) {
	down.SetDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	defer down.SetDeadline(time.Time{})
	if _, err := down.Write(frame); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	// The response can take a while (a large cache load at the terminal),
	// but a next hop that sends nothing for the idle timeout is cut off.
	down.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
	t, p, err := route.ReadFrame(down, nil)
	if err == nil && t != route.FrameResponse {
		err = fmt.Errorf("%w: frame type %d, want response", route.ErrMalformed, t)
	}
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return p, nil
}

// relayAnswer passes the response payload p and the rest of the exchange for
// op from down to up (and the client's START from up to down). It returns
// the bytes relayed towards up.
func (n *Node) relayAnswer(up, down net.Conn, op route.Op, p []byte) (int64, error) {
	resp, err := route.DecodeResponse(p)
	if err != nil {
		return 0, fmt.Errorf("response from next hop: %w", err)
	}
	sent := int64(len(p))
	if err := n.passFrame(up, route.FrameResponse, p); err != nil {
		return 0, err
	}
	if resp.Status != route.StatusOK {
		return sent, nil
	}
	switch op {
	case route.OpGet:
		k, err := n.relayData(up, down, resp.Size)
		return sent + k, err
	case route.OpLs, route.OpList:
		for {
			p, err := n.copyFrame(up, down, route.FrameList)
			sent += int64(len(p))
			if err != nil {
				return sent, err
			}
			entries, err := route.DecodeList(p)
			if err != nil {
				return sent, fmt.Errorf("listing from next hop: %w", err)
			}
			if len(entries) == 0 { // an empty chunk ends the listing
				return sent, nil
			}
		}
	}
	return sent, nil
}

// relayData relays the client's START, then size-offset bytes of file data
// spliced from down to up, then the trailer.
func (n *Node) relayData(up, down net.Conn, size int64) (int64, error) {
	up.SetReadDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	p, err := n.copyFrame(down, up, route.FrameStart)
	if errors.Is(err, io.EOF) && p == nil {
		return 0, fmt.Errorf("client closed before START: %w", err)
	}
	if err != nil {
		return 0, err
	}
	off, below, err := route.DecodeStartBelow(p)
	if err != nil || off > size {
		return 0, fmt.Errorf("bad START from client: offset %d of %d: %w", off, size, err)
	}
	if below > 0 && size >= below {
		return 0, nil // the terminal sends nothing: the exchange is over
	}
	// The client sends nothing until it has the trailer: if it closes, stop.
	// The abort closes both: deadlines alone would be undone by copyIdle,
	// which renews them before every chunk or clears them on return.
	watch := watchCancel(up, func() { down.Close(); up.Close() })
	k, err := copyIdle(up, down, size-off, n.cfg.IdleTimeout)
	if watch.stop(err != nil) && err != nil {
		err = fmt.Errorf("%w: %w", errCanceled, err)
	}
	if err == nil && k != size-off {
		err = fmt.Errorf("%w: next hop sent %d of %d bytes", io.ErrUnexpectedEOF, k, size-off)
	}
	if err != nil {
		return k, fmt.Errorf("relay data: %w", err)
	}
	down.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
	_, err = n.copyFrame(up, down, route.FrameTrailer)
	return k, err
}

// copyFrame reads one frame of type want from src and writes it to dst,
// returning its payload.
func (n *Node) copyFrame(dst, src net.Conn, want route.FrameType) ([]byte, error) {
	t, p, err := route.ReadFrame(src, nil)
	if err == nil && t != want {
		err = fmt.Errorf("%w: frame type %d, want %d", route.ErrMalformed, t, want)
	}
	src.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, err
	}
	return p, n.passFrame(dst, want, p)
}

// passFrame writes a frame of type t with payload p.
func (n *Node) passFrame(dst net.Conn, t route.FrameType, p []byte) error {
	return writeFrame(dst, n.cfg.HeaderTimeout, func(b []byte) []byte {
		return append(route.AppendFrameHeader(b, t, len(p)), p...)
	})
}
