package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/route"
)

// errNotNode marks a peer that did not answer the link preface like a node.
var errNotNode = errors.New("did not answer like a relaychain node")

// errBusyLink marks a peer that refused the link because it is at its limit.
var errBusyLink = errors.New("node is at its link limit")

// dialPreface writes the dialer's preface and checks the acceptor's answer,
// all under deadline. Nothing of a request is sent before the peer has
// proved it is a node.
func dialPreface(conn net.Conn, mode route.Mode, deadline time.Time) error {
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	out := make([]byte, 0, route.PrefaceLen)
	out = append(append(out, route.Magic...), route.Version, byte(mode))
	if _, err := conn.Write(out); err != nil {
		return fmt.Errorf("write preface: %w", err)
	}
	var in [route.PrefaceLen]byte
	if k, err := io.ReadFull(conn, in[:]); err != nil {
		var op *net.OpError
		switch {
		case errors.As(err, &op) && op.Op == "remote error": // a TLS alert
			// TLS 1.3: the acceptor checks our certificate after our side
			// of the handshake returned, and says so with an alert.
			return fmt.Errorf("%w: the peer refused this side's certificate: %w", errAuth, err)
		case isTimeout(err):
			return fmt.Errorf("read preface: %w", err)
		case k == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
			return fmt.Errorf("%w: it closed the link at once (does it require TLS?)", errNotNode)
		}
		return fmt.Errorf("read preface: %w (%w)", errNotNode, err)
	}
	if string(in[:4]) != route.Magic {
		return fmt.Errorf("preface %q: %w", in[:], errNotNode)
	}
	if in[4] != route.Version {
		return versionMismatch(in[4])
	}
	switch route.Status(in[5]) {
	case route.StatusOK:
	case route.StatusBusy:
		return errBusyLink
	case route.StatusAuth:
		return fmt.Errorf("%w: the peer requires mutual TLS", errAuth)
	default:
		return fmt.Errorf("peer refused the link: %s", route.Status(in[5]))
	}
	return conn.SetDeadline(time.Time{})
}

// versionMismatch is the error for a peer's preface of another protocol
// version.
func versionMismatch(theirs byte) error {
	return fmt.Errorf("%w: it speaks relaychain protocol version %d, this node version %d",
		errNotNode, theirs, route.Version)
}

// acceptPreface reads a dialer's preface under deadline and returns its mode.
// It answers nothing; the caller answers with answerPreface.
func acceptPreface(conn net.Conn, deadline time.Time) (route.Mode, error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return 0, fmt.Errorf("set deadline: %w", err)
	}
	var in [route.PrefaceLen]byte
	if _, err := io.ReadFull(conn, in[:]); err != nil {
		return 0, fmt.Errorf("read preface: %w", err)
	}
	if string(in[:4]) != route.Magic {
		return 0, fmt.Errorf("preface %q: %w", in[:], errNotNode)
	}
	if in[4] != route.Version {
		// Say which version this node speaks, so that the dialer can
		// tell its user why the link failed.
		answerPreface(conn, route.StatusNotNode, deadline)
		return 0, versionMismatch(in[4])
	}
	mode := route.Mode(in[5])
	if mode != route.ModeMux && mode != route.ModeRaw {
		return 0, fmt.Errorf("unknown link mode %q", in[5])
	}
	return mode, conn.SetReadDeadline(time.Time{})
}

// answerPreface writes the acceptor's preface with status st.
func answerPreface(conn net.Conn, st route.Status, deadline time.Time) error {
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	out := append([]byte(route.Magic), route.Version, byte(st))
	if _, err := conn.Write(out); err != nil {
		return fmt.Errorf("write preface: %w", err)
	}
	return conn.SetWriteDeadline(time.Time{})
}

// yamuxConfig returns the session settings shared by nodes and clients:
// streams start at window bytes and, with windowMax above it and a positive
// budget, grow up to windowMax while the window limits them, drawing on
// one budget for every session made with this config. idle is the close
// timeout of a stream (see below): the node's idle timeout.
func yamuxConfig(window, windowMax uint32, budget int64, idle time.Duration) *yamux.Config {
	y := yamux.DefaultConfig()
	y.MaxStreamWindowSize = window
	if windowMax > window && budget > 0 {
		y.WindowGrowth = yamux.NewWindowBudget(windowMax, budget)
	}
	y.LogOutput = io.Discard
	y.EnableKeepAlive = true
	y.KeepAliveInterval = 15 * time.Second
	y.ConnectionWriteTimeout = 30 * time.Second
	// yamux closes the whole session when one stream's open is not
	// acknowledged within StreamOpenTimeout: one slow open must not kill
	// every other request on the link, so it is off. A dead peer is found
	// by keepalive, and each request has its own deadlines.
	y.StreamOpenTimeout = 0
	// A stream closed on this side whose peer then sends nothing, and no
	// FIN, for the idle timeout (while nothing is read from it either) is
	// reset, rather than held for yamux's default 5 minutes. The time
	// runs from the peer's last data frame or the last read (patched
	// yamux): a request goes with its FIN, so a fixed time from the close
	// would cut every answer that takes longer.
	y.StreamCloseTimeout = idle
	// Every stream starts with a request from its opener, so the SYN and
	// the ACK can ride on the first frame each way (patched yamux).
	y.LazyOpen = true
	// acceptStreams' handler never waits for a write (it serves a
	// request inline with calls that never wait, or hands it to a
	// goroutine: its own, or a hop's queue worker),
	// so the requests it forwards join the frames the receive loop
	// batches for the same next hop (patched yamux, cork.go).
	y.HandlerNeverWaits = true
	return y
}

// dialer dials next hops: TCP with the allow list checked on the resolved
// address, then the preface.
type dialer struct {
	nd      net.Dialer
	timeout time.Duration
	tls     *tls.Config // nil for plaintext links
}

func newDialer(allow *allowList, timeout time.Duration, id *TLS) *dialer {
	d := &dialer{timeout: timeout}
	if id != nil {
		d.tls = id.clientConfig()
	}
	d.nd.Timeout = timeout
	d.nd.KeepAlive = 15 * time.Second
	if allow != nil {
		d.nd.ControlContext = allow.control
	}
	return d
}

// dial connects to addr and completes the preface for mode.
func (d *dialer) dial(ctx context.Context, addr string, mode route.Mode) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := d.nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if d.tls != nil {
		if conn, err = handshake(conn, d.tls, false, deadline); err != nil {
			return nil, err
		}
	}
	if err := dialPreface(conn, mode, deadline); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
