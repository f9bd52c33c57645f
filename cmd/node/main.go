// Command node runs a relaychain node: a relay, and with --root also the
// terminal file server for routes that end at it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/relaychain/relaychain/internal/cliutil"
	"github.com/relaychain/relaychain/relay"
	"github.com/relaychain/relaychain/route"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func env(name string) []string { return []string{"RELAYCHAIN_" + name} }

func app() *cli.App {
	d := relay.DefaultConfig()
	return &cli.App{
		Name:      "node",
		Usage:     "relay requests along a route, and serve files when the route ends here",
		Version:   cliutil.Version(),
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:7000", EnvVars: env("LISTEN"), Usage: "`HOST:PORT` to listen on (port 0 picks a free port)"},
			&cli.StringFlag{Name: "root", EnvVars: env("ROOT"), Usage: "serve the files under `DIR` (without it the node only relays)"},
			&cli.StringSliceFlag{Name: "allow", EnvVars: env("ALLOW"), Usage: "next hops this node may dial: CIDRs, IPs or host:port, repeated or comma-separated (default: loopback only)"},
			&cli.IntFlag{Name: "max-hops", Value: route.DefaultMaxHops, EnvVars: env("MAX_HOPS"), Usage: "refuse routes longer than `N` hops"},
			&cli.StringFlag{Name: "cache-size", Value: "64MiB", EnvVars: env("CACHE_SIZE"), Usage: "terminal cache budget, e.g. 64MiB, 64MB or 67108864; 0 turns it off"},
			&cli.DurationFlag{Name: "header-timeout", Value: d.HeaderTimeout, EnvVars: env("HEADER_TIMEOUT"), Usage: "cut off a peer that has not sent its preface or request header by then"},
			&cli.DurationFlag{Name: "dial-timeout", Value: d.DialTimeout, EnvVars: env("DIAL_TIMEOUT"), Usage: "give up dialing a next hop after this long"},
			&cli.StringFlag{Name: "stream-window", Value: humanize.IBytes(uint64(d.StreamWindow)), EnvVars: env("STREAM_WINDOW"), Usage: "yamux receive window each stream starts with; large files move over raw links, which it does not limit (a stalled stream holds at most its window)"},
			&cli.StringFlag{Name: "stream-window-max", Value: humanize.IBytes(uint64(d.StreamWindowMax)), EnvVars: env("STREAM_WINDOW_MAX"), Usage: "a stream's window doubles up to this while the window holds it back (the sender uses all of it while the reader waits for data); at or below --stream-window (or 0) it does not grow"},
			&cli.StringFlag{Name: "window-budget", Value: humanize.IBytes(uint64(d.WindowBudget)), EnvVars: env("WINDOW_BUDGET"), Usage: "total window growth over all streams of this node (bounds the memory growth can hold); 0 turns growth off"},
			&cli.IntFlag{Name: "max-streams", Value: d.MaxStreamsPerLink, EnvVars: env("MAX_STREAMS"), Usage: "concurrent streams per inbound link; more are answered busy"},
			&cli.IntFlag{Name: "max-streams-total", Value: d.MaxStreams, EnvVars: env("MAX_STREAMS_TOTAL"), Usage: "concurrent streams over all links (bounds memory); more are answered busy"},
			&cli.IntFlag{Name: "max-links", Value: d.MaxLinks, EnvVars: env("MAX_LINKS"), Usage: "concurrent inbound links; more are refused busy"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, EnvVars: env("GRACE"), Usage: "on SIGINT/SIGTERM, let transfers in flight finish for this long"},
			&cli.StringFlag{Name: "tls-cert", EnvVars: env("TLS_CERT"), Usage: "mutual TLS 1.3: this side's certificate `FILE` (PEM); needs --tls-key and --tls-ca"},
			&cli.StringFlag{Name: "tls-key", EnvVars: env("TLS_KEY"), Usage: "mutual TLS: the certificate's private key `FILE`"},
			&cli.StringFlag{Name: "tls-ca", EnvVars: env("TLS_CA"), Usage: "mutual TLS: the CA `FILE` every peer's certificate must be signed by"},
			&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: env("LOG_FORMAT"), Usage: "log as `text` or json"},
			&cli.BoolFlag{Name: "debug", EnvVars: env("DEBUG"), Usage: "also log links and streams that end in errors"},
			&cli.BoolFlag{Name: "quiet", EnvVars: env("QUIET"), Usage: "do not log a line per request (as nginx's access_log off); failed requests are still logged"},
		},
		Action: run,
	}
}

func config(c *cli.Context) (relay.Config, error) {
	cfg := relay.DefaultConfig()
	level := slog.LevelInfo
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	cfg.NoRequestLog = c.Bool("quiet")
	logger, err := cliutil.NewLogger(os.Stderr, c.String("log-format"), level)
	if err != nil {
		return cfg, err
	}
	cacheSize, err := humanize.ParseBytes(c.String("cache-size"))
	if err != nil {
		return cfg, fmt.Errorf("--cache-size: %w", err)
	}
	window, err := humanize.ParseBytes(c.String("stream-window"))
	if err != nil || window > 1<<31 {
		return cfg, fmt.Errorf("--stream-window %q: want a size up to 2GiB", c.String("stream-window"))
	}
	windowMax, err := humanize.ParseBytes(c.String("stream-window-max"))
	if err != nil || windowMax > 1<<30 {
		return cfg, fmt.Errorf("--stream-window-max %q: want a size up to 1GiB", c.String("stream-window-max"))
	}
	budget, err := humanize.ParseBytes(c.String("window-budget"))
	if err != nil || budget > 1<<40 {
		return cfg, fmt.Errorf("--window-budget %q: want a size up to 1TiB", c.String("window-budget"))
	}
	if budget == 0 {
		cfg.WindowBudget = -1 // off
	} else {
		cfg.WindowBudget = int64(budget)
	}
	cfg.StreamWindowMax = uint32(windowMax)
	if windowMax == 0 { // as the help says: no growth
		cfg.WindowBudget = -1
	}
	if cfg.TLS, err = cliutil.LoadTLS(c.String("tls-cert"), c.String("tls-key"), c.String("tls-ca")); err != nil {
		return cfg, err
	}
	cfg.Root = c.String("root")
	cfg.Allow = c.StringSlice("allow")
	cfg.MaxHops = c.Int("max-hops")
	cfg.CacheSize = int64(cacheSize)
	cfg.HeaderTimeout = c.Duration("header-timeout")
	cfg.DialTimeout = c.Duration("dial-timeout")
	cfg.StreamWindow = uint32(window)
	cfg.MaxStreamsPerLink = c.Int("max-streams")
	cfg.MaxStreams = c.Int("max-streams-total")
	cfg.MaxLinks = c.Int("max-links")
	cfg.Logger = logger
	return cfg, nil
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", c.Args().First())
	}
	cfg, err := config(c)
	if err != nil {
		return err
	}
	n, err := relay.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		n.Close()
		return fmt.Errorf("listen: %w", err)
	}
	role := "relay"
	if cfg.Root != "" {
		role = fmt.Sprintf("relay and terminal serving %s (cache %s)", cfg.Root, humanize.IBytes(uint64(max(cfg.CacheSize, 0))))
	}
	if cfg.TLS != nil {
		role = "TLS " + role
	}
	cfg.Logger.Info("listening on "+ln.Addr().String(), "role", role, "version", cliutil.Version())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	select {
	case err := <-served:
		n.Close()
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills at once
	cfg.Logger.Info("shutting down", "grace", c.Duration("grace").String())
	sctx, cancel := context.WithTimeout(context.Background(), c.Duration("grace"))
	defer cancel()
	if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	<-served
	return nil
}
