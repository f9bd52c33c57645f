// Command client sends requests along a route of relaychain nodes: fetch
// files, list the terminal's directory or cache, stat a file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/relaychain/relaychain/internal/cliutil"
	"github.com/relaychain/relaychain/relay"
	"github.com/relaychain/relaychain/route"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := app().RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func env(name string) []string { return []string{"RELAYCHAIN_" + name} }

func app() *cli.App {
	return &cli.App{
		Name:    "client",
		Usage:   "fetch files through a route of relaychain nodes",
		Version: cliutil.Version(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "route", Aliases: []string{"r"}, EnvVars: env("ROUTE"), Usage: "read the hops from route `FILE` (one host:port per line, last = file server)"},
			&cli.StringSliceFlag{Name: "hop", EnvVars: []string{"RELAYCHAIN_HOP", "RELAYCHAIN_HOPS"}, Usage: "a hop `HOST:PORT`, repeated in route order (instead of --route)"},
			&cli.DurationFlag{Name: "timeout", Value: relay.DefaultClientTimeout, EnvVars: env("TIMEOUT"), Usage: "fail when no data arrives for this long (an idle timeout, not a total)"},
			&cli.StringFlag{Name: "tls-cert", EnvVars: env("TLS_CERT"), Usage: "mutual TLS 1.3: this side's certificate `FILE` (PEM); needs --tls-key and --tls-ca"},
			&cli.StringFlag{Name: "tls-key", EnvVars: env("TLS_KEY"), Usage: "mutual TLS: the certificate's private key `FILE`"},
			&cli.StringFlag{Name: "tls-ca", EnvVars: env("TLS_CA"), Usage: "mutual TLS: the CA `FILE` every peer's certificate must be signed by"},
			&cli.StringFlag{Name: "transport", Value: "auto", EnvVars: env("TRANSPORT"), Usage: "`auto` (raw links for files of 4 MiB or more, the mux for the rest), mux or raw"},
			&cli.StringFlag{Name: "verify", Value: "sha256", EnvVars: env("VERIFY"), Usage: "check fetched bytes by `sha256` (and CRC-64) or by crc64 only (CRC-64/NVME: faster than SHA-256 on fast links)"},
		},
		Commands: []*cli.Command{getCommand(), lsCommand(), listCommand(), statCommand()},
	}
}

// routeFile loads the route from --route or --hop.
func routeFile(c *cli.Context) (route.File, error) {
	file, hops := c.String("route"), c.StringSlice("hop")
	switch {
	case file != "" && len(hops) > 0:
		return route.File{}, fmt.Errorf("give --route or --hop, not both")
	case file != "":
		return route.ParseFile(file)
	case len(hops) > 0:
		var f route.File
		for _, h := range hops {
			hop, err := route.ParseHop(h)
			if err != nil {
				return f, fmt.Errorf("--hop %q: %w", h, err)
			}
			f.Route = append(f.Route, hop)
		}
		return f, nil
	}
	return route.File{}, fmt.Errorf("no route: give --route FILE or --hop HOST:PORT (see --help)")
}

// newClient builds a client from the global flags.
func newClient(c *cli.Context) (*relay.Client, route.File, error) {
	f, err := routeFile(c)
	if err != nil {
		return nil, f, err
	}
	cfg := relay.ClientConfig{Route: f.Route, Timeout: c.Duration("timeout")}
	switch c.String("transport") {
	case "auto":
		cfg.Transport = relay.TransportAuto
	case "mux":
		cfg.Transport = relay.TransportMux
	case "raw":
		cfg.Transport = relay.TransportRaw
	default:
		return nil, f, fmt.Errorf("--transport %q: want auto, mux or raw", c.String("transport"))
	}
	switch c.String("verify") {
	case "sha256":
		cfg.Verify = relay.VerifySHA256
	case "crc64":
		cfg.Verify = relay.VerifyCRC64
	default:
		return nil, f, fmt.Errorf("--verify %q: want sha256 or crc64", c.String("verify"))
	}
	if cfg.TLS, err = cliutil.LoadTLS(c.String("tls-cert"), c.String("tls-key"), c.String("tls-ca")); err != nil {
		return nil, f, err
	}
	cl, err := relay.NewClient(cfg)
	return cl, f, err
}
