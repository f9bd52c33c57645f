// Package relay implements the relaychain node (listener, link handshake,
// pooled yamux links to next hops, relaying, and the terminal file server)
// and the client side of the protocol. docs/protocol.md describes the wire.
package relay

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// Config configures a Node. The zero value of a field means its default,
// except CacheSize, where 0 turns the cache off as --cache-size 0 does;
// DefaultConfig returns every default filled in.
type Config struct {
	// Root is the directory served when a route ends at this node. Empty
	// means the node only relays.
	Root string
	// Allow lists the next hops this node may dial: CIDRs, IPs or
	// host:port entries. Nil means loopback only (127.0.0.0/8 and ::1).
	Allow []string
	// MaxHops caps the length of a route this node accepts.
	MaxHops int
	// HeaderTimeout bounds the link preface and the read of each request
	// header, so a silent peer is cut off.
	HeaderTimeout time.Duration
	// DialTimeout bounds dialing and handshaking with a next hop.
	DialTimeout time.Duration
	// IdleTimeout cuts off a next hop that sends nothing for this long
	// while an answer is awaited. It is not a bound on a whole transfer.
	IdleTimeout time.Duration
	// Linger bounds how long a relayed stream waits for its second
	// direction to finish once the first has, and how long the terminal
	// waits for a client's goodbye.
	Linger time.Duration
	// NoRequestLog leaves out the info line logged for each request that
	// succeeded or that its client canceled; failed requests are still
	// logged, at warn.
	NoRequestLog bool
	// StreamWindow is the yamux per-stream receive window in bytes that
	// every stream starts with.
	StreamWindow uint32
	// StreamWindowMax is the largest a stream's receive window grows to:
	// it doubles while the window, not the stream's reader or sender,
	// holds the stream back (the patched yamux,
	// third_party/yamux/growth.go). At or below StreamWindow, windows do
	// not grow.
	StreamWindowMax uint32
	// WindowBudget caps the growth of all of this node's stream windows
	// together, above their StreamWindow; a stream gives its growth back
	// when it closes. Negative turns growth off.
	WindowBudget int64
	// MaxStreamsPerLink caps concurrent streams on one inbound link; a
	// stream beyond it is answered busy.
	MaxStreamsPerLink int
	// MaxStreams caps concurrent streams over all inbound links, and with
	// them memory: a relayed stream whose reader stalls holds at most its
	// window of received bytes (the patched yamux counts a frame against
	// the window until it is passed on), in pooled buffers at most a
	// quarter larger than a frame over 4 KiB (up to twice for smaller
	// frames); windows start at StreamWindow and
	// grow by at most WindowBudget in all. Beyond it a stream is answered
	// busy. A stream stops counting once its answer is through.
	MaxStreams int
	// MaxLinks caps concurrent inbound links; a link beyond it is refused
	// with a busy preface.
	MaxLinks int
	// CacheSize is the terminal's cache budget in bytes; 0 turns the cache
	// off. Negative means the default.
	CacheSize int64
	// TLS, when set, makes every link of this node mutual TLS 1.3, in and
	// out: plaintext peers and certificates from another CA are refused.
	TLS *TLS
	// Source overrides the files served under Root (tests use it to count
	// disk reads). Nil means os.OpenRoot(Root).
	Source cache.Source
	// Logger receives one line per request. Nil discards logs.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultDialTimeout   = 10 * time.Second
	DefaultLinger        = 10 * time.Second
	// DefaultIdleTimeout is twice the client's, so that a stalled hop is
	// reported by the client's own idle timeout first.
	DefaultIdleTimeout       = 60 * time.Second
	DefaultStreamWindow      = 1 << 20
	DefaultStreamWindowMax   = 16 << 20
	DefaultWindowBudget      = 16 << 20
	DefaultMaxStreamsPerLink = 256
	DefaultMaxStreams        = 768
	DefaultMaxLinks          = 1024
)

// minStreamWindow is the smallest window a stream may start with (yamux's
// initial window), and maxStreamWindow bounds the window it may grow to.
const minStreamWindow, maxStreamWindow = 256 << 10, 1 << 30

// streamWindows fills in the defaults of a node's or a client's window
// settings (Config, ClientConfig) and checks them.
func streamWindows(window, windowMax *uint32, budget *int64) error {
	if *window == 0 {
		*window = DefaultStreamWindow
	}
	if *windowMax == 0 {
		*windowMax = DefaultStreamWindowMax
	}
	if *budget == 0 {
		*budget = DefaultWindowBudget
	}
	switch {
	case *window < minStreamWindow:
		return fmt.Errorf("stream window %d: must be at least 256 KiB", *window)
	case *windowMax > maxStreamWindow:
		return fmt.Errorf("stream window max %d: must be at most 1 GiB", *windowMax)
	}
	return nil
}

// DefaultConfig returns a relay-only configuration with every default set.
func DefaultConfig() Config {
	return Config{
		MaxHops:           route.DefaultMaxHops,
		HeaderTimeout:     DefaultHeaderTimeout,
		DialTimeout:       DefaultDialTimeout,
		Linger:            DefaultLinger,
		IdleTimeout:       DefaultIdleTimeout,
		StreamWindow:      DefaultStreamWindow,
		StreamWindowMax:   DefaultStreamWindowMax,
		WindowBudget:      DefaultWindowBudget,
		MaxStreamsPerLink: DefaultMaxStreamsPerLink,
		MaxStreams:        DefaultMaxStreams,
		MaxLinks:          DefaultMaxLinks,
		CacheSize:         cache.DefaultMaxBytes,
	}
}

// withDefaults fills zero fields from DefaultConfig and validates.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.MaxHops == 0 {
		c.MaxHops = d.MaxHops
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = d.HeaderTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.Linger == 0 {
		c.Linger = d.Linger
	}
	if c.MaxStreamsPerLink == 0 {
		c.MaxStreamsPerLink = d.MaxStreamsPerLink
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	if c.MaxLinks == 0 {
		c.MaxLinks = d.MaxLinks
	}
	if c.CacheSize < 0 {
		c.CacheSize = d.CacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := streamWindows(&c.StreamWindow, &c.StreamWindowMax, &c.WindowBudget); err != nil {
		return c, err
	}
	switch {
	case c.MaxHops < 1 || c.MaxHops > route.HardMaxHops:
		return c, fmt.Errorf("max-hops %d: must be 1..%d", c.MaxHops, route.HardMaxHops)
	case c.HeaderTimeout < 0 || c.DialTimeout < 0 || c.Linger < 0 || c.IdleTimeout < 0:
		return c, fmt.Errorf("timeouts must be positive")
	case c.MaxStreamsPerLink < 1 || c.MaxStreams < 1 || c.MaxLinks < 1:
		return c, fmt.Errorf("stream and link limits must be at least 1")
	}
	return c, nil
}
