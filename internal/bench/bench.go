// Package bench measures relaychain against baselines in one run on one
// machine: bulk throughput through chains of relays (against a plain Go TCP
// relay chain, socat and nginx), the tuning of the mux path, small-request
// latency and concurrency (against an nginx reverse-proxy chain driven by
// the same load driver), the memory of a relay under many streams, and
// what mutual TLS on every link costs a bulk transfer.
//
// Every relaychain node and every baseline hop is a separate process on
// loopback: nodes are built from ./cmd/node, the Go TCP baseline runs as
// the bench binary re-executed in a role (see RoleRequested), socat and
// nginx are the system's. The clients and load drivers run in the bench
// process. Since the machine is shared and noisy, every goal is a ratio
// against a baseline measured in the same run, and systems are measured in
// interleaved rounds so that noise falls on all of them alike.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Suites, selectable with Config.Suites.
const (
	// SuiteBulk measures MB/s of one large file through 0..N relays.
	SuiteBulk = "bulk"
	// SuiteTLS measures what mutual TLS on every link costs a bulk
	// transfer, raw and mux, against the same chain in plaintext and the
	// Go TCP baseline.
	SuiteTLS = "tls"
	// SuiteTune measures the mux path across stream windows and node
	// binaries (Config.Variants).
	SuiteTune = "tune"
	// SuiteLatency measures small GETs: latency percentiles and requests/s
	// at several concurrencies (against an nginx reverse-proxy chain driven
	// by the same load driver), and the cost of each extra relay.
	SuiteLatency = "latency"
	// SuiteStreams measures relay memory under many concurrent streams and
	// over many requests.
	SuiteStreams = "streams"
)

// AllSuites lists every suite in the order they run.
var AllSuites = []string{SuiteBulk, SuiteTLS, SuiteTune, SuiteLatency, SuiteStreams}

// TuneWindow is a stream window of the tune suite: Start, growing up to Max
// while it limits a stream (node --stream-window-max); a Max at or below
// Start is a fixed window.
type TuneWindow struct {
	Start, Max uint32
}

// Grows reports whether the window grows.
func (w TuneWindow) Grows() bool { return w.Max > w.Start }

// String returns the window as the -windows flag takes it: "1 MiB" or
// "1 MiB:16 MiB".
func (w TuneWindow) String() string {
	if w.Grows() {
		return fmtSize(int64(w.Start)) + ":" + fmtSize(int64(w.Max))
	}
	return fmtSize(int64(w.Start))
}

// Variant is an extra node binary measured by the tune suite next to the
// one built from this tree (e.g. one built with another copy buffer size).
type Variant struct {
	Name   string // label in the report
	Bin    string // path of the node binary
	Window uint32 // stream window of its chain and client; 0: relay.DefaultStreamWindow
}

// Config says what to measure. The zero value of a field means its
// default from DefaultConfig; ShortConfig is the CI smoke configuration.
type Config struct {
	// Suites to run, from AllSuites. Nil means all.
	Suites []string
	// Size is the bulk file's size in bytes.
	Size int64
	// Relays lists the chain lengths of the bulk suite; the latency suite
	// reports the extra-relay cost for the same lengths.
	Relays []int
	// Runs is how many times each bulk figure is measured; the report
	// gives the median.
	Runs int
	// Transports and Verifies select the relaychain client modes of the
	// bulk suite: "raw", "mux"; "sha256", "crc64".
	Transports []string
	Verifies   []string
	// FullMatrixAt lists the chain lengths at which the bulk suite measures
	// every transport × verify × cache combination; elsewhere the mux is
	// measured with crc64, on a hit and with the digest remembered.
	FullMatrixAt []int
	// TLSRelays is the chain length of the TLS suite (which moves a file
	// of Size bytes).
	TLSRelays int
	// NoSocat and NoNginx leave those peers out even when installed.
	NoSocat, NoNginx bool

	// TuneSize is the file size of the tune suite.
	TuneSize int64
	// TuneRelays is the chain length of the tune suite.
	TuneRelays int
	// Windows are the stream windows the tune suite compares.
	Windows []TuneWindow
	// Variants are extra node binaries for the tune suite.
	Variants []Variant

	// SmallSize is the size of the small file of the latency suites.
	SmallSize int64
	// LatencyRelays is the chain length for the concurrency table.
	LatencyRelays int
	// Concurrency lists the numbers of concurrent requests.
	Concurrency []int
	// LatencyTime is how long each latency run lasts; each figure is the
	// median of Runs runs.
	LatencyTime time.Duration

	// Streams is the number of concurrent streams through one relay.
	Streams int
	// StreamsWindow is the stream window of the streams suite's nodes.
	StreamsWindow uint32
	// StreamsFile is the size of the file each stream fetches; larger
	// than what the client buffers, so that the relay's buffers fill.
	StreamsFile int64
	// Requests is how many small requests the streams suite sends through
	// the relay while it samples its RSS.
	Requests int

	// Dir is the work directory; empty means a new temporary directory,
	// removed at the end.
	Dir string
	// NodeBin is a prebuilt node binary; empty means go build ./cmd/node.
	NodeBin string
	// Self is the command that runs this program again, for the baseline
	// roles (RoleEnv is added to its environment). Required for the bulk
	// and tune suites.
	Self []string
	// Log receives progress lines. Nil means os.Stderr.
	Log io.Writer
}

// DefaultConfig returns the full benchmark's configuration.
func DefaultConfig() Config {
	return Config{
		Suites:       AllSuites,
		Size:         1 << 30,
		Relays:       []int{0, 1, 3, 8},
		Runs:         5,
		Transports:   []string{"raw", "mux"},
		Verifies:     []string{"sha256", "crc64"},
		FullMatrixAt: []int{3},
		TLSRelays:    3,
		TuneSize:     256 << 20,
		TuneRelays:   3,
		Windows: []TuneWindow{{Start: 256 << 10}, {Start: 1 << 20}, {Start: 4 << 20}, {Start: 16 << 20},
			{Start: 256 << 10, Max: 16 << 20}, {Start: 1 << 20, Max: 16 << 20}},
		SmallSize:     4 << 10,
		LatencyRelays: 3,
		Concurrency:   []int{1, 64, 512},
		LatencyTime:   time.Second,
		Streams:       10000,
		StreamsWindow: 256 << 10,
		StreamsFile:   1 << 20,
		Requests:      1_000_000,
	}
}

// ShortConfig returns a configuration that exercises every suite with tiny
// sizes in a few seconds: a smoke test, not a measurement.
func ShortConfig() Config {
	c := DefaultConfig()
	c.Size = 4 << 20
	c.TuneSize = 4 << 20
	c.Relays = []int{0, 1, 3}
	c.Runs = 1
	c.TuneRelays = 1
	c.TLSRelays = 1
	c.Windows = []TuneWindow{{Start: 256 << 10}, {Start: 256 << 10, Max: 1 << 20}}
	c.LatencyRelays = 3
	c.Concurrency = []int{1, 16}
	c.LatencyTime = 100 * time.Millisecond
	c.Streams = 200
	c.StreamsFile = 1 << 20
	c.Requests = 2000
	return c
}

// withDefaults fills zero fields from DefaultConfig and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Suites == nil {
		c.Suites = d.Suites
	}
	if c.Size == 0 {
		c.Size = d.Size
	}
	if c.Relays == nil {
		c.Relays = d.Relays
	}
	if c.Runs == 0 {
		c.Runs = d.Runs
	}
	if c.Transports == nil {
		c.Transports = d.Transports
	}
	if c.Verifies == nil {
		c.Verifies = d.Verifies
	}
	if c.FullMatrixAt == nil {
		c.FullMatrixAt = d.FullMatrixAt
	}
	if c.TuneSize == 0 {
		c.TuneSize = d.TuneSize
	}
	if c.Windows == nil {
		c.Windows = d.Windows
	}
	if c.SmallSize == 0 {
		c.SmallSize = d.SmallSize
	}
	if c.Concurrency == nil {
		c.Concurrency = d.Concurrency
	}
	if c.LatencyTime == 0 {
		c.LatencyTime = d.LatencyTime
	}
	if c.Streams == 0 {
		c.Streams = d.Streams
	}
	if c.StreamsWindow == 0 {
		c.StreamsWindow = d.StreamsWindow
	}
	if c.StreamsFile == 0 {
		c.StreamsFile = d.StreamsFile
	}
	if c.Requests == 0 {
		c.Requests = d.Requests
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	for _, s := range c.Suites {
		if !slices.Contains(AllSuites, s) {
			return c, fmt.Errorf("suite %q: want one of %s", s, strings.Join(AllSuites, ", "))
		}
	}
	for _, t := range c.Transports {
		if t != "raw" && t != "mux" {
			return c, fmt.Errorf("transport %q: want raw or mux", t)
		}
	}
	for _, v := range c.Verifies {
		if v != "sha256" && v != "crc64" {
			return c, fmt.Errorf("verify %q: want sha256 or crc64", v)
		}
	}
	for _, n := range append(slices.Clone(c.Relays), c.TuneRelays, c.LatencyRelays, c.TLSRelays) {
		if n < 0 || n > 30 {
			return c, fmt.Errorf("relay count %d: want 0..30", n)
		}
	}
	for _, w := range c.Windows {
		if w.Start < 256<<10 || w.Max > 1<<30 {
			return c, fmt.Errorf("window %s: start at least 256 KiB, max at most 1 GiB", w)
		}
	}
	switch {
	case c.Size < 1 || c.TuneSize < 1:
		return c, errors.New("sizes must be positive")
	case c.Runs < 1:
		return c, errors.New("runs must be at least 1")
	case c.SmallSize < 1 || c.StreamsFile < 1:
		return c, errors.New("file sizes must be positive")
	case c.Streams < 1 || c.Requests < 1:
		return c, errors.New("streams and requests must be at least 1")
	case len(c.Self) == 0 && (c.has(SuiteBulk) || c.has(SuiteTLS) || c.has(SuiteTune)):
		return c, errors.New("config: Self is required for the Go TCP baseline")
	}
	return c, nil
}

// loadEvery is how often Run samples the machine's load average.
const loadEvery = 10 * time.Second

// sampleLoad appends the 1-minute load average to *out now and every
// period until the returned stop is called (which is idempotent, and after
// which *out is no longer written).
func sampleLoad(out *[]float64, period time.Duration) (stop func()) {
	add := func() {
		if v, ok := loadAvg(); ok {
			*out = append(*out, v)
		}
	}
	add()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				add()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			add()
		})
	}
}

func (c *Config) has(suite string) bool { return slices.Contains(c.Suites, suite) }

// Runner runs the benchmark. Close ends every process it started; it is
// safe to call Close from another goroutine (a test's Cleanup) while Run
// is running, which makes Run fail.
type Runner struct {
	cfg Config
	env *env
}

// NewRunner checks cfg and prepares a Runner. It starts nothing yet.
func NewRunner(cfg Config) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &Runner{cfg: cfg, env: newEnv(&cfg)}, nil
}

// Close ends every child process and removes the temporary work
// directory. It is idempotent.
func (r *Runner) Close() { r.env.close() }

// Run builds the node, creates the files, starts the processes each
// selected suite needs, measures, and returns the report. It stops every
// process before it returns.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	defer r.Close()
	start := time.Now()
	rep := &Report{Config: r.cfg, Machine: describeMachine()}
	stopLoad := sampleLoad(&rep.Load, loadEvery)
	defer stopLoad()
	if err := r.env.setup(ctx); err != nil {
		return nil, err
	}
	rep.Notes = append(rep.Notes, r.env.notes...)
	type suite struct {
		name string
		run  func(context.Context, *Report) error
	}
	for _, s := range []suite{
		{SuiteBulk, r.env.runBulk},
		{SuiteTLS, r.env.runTLS},
		{SuiteTune, r.env.runTune},
		{SuiteLatency, r.env.runLatency},
		{SuiteStreams, r.env.runStreams},
	} {
		if !r.cfg.has(s.name) {
			continue
		}
		t0 := time.Now()
		r.env.logf("== suite %s", s.name)
		if err := s.run(ctx, rep); err != nil {
			return rep, fmt.Errorf("suite %s: %w", s.name, err)
		}
		r.env.logf("== suite %s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	stopLoad()
	rep.Elapsed = time.Since(start)
	return rep, nil
}
