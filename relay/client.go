package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/relaychain/relaychain/route"
)

// ClientConfig configures a Client. Zero fields mean their defaults.
type ClientConfig struct {
	// Route is the hops to the terminal, first hop first. Required.
	Route route.Route
	// Timeout is an idle timeout: a request fails when no byte arrives for
	// this long. A slow but live transfer is never cut. Default 30s.
	Timeout time.Duration
	// DialTimeout bounds dialing the first hop. Default 10s.
	DialTimeout time.Duration
	// StreamWindow is the yamux receive window per stream.
	StreamWindow uint32
}

// DefaultClientTimeout is the default idle timeout of a client request.
const DefaultClientTimeout = 30 * time.Second

// Client sends requests along one route over a single held link to the
// first hop. It is safe for concurrent use; requests run in parallel, one
// yamux stream each.
type Client struct {
	cfg    ClientConfig
	dialer *dialer

	mu     sync.Mutex
	sess   *yamux.Session
	closed bool
}

// NewClient returns a client for cfg. It dials nothing until a request.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Route) == 0 {
		return nil, errors.New("client: empty route")
	}
	if len(cfg.Route) > route.HardMaxHops {
		return nil, fmt.Errorf("client: route of %d hops: %w", len(cfg.Route), ErrTooManyHops)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.StreamWindow == 0 {
		cfg.StreamWindow = DefaultStreamWindow
	}
	return &Client{cfg: cfg, dialer: newDialer(nil, cfg.DialTimeout)}, nil
}

// Close closes the link. Requests in flight fail. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sess != nil {
		return c.sess.Close()
	}
	return nil
}

// session returns the link to the first hop, dialing it when there is none
// or it died. The lock is held while dialing so that one dial serves all.
func (c *Client) session(ctx context.Context) (*yamux.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("client: %w", errClosed)
	}
	if c.sess != nil && !c.sess.IsClosed() {
		return c.sess, nil
	}
	first := c.cfg.Route[0]
	conn, err := c.dialer.dial(ctx, first, route.ModeMux)
	if err != nil {
		return nil, responseError(hopFailure(0, first, err))
	}
	sess, err := yamux.Client(conn, yamuxConfig(c.cfg.StreamWindow, c.cfg.DialTimeout))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start session with %s: %w", first, err)
	}
	c.sess = sess
	return sess, nil
}

// exchange is one request in flight: its stream, with every read under the
// idle timeout and the stream torn down when ctx is canceled.
type exchange struct {
	c      *Client
	s      net.Conn
	stopFn func() bool
}

// Read reads with the idle deadline renewed before each call.
func (x *exchange) Read(p []byte) (int, error) {
	x.s.SetReadDeadline(time.Now().Add(x.c.cfg.Timeout))
	n, err := x.s.Read(p)
	if err != nil && isTimeout(err) {
		err = fmt.Errorf("%w: no data for %s along route %s", ErrTimeout, x.c.cfg.Timeout, x.c.cfg.Route)
	}
	return n, err
}

func (x *exchange) Write(p []byte) (int, error) {
	x.s.SetWriteDeadline(time.Now().Add(x.c.cfg.Timeout))
	return x.s.Write(p)
}

func (x *exchange) close() {
	x.stopFn()
	x.s.Close()
}

// start opens a stream, sends the request and reads the response. A non-OK
// response comes back as a *HopError.
func (c *Client) start(ctx context.Context, op route.Op, name string) (*exchange, route.Response, error) {
	var resp route.Response
	sess, err := c.session(ctx)
	if err != nil {
		return nil, resp, err
	}
	s, err := sess.OpenStream()
	if err != nil {
		return nil, resp, fmt.Errorf("open stream to %s: %w", c.cfg.Route[0], err)
	}
	x := &exchange{c: c, s: s}
	x.stopFn = context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
	req := route.Request{Op: op, Route: c.cfg.Route, Name: name}
	frame, err := req.Append(nil)
	if err == nil {
		_, err = x.Write(frame)
	}
	if err == nil {
		resp, err = route.ReadResponse(x)
	}
	if err == nil && resp.Status != route.StatusOK {
		if resp.Hop == "" && resp.HopIndex < len(c.cfg.Route) {
			resp.Hop = c.cfg.Route[resp.HopIndex]
		}
		err = responseError(&resp)
	}
	if err != nil {
		x.close()
		return nil, resp, c.wrap(ctx, op, name, err)
	}
	return x, resp, nil
}

// wrap adds the request to an error, preferring ctx's error once canceled.
func (c *Client) wrap(ctx context.Context, op route.Op, name string, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	var he *HopError
	if errors.As(err, &he) {
		return err // already says which hop and what
	}
	if name != "" {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// FileInfo describes a file on the terminal.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
	Cached  bool
	SHA256  [32]byte // set by Get: the digest of the bytes received
}

// Stat returns the size and modification time of name, and whether the
// terminal holds it in its cache.
func (c *Client) Stat(ctx context.Context, name string) (FileInfo, error) {
	x, resp, err := c.start(ctx, route.OpStat, name)
	if err != nil {
		return FileInfo{}, err
	}
	x.close()
	return FileInfo{Name: name, Size: resp.Size, ModTime: time.Unix(0, resp.ModTime), Cached: resp.Cached}, nil
}

// Ls lists the files the terminal serves, recursively, sorted by name.
func (c *Client) Ls(ctx context.Context) ([]route.Entry, error) {
	return c.list(ctx, route.OpLs)
}

// List lists the files in the terminal's cache, sorted by name.
func (c *Client) List(ctx context.Context) ([]route.Entry, error) {
	return c.list(ctx, route.OpList)
}

func (c *Client) list(ctx context.Context, op route.Op) ([]route.Entry, error) {
	x, _, err := c.start(ctx, op, "")
	if err != nil {
		return nil, err
	}
	defer x.close()
	entries, err := route.ReadList(x, MaxListing)
	if err != nil {
		return nil, c.wrap(ctx, op, "", fmt.Errorf("read listing: %w", err))
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

// Get fetches name and writes its bytes to w. It checks the byte count
// against the announced size and the digest against the trailer; a short
// or corrupt transfer is an error, never a success. started, if not nil,
// is called once the size is known, before any byte is written.
func (c *Client) Get(ctx context.Context, name string, w io.Writer, started func(FileInfo)) (FileInfo, error) {
	x, resp, err := c.start(ctx, route.OpGet, name)
	if err != nil {
		return FileInfo{}, err
	}
	defer x.close()
	info := FileInfo{Name: name, Size: resp.Size, ModTime: time.Unix(0, resp.ModTime), Cached: resp.Cached}
	if started != nil {
		started(info)
	}
	if _, err := x.Write(route.AppendStart(nil, 0)); err != nil {
		return info, c.wrap(ctx, route.OpGet, name, fmt.Errorf("send start: %w", err))
	}
	h := sha256.New()
	n, err := copyBuffered(io.MultiWriter(w, h), io.LimitReader(x, resp.Size))
	if err == nil && n < resp.Size {
		err = fmt.Errorf("%w: got %d of %d bytes", ErrTruncated, n, resp.Size)
	}
	if err != nil {
		return info, c.wrap(ctx, route.OpGet, name, err)
	}
	alg, sum, err := route.ReadTrailer(x)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: no trailer after %d bytes", ErrTruncated, n)
		}
		return info, c.wrap(ctx, route.OpGet, name, err)
	}
	h.Sum(info.SHA256[:0])
	if alg != route.DigestSHA256 || string(sum) != string(info.SHA256[:]) {
		return info, c.wrap(ctx, route.OpGet, name, fmt.Errorf("%w: trailer %x, received %x", ErrDigest, sum, info.SHA256))
	}
	return info, nil
}
