package yamux

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Config is used to tune the Yamux session
type Config struct {
	// AcceptBacklog is used to limit how many streams may be
	// waiting an accept.
	AcceptBacklog int

	// EnableKeepalive is used to do a period keep alive
	// messages using a ping.
	EnableKeepAlive bool

	// KeepAliveInterval is how often to perform the keep alive
	KeepAliveInterval time.Duration

	// ConnectionWriteTimeout is meant to be a "safety valve" timeout after
	// we which will suspect a problem with the underlying connection and
	// close it. This is only applied to writes, where's there's generally
	// an expectation that things will move along quickly.
	ConnectionWriteTimeout time.Duration

	// MaxStreamWindowSize is used to control the maximum
	// window size that we allow for a stream.
	MaxStreamWindowSize uint32

	// StreamOpenTimeout is the maximum amount of time that a stream will
	// be allowed to remain in pending state while waiting for an ack from the peer.
	// Once the timeout is reached the session will be gracefully closed.
	// A zero value disables the StreamOpenTimeout allowing unbounded
	// blocking on OpenStream calls.
	StreamOpenTimeout time.Duration

	// StreamCloseTimeout is the maximum time that a stream will allowed to
	// be in a half-closed state when `Close` is called before forcibly
	// closing the connection. Forcibly closed connections will empty the
	// receive buffer, drop any future packets received for that stream,
	// and send a RST to the remote side.
	//
	// relaychain patch: the time runs from the close, the peer's last
	// data frame or the reader's last take from the queue, whichever is
	// latest; so it cuts off a peer that went silent, or a stream nobody
	// reads, not a long answer to a request sent with its FIN.
	StreamCloseTimeout time.Duration

	// LogOutput is used to control the log destination. Either Logger or
	// LogOutput can be set, not both.
	LogOutput io.Writer

	// LazyOpen (relaychain patch) sends nothing when a stream is opened or
	// accepted: the SYN, or the ACK, and any window growth ride on the
	// stream's first frame out (its first data, or its close). A request
	// and its answer then cost one frame each way instead of three. The
	// peer learns of a stream only once its opener writes or closes, so it
	// suits protocols where the opener speaks first; with it off, streams
	// open as upstream's do.
	LazyOpen bool

	// HandlerNeverWaits (relaychain patch) says the ServeStreams handler
	// never waits for a write, on this session or any other: it only
	// starts goroutines or calls what never waits (Peek, TryOpenStream,
	// SendNoWait, SendNoWaitFor, a Relay whose first step finds nothing
	// to send). The receive loop then keeps the frames it holds back for
	// other connections (cork.go) while the handler runs, so that what
	// the handler sends with SendNoWaitFor joins them in one write; without
	// it they are written out before each handler call, as a handler that
	// waited for one of those connections would wait for itself.
	HandlerNeverWaits bool

	// WindowGrowth (relaychain patch), when not nil, lets a stream's
	// receive window grow past MaxStreamWindowSize, doubling up to the
	// budget's Max, while the window rather than the reader limits the
	// stream; the growth is drawn from the budget, which sessions may
	// share, and given back when the stream closes (growth.go).
	WindowGrowth *WindowBudget

	// Go (relaychain patch), when not nil, starts the goroutines that
	// move a Relay's frames (relay.go) in place of a go statement. A
	// Relay starts one whenever it has frames to move and none is
	// running, many per stream, and such a goroutine grows its stack
	// from the smallest size each time: a pool of goroutines that keep
	// their stacks saves that. Go must not wait, and must run f.
	Go func(f func())

	// Logger is used to pass in the logger to be used. Either Logger or
	// LogOutput can be set, not both.
	Logger Logger
}

func (c *Config) Clone() *Config {
	c2 := *c
	return &c2
}

// DefaultConfig is used to return a default configuration
func DefaultConfig() *Config {
	return &Config{
		AcceptBacklog:          256,
		EnableKeepAlive:        true,
		KeepAliveInterval:      30 * time.Second,
		ConnectionWriteTimeout: 10 * time.Second,
		MaxStreamWindowSize:    initialStreamWindow,
		StreamCloseTimeout:     5 * time.Minute,
		StreamOpenTimeout:      75 * time.Second,
		LogOutput:              os.Stderr,
	}
}

// VerifyConfig is used to verify the sanity of configuration
func VerifyConfig(config *Config) error {
	if config.AcceptBacklog <= 0 {
		return fmt.Errorf("backlog must be positive")
	}
	if config.KeepAliveInterval == 0 {
		return fmt.Errorf("keep-alive interval must be positive")
	}
	if config.MaxStreamWindowSize < initialStreamWindow {
		return fmt.Errorf("MaxStreamWindowSize must be larger than %d", initialStreamWindow)
	}
	if config.LogOutput != nil && config.Logger != nil {
		return fmt.Errorf("both Logger and LogOutput may not be set, select one")
	} else if config.LogOutput == nil && config.Logger == nil {
		return fmt.Errorf("one of Logger or LogOutput must be set, select one")
	}
	return nil
}

// Server is used to initialize a new server-side connection.
// There must be at most one server-side connection. If a nil config is
// provided, the DefaultConfiguration will be used.
func Server(conn io.ReadWriteCloser, config *Config) (*Session, error) {
	if config == nil {
		config = DefaultConfig()
	}
	if err := VerifyConfig(config); err != nil {
		return nil, err
	}
	return newSession(config, conn, false), nil
}

// Client is used to initialize a new client-side connection.
// There must be at most one client-side connection.
func Client(conn io.ReadWriteCloser, config *Config) (*Session, error) {
	if config == nil {
		config = DefaultConfig()
	}

	if err := VerifyConfig(config); err != nil {
		return nil, err
	}
	return newSession(config, conn, true), nil
}
