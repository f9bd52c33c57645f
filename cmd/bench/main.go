// Command bench measures relaychain against a plain Go TCP relay chain,
// socat and nginx on loopback, in one run: bulk throughput through chains of
// relays, what mutual TLS costs, mux tuning, small-request latency and
// concurrency, and relay memory under many streams. It prints a markdown
// report (and writes it to -out). See internal/bench for what each suite
// does.
//
//	go run ./cmd/bench                       # the full benchmark (~22 min)
//	go run ./cmd/bench -short                # a smoke run of a few seconds
//	go run ./cmd/bench -suites bulk -relays 3 -transports raw
//	go run ./cmd/bench -suites tls            # what mutual TLS costs
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/relaychain/relaychain/internal/bench"
)

func main() {
	if bench.RoleRequested() { // a baseline hop started by the bench itself
		os.Exit(bench.RunRole())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := app().RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	d := bench.DefaultConfig()
	return &cli.App{
		Name:      "bench",
		Usage:     "measure relaychain against a Go TCP relay chain, socat and nginx on loopback",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "short", Usage: "smoke run: every suite with tiny sizes, in a few seconds"},
			&cli.StringFlag{Name: "suites", Value: strings.Join(d.Suites, ","), Usage: "suites to run: bulk, tls, tune, latency, streams"},
			&cli.StringFlag{Name: "size", Value: "1GiB", Usage: "bulk file `SIZE`"},
			&cli.StringFlag{Name: "relays", Value: ints(d.Relays), Usage: "chain lengths of the bulk and extra-relay tables"},
			&cli.IntFlag{Name: "runs", Value: d.Runs, Usage: "runs per figure (the median is reported)"},
			&cli.StringFlag{Name: "transports", Value: strings.Join(d.Transports, ","), Usage: "relaychain transports in the bulk suite: raw, mux"},
			&cli.StringFlag{Name: "verify", Value: strings.Join(d.Verifies, ","), Usage: "relaychain verify modes in the bulk suite: sha256, crc64"},
			&cli.StringFlag{Name: "full-matrix", Value: ints(d.FullMatrixAt), Usage: "chain lengths at which the bulk suite measures every transport x verify x cache combination"},
			&cli.IntFlag{Name: "tls-relays", Value: d.TLSRelays, Usage: "chain length of the tls suite (which moves a file of -size)"},
			&cli.StringFlag{Name: "tune-size", Value: "256MiB", Usage: "file `SIZE` of the tune suite"},
			&cli.StringFlag{Name: "windows", Value: "256KiB,1MiB,4MiB,16MiB,256KiB:16MiB,1MiB:16MiB", Usage: "stream windows the tune suite compares: W is a fixed window, W:MAX one that starts at W and grows up to MAX"},
			&cli.IntFlag{Name: "tune-relays", Value: d.TuneRelays, Usage: "chain length of the tune suite"},
			&cli.StringSliceFlag{Name: "variant", Usage: "`NAME=NODEBIN[@WINDOW]`: also measure this node binary in the tune suite, at WINDOW (default: the node default, 1MiB); repeatable, no commas in NAME"},
			&cli.StringFlag{Name: "concurrency", Value: ints(d.Concurrency), Usage: "concurrent small GETs of the latency suite"},
			&cli.IntFlag{Name: "latency-relays", Value: d.LatencyRelays, Usage: "chain length of the concurrency table"},
			&cli.DurationFlag{Name: "latency-time", Value: d.LatencyTime, Usage: "length of one latency run"},
			&cli.StringFlag{Name: "small-size", Value: "4KiB", Usage: "size of the small file"},
			&cli.IntFlag{Name: "streams", Value: d.Streams, Usage: "concurrent streams through one relay"},
			&cli.StringFlag{Name: "streams-window", Value: "256KiB", Usage: "stream window of the streams suite"},
			&cli.StringFlag{Name: "streams-file", Value: "1MiB", Usage: "file each stream fetches"},
			&cli.IntFlag{Name: "requests", Value: d.Requests, Usage: "small GETs through one relay while its RSS is sampled"},
			&cli.BoolFlag{Name: "no-socat", Usage: "leave socat out"},
			&cli.BoolFlag{Name: "no-nginx", Usage: "leave nginx out"},
			&cli.StringFlag{Name: "node", Usage: "use this prebuilt node `BINARY` instead of building ./cmd/node"},
			&cli.StringFlag{Name: "dir", Usage: "work `DIR` (default: a temporary directory, removed at the end)"},
			&cli.StringFlag{Name: "out", Usage: "also write the markdown report to `FILE`"},
		},
		Action: run,
	}
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-%s %q: %w", flag, s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(flag, s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<40 {
		return 0, fmt.Errorf("-%s %q: want a size such as 1GiB", flag, s)
	}
	return int64(n), nil
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// config maps the flags into a bench.Config: the defaults (or, with -short,
// the smoke configuration), overridden by every flag given.
func config(c *cli.Context) (bench.Config, error) {
	cfg := bench.DefaultConfig()
	if c.Bool("short") {
		cfg = bench.ShortConfig()
	}
	var err error
	set := func(name string, f func(string) error) {
		if err == nil && c.IsSet(name) {
			err = f(c.String(name))
		}
	}
	set("suites", func(s string) error { cfg.Suites = list(s); return nil })
	set("size", func(s string) (e error) { cfg.Size, e = parseSize("size", s); return })
	set("relays", func(s string) (e error) { cfg.Relays, e = parseInts("relays", s); return })
	set("full-matrix", func(s string) (e error) { cfg.FullMatrixAt, e = parseInts("full-matrix", s); return })
	set("tune-size", func(s string) (e error) { cfg.TuneSize, e = parseSize("tune-size", s); return })
	set("transports", func(s string) error { cfg.Transports = list(s); return nil })
	set("verify", func(s string) error { cfg.Verifies = list(s); return nil })
	set("windows", func(s string) error {
		cfg.Windows = nil
		for _, f := range list(s) {
			start, max, _ := strings.Cut(f, ":")
			n, e := parseSize("windows", start)
			if e != nil || n > 1<<30 {
				return fmt.Errorf("-windows %q: want sizes up to 1GiB", s)
			}
			w := bench.TuneWindow{Start: uint32(n)}
			if max != "" {
				m, e := parseSize("windows", max)
				if e != nil || m > 1<<30 {
					return fmt.Errorf("-windows %q: want sizes up to 1GiB", s)
				}
				w.Max = uint32(m)
			}
			cfg.Windows = append(cfg.Windows, w)
		}
		return nil
	})
	set("concurrency", func(s string) (e error) { cfg.Concurrency, e = parseInts("concurrency", s); return })
	set("small-size", func(s string) (e error) { cfg.SmallSize, e = parseSize("small-size", s); return })
	set("streams-window", func(s string) error {
		n, e := parseSize("streams-window", s)
		if e != nil || n > 1<<31 {
			return fmt.Errorf("-streams-window %q: want a size up to 2GiB", s)
		}
		cfg.StreamsWindow = uint32(n)
		return nil
	})
	set("streams-file", func(s string) (e error) { cfg.StreamsFile, e = parseSize("streams-file", s); return })
	if err != nil {
		return cfg, err
	}
	for _, name := range []string{"runs", "tune-relays", "tls-relays", "latency-relays", "streams", "requests"} {
		if !c.IsSet(name) {
			continue
		}
		v := c.Int(name)
		switch name {
		case "runs":
			cfg.Runs = v
		case "tune-relays":
			cfg.TuneRelays = v
		case "tls-relays":
			cfg.TLSRelays = v
		case "latency-relays":
			cfg.LatencyRelays = v
		case "streams":
			cfg.Streams = v
		case "requests":
			cfg.Requests = v
		}
	}
	if c.IsSet("latency-time") {
		cfg.LatencyTime = c.Duration("latency-time")
	}
	for _, v := range c.StringSlice("variant") {
		name, bin, ok := strings.Cut(v, "=")
		if !ok || name == "" || bin == "" {
			return cfg, fmt.Errorf("-variant %q: want NAME=NODEBIN[@WINDOW]", v)
		}
		var window uint32
		if i := strings.LastIndexByte(bin, '@'); i >= 0 {
			n, err := parseSize("variant", bin[i+1:])
			if err != nil || n < 256<<10 || n > 1<<31 {
				return cfg, fmt.Errorf("-variant %q: want a WINDOW of 256KiB..2GiB after @", v)
			}
			bin, window = bin[:i], uint32(n)
		}
		cfg.Variants = append(cfg.Variants, bench.Variant{Name: name, Bin: bin, Window: window})
	}
	cfg.NoSocat, cfg.NoNginx = c.Bool("no-socat"), c.Bool("no-nginx")
	cfg.NodeBin, cfg.Dir = c.String("node"), c.String("dir")
	self, err := os.Executable()
	if err != nil {
		return cfg, fmt.Errorf("find own binary for the baseline: %w", err)
	}
	cfg.Self = []string{self}
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
	r, err := bench.NewRunner(cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := r.Run(c.Context)
	if rep != nil {
		md := rep.Markdown(3)
		fmt.Print(md)
		if out := c.String("out"); out != "" {
			if werr := os.WriteFile(out, []byte(md), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}
