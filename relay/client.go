package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/cache"
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
	// StreamWindow is the yamux receive window each stream starts with.
	StreamWindow uint32
	// StreamWindowMax and WindowBudget let a stream's window grow, as a
	// node's do (Config): up to StreamWindowMax, and by WindowBudget over
	// all of this client's streams. Defaults DefaultStreamWindowMax and
	// DefaultWindowBudget; a negative WindowBudget turns growth off.
	StreamWindowMax uint32
	WindowBudget    int64
	// Verify says how received bytes are checked. Default VerifySHA256.
	Verify Verify
	// Transport picks the link a GET travels on. Default TransportAuto.
	Transport Transport
	// TLS, when set, makes the link to the first hop mutual TLS 1.3.
	TLS *TLS
	// RawThreshold is the size from which TransportAuto fetches over a raw
	// link. Default DefaultRawThreshold.
	RawThreshold int64
}

// Transport picks the link a GET travels on.
type Transport int

// Transports.
const (
	// TransportAuto uses the mux for listings, stats and small files, and
	// a raw link for files of RawThreshold bytes or more.
	TransportAuto Transport = iota
	// TransportMux sends everything as yamux streams over one held link.
	TransportMux
	// TransportRaw fetches files over pooled raw links, one per transfer.
	TransportRaw
)

// DefaultRawThreshold is the file size from which TransportAuto goes raw.
const DefaultRawThreshold = 4 << 20

// Verify says how a client checks the bytes of a GET.
type Verify int

// Verification modes.
const (
	// VerifySHA256 checks the byte count, the CRC-64 of the bytes and
	// their SHA-256 against the terminal's. It is the default.
	VerifySHA256 Verify = iota
	// VerifyCRC64 checks the byte count and the CRC-64 (CRC-64/NVME) only.
	// On links faster than SHA-256 runs on the client's CPU, it keeps the
	// transfer at wire speed; FileInfo.SHA256 is then the terminal's word.
	VerifyCRC64
)

// DefaultClientTimeout is the default idle timeout of a client request.
const DefaultClientTimeout = 30 * time.Second

// Client sends requests along one route over held links to the first hop:
// yamux sessions (one, and more when one carries many streams) and, for
// large files, pooled raw links. It is safe for concurrent use; requests
// run in parallel, one stream each.
type Client struct {
	cfg    ClientConfig
	dialer *dialer
	raw    *rawPool // idle raw links to the first hop

	// closing is canceled by Close, which fails every request in flight,
	// raw links included (they are not part of the session).
	closing     context.Context
	cancelClose context.CancelFunc

	links *sessionSet // mux links to the first hop
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
	if err := streamWindows(&cfg.StreamWindow, &cfg.StreamWindowMax, &cfg.WindowBudget); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.RawThreshold <= 0 {
		cfg.RawThreshold = DefaultRawThreshold
	}
	d := newDialer(nil, cfg.DialTimeout, cfg.TLS)
	c := &Client{cfg: cfg, dialer: d, raw: newRawPool(d)}
	c.closing, c.cancelClose = context.WithCancel(context.Background())
	// A stream's close timeout (yamuxConfig) also runs while the caller's
	// writer holds the reading back: twice the idle timeout, as a node's
	// is by default, so that a slow writer is cut no sooner than the
	// relays would cut it.
	first, ycfg := cfg.Route[0], yamuxConfig(cfg.StreamWindow, cfg.StreamWindowMax, cfg.WindowBudget, 2*cfg.Timeout)
	c.links = &sessionSet{dial: func(ctx context.Context) (*yamux.Session, error) {
		s, err := dialSession(ctx, d, first, ycfg)
		if err != nil {
			return nil, responseError(hopFailure(0, first, err))
		}
		return s, nil
	}}
	return c, nil
}

// Close closes the links. Requests in flight fail. It is idempotent.
func (c *Client) Close() error {
	c.cancelClose()
	c.raw.close()
	c.links.close()
	return nil
}

// exchange is one request in flight: its stream, with every read and
// write under the idle timeout, and the stream torn down when ctx is
// canceled. Renewing the deadline and canceling take one lock, so that a
// cancel is never undone by a renewal.
type exchange struct {
	c      *Client
	s      net.Conn
	stopFn func() bool

	mu       sync.Mutex
	canceled bool
}

func newExchange(ctx context.Context, c *Client, s net.Conn) *exchange {
	x := &exchange{c: c, s: s}
	stopCtx := context.AfterFunc(ctx, func() {
		x.mu.Lock()
		x.canceled = true
		s.SetDeadline(time.Now())
		x.mu.Unlock()
	})
	stopClose := context.AfterFunc(c.closing, func() { reset(s) })
	x.stopFn = func() bool {
		a, b := stopCtx(), stopClose()
		return a && b
	}
	return x
}

// renew pushes the deadline set by set out by the idle timeout, unless the
// exchange was canceled.
func (x *exchange) renew(set func(time.Time) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.canceled {
		return context.Canceled
	}
	return set(time.Now().Add(x.c.cfg.Timeout))
}

// Read reads with the idle deadline renewed before each call.
func (x *exchange) Read(p []byte) (int, error) {
	if err := x.renew(x.s.SetReadDeadline); err != nil {
		return 0, err
	}
	n, err := x.s.Read(p)
	if err != nil && isTimeout(err) && !x.isCanceled() {
		if x.ownDeadline(err) {
			err = fmt.Errorf("%w: no data for %s along route %s", ErrTimeout, x.c.cfg.Timeout, x.c.cfg.Route)
		} else {
			err = fmt.Errorf("%w: the link to %s failed: %w", ErrTimeout, x.c.cfg.Route[0], err)
		}
	}
	return n, err
}

// ownDeadline reports whether a timeout err is the exchange's own idle
// deadline passing, rather than the mux link under it ending on a timeout
// of its own (a write to the connection that timed out), which its
// streams report as their cause.
func (x *exchange) ownDeadline(err error) bool {
	if _, mux := x.s.(*yamux.Stream); mux {
		return errors.Is(err, yamux.ErrTimeout)
	}
	return true
}

func (x *exchange) Write(p []byte) (int, error) {
	if err := x.renew(x.s.SetWriteDeadline); err != nil {
		return 0, err
	}
	return x.s.Write(p)
}

// writeClose writes p as the last bytes the client sends: on a mux stream
// they carry the stream's FIN. A raw link stays open for its next request.
func (x *exchange) writeClose(p []byte) (int, error) {
	if _, mux := x.s.(*yamux.Stream); !mux {
		return x.Write(p)
	}
	if err := x.renew(x.s.SetWriteDeadline); err != nil {
		return 0, err
	}
	return writeClose(x.s, p)
}

func (x *exchange) isCanceled() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.canceled
}

// close ends an exchange that completed, or that the client leaves while
// the other side ends it on its own.
func (x *exchange) close() { x.end(false) }

// abort ends an exchange that failed or was canceled: a mux stream is
// reset, which cancels the request at every hop; a raw link is closed.
func (x *exchange) abort() { x.end(true) }

func (x *exchange) end(abort bool) {
	x.stopFn()
	if abort {
		reset(x.s)
	} else {
		x.s.Close()
	}
	if _, mux := x.s.(*yamux.Stream); mux {
		x.c.links.streamDone()
	}
}

// release returns a raw link whose exchange completed to the pool.
func (x *exchange) release() {
	if !x.stopFn() { // ctx fired: the link's deadline is spoiled
		x.s.Close()
		return
	}
	x.c.raw.put(x.c.cfg.Route[0], x.s)
}

// start opens a mux stream, sends the request and reads the response. A
// non-OK response comes back as a *HopError.
func (c *Client) start(ctx context.Context, op route.Op, name string, pipelineStart bool) (*exchange, route.Response, error) {
	s, err := c.links.open(ctx)
	if err != nil {
		var he *HopError
		if !errors.As(err, &he) {
			err = fmt.Errorf("open stream to %s: %w", c.cfg.Route[0], err)
		}
		return nil, route.Response{}, c.wrap(ctx, op, name, err)
	}
	x, resp, err := c.exchange(ctx, s, op, name, pipelineStart)
	if err != nil {
		x.abort()
		return nil, resp, c.wrap(ctx, op, name, err)
	}
	return x, resp, nil
}

// startRaw is start over a pooled raw link. A link from the pool that
// turns out stale before any answer is replaced by a fresh one, once.
func (c *Client) startRaw(ctx context.Context, op route.Op, name string) (*exchange, route.Response, error) {
	first := c.cfg.Route[0]
	for attempt := 0; ; attempt++ {
		conn, reused, err := c.raw.get(ctx, first)
		if err != nil {
			return nil, route.Response{}, c.wrap(ctx, op, name, responseError(hopFailure(0, first, err)))
		}
		// Never pipelined: after an error answer a START would be left
		// on the link, which carries the next request.
		x, resp, err := c.exchange(ctx, conn, op, name, false)
		var he *HopError
		switch {
		case err == nil:
			return x, resp, nil
		case errors.As(err, &he): // a complete answer: the link is fine
			x.release()
		case reused && attempt == 0 && ctx.Err() == nil:
			x.abort()
			continue
		default:
			x.abort()
		}
		return nil, resp, c.wrap(ctx, op, name, err)
	}
}

// exchange sends the request on s, and START{0} right behind it if
// pipelineStart, and reads the response. On a mux stream, a request after
// which the client sends nothing more (a pipelined GET, STAT, LS, LIST)
// carries the client's FIN.
func (c *Client) exchange(ctx context.Context, s net.Conn, op route.Op, name string, pipelineStart bool) (*exchange, route.Response, error) {
	var resp route.Response
	x := newExchange(ctx, c, s)
	req := route.Request{Op: op, Route: c.cfg.Route, Name: name}
	frame, err := req.Append(nil)
	if pipelineStart {
		// START{0} rides with the request: the terminal finds it waiting
		// once it has answered, which saves a round trip through the chain.
		// With the auto transport it is conditional: a file of
		// RawThreshold bytes or more is not sent on the mux at all.
		var below int64
		if c.cfg.Transport == TransportAuto {
			below = c.cfg.RawThreshold
		}
		frame = route.AppendStartBelow(frame, 0, below)
	}
	if err == nil {
		write := x.Write
		if pipelineStart || op != route.OpGet {
			write = x.writeClose // nothing follows the request
		}
		_, err = write(frame)
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
	return x, resp, err
}

// wrap adds the request to an error, preferring ctx's error once canceled.
func (c *Client) wrap(ctx context.Context, op route.Op, name string, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", ctx.Err())
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
	// Offset is how many bytes a resumed download already had.
	Offset int64
	SHA256 [32]byte // set by Get: the file's SHA-256 (checked unless VerifyCRC64)
}

// Stat returns the size and modification time of name, and whether the
// terminal holds it in its cache.
func (c *Client) Stat(ctx context.Context, name string) (FileInfo, error) {
	x, resp, err := c.start(ctx, route.OpStat, name, false)
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
	x, _, err := c.start(ctx, op, "", false)
	if err != nil {
		return nil, err
	}
	entries, err := route.ReadList(x, MaxListing)
	if err != nil {
		x.abort()
		return nil, c.wrap(ctx, op, "", fmt.Errorf("read listing: %w", err))
	}
	x.close()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries, nil
}

// Get fetches name and writes its bytes to w. It checks the byte count
// against the announced size and the digests against the trailer; a short
// or corrupt transfer is an error, never a success. started, if not nil,
// is called once the size is known, before any byte is written.
func (c *Client) Get(ctx context.Context, name string, w io.Writer, started func(FileInfo)) (FileInfo, error) {
	return c.get(ctx, name, w, nil, started)
}

// startFunc decides, once the terminal's response is known, the offset to
// start a GET at. For an offset above zero it returns a SHA-256 that has
// hashed the bytes before the offset, so that the whole file is verified.
type startFunc func(FileInfo, *route.Response) (off int64, prefix hash.Hash, err error)

// get runs one GET over the transport the client's config picks. A nil
// start fetches the whole file, with START sent along with the request on
// the mux; started, if not nil, is called once the size is known.
func (c *Client) get(ctx context.Context, name string, w io.Writer, start startFunc, started func(FileInfo)) (FileInfo, error) {
	var x *exchange
	var resp route.Response
	var err error
	raw := c.cfg.Transport == TransportRaw
	pipelined := start == nil && !raw
	if raw {
		x, resp, err = c.startRaw(ctx, route.OpGet, name)
	} else {
		x, resp, err = c.start(ctx, route.OpGet, name, pipelined)
		if err == nil && c.cfg.Transport == TransportAuto && resp.Size >= c.cfg.RawThreshold {
			// Large: the terminal sent nothing for the conditional START;
			// leave the mux and fetch over a raw link, which splices.
			x.close()
			raw, pipelined = true, false
			x, resp, err = c.startRaw(ctx, route.OpGet, name)
		}
	}
	if err != nil {
		return FileInfo{}, err
	}
	info := FileInfo{Name: name, Size: resp.Size, ModTime: time.Unix(0, resp.ModTime), Cached: resp.Cached}
	if started != nil {
		started(info)
	}
	var off int64
	var prefix hash.Hash
	if start != nil {
		off, prefix, err = start(info, &resp)
	}
	if err == nil && (off < 0 || off > resp.Size) {
		err = fmt.Errorf("start offset %d outside the file's %d bytes", off, resp.Size)
	}
	if err != nil && !pipelined {
		// No START sent: closing abandons the GET (the terminal sends
		// nothing more).
		x.close()
		return info, c.wrap(ctx, route.OpGet, name, err)
	}
	if !pipelined {
		if _, err = x.writeClose(route.AppendStart(nil, off)); err != nil {
			err = fmt.Errorf("send start: %w", err)
		}
	}
	if err == nil {
		err = c.receive(x, w, resp.Size-off, prefix, &info)
	}
	if err != nil {
		x.abort()
		return info, c.wrap(ctx, route.OpGet, name, err)
	}
	if raw {
		x.release()
	} else {
		x.close()
	}
	return info, nil
}

// readErr remembers the error its reader returned.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// receive copies exactly n bytes from r to w, then reads the trailer and
// checks the CRC-64 of the bytes, and the whole file's SHA-256 when the
// client verifies by SHA-256 or prefix (which has hashed the bytes before
// these) is set. It fills in info.SHA256.
func (c *Client) receive(r io.Reader, w io.Writer, n int64, prefix hash.Hash, info *FileInfo) error {
	crc := cache.NewCRC()
	sinks := []io.Writer{w, crc}
	sha := prefix
	if sha == nil && c.cfg.Verify == VerifySHA256 {
		sha = sha256.New()
	}
	if sha != nil {
		sinks = append(sinks, sha)
	}
	src := &readErr{r: io.LimitReader(r, n)}
	got, err := copyBuffered(io.MultiWriter(sinks...), src)
	if err == nil && got < n {
		err = fmt.Errorf("%w: got %d of %d bytes", ErrTruncated, got, n)
	} else if err != nil && err == src.err {
		// The route broke mid-body (a write error, such as a full disk,
		// is returned as it is).
		err = fmt.Errorf("%w after %d of %d bytes: %w", ErrTruncated, got, n, err)
	}
	if err != nil {
		return err
	}
	tr, err := route.ReadTrailer(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: no trailer after %d bytes", ErrTruncated, got)
		}
		return err
	}
	if !tr.HasCRC64 {
		// A terminal that breaks the protocol, not a sign of damaged bytes:
		// a resumed download keeps its partial file.
		return fmt.Errorf("%w: trailer without a CRC-64 after %d bytes", ErrProtocol, got)
	}
	if tr.CRC64 != crc.Sum64() {
		return fmt.Errorf("%w: CRC-64 %016x, received %016x", ErrDigest, tr.CRC64, crc.Sum64())
	}
	if sha == nil {
		info.SHA256 = tr.SHA256
		return nil
	}
	sha.Sum(info.SHA256[:0])
	if !tr.HasSHA256 || tr.SHA256 != info.SHA256 {
		return fmt.Errorf("%w: SHA-256 %x, received %x", ErrDigest, tr.SHA256, info.SHA256)
	}
	return nil
}
