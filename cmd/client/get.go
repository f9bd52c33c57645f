package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/relaychain/relaychain/relay"
)

// parallelGets caps the files fetched at once over the one link.
const parallelGets = 4

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "fetch files through the route",
		ArgsUsage: "NAME...  (default: the file named by a classic route file)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "o", Aliases: []string{"output"}, Value: ".", Usage: "save into `DIR`"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
			&cli.BoolFlag{Name: "resume", Usage: "keep an interrupted download in NAME.partial and continue it next time (verified end to end by SHA-256)"},
		},
		Action: runGet,
	}
}

func runGet(c *cli.Context) error {
	cl, rf, err := newClient(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	names := c.Args().Slice()
	if len(names) == 0 && rf.Name != "" {
		names = []string{rf.Name}
	}
	if len(names) == 0 {
		return fmt.Errorf("get: no file named (give NAME, or a route file whose first line names one)")
	}
	for _, n := range names {
		if len(n) > 1 && n[0] == '-' {
			return fmt.Errorf("get: %q after the file names: put flags before NAME (get -o DIR NAME...)", n)
		}
	}
	dir := c.String("o")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("get: -o %s: not a directory", dir)
	}
	seen := map[string]string{}
	for _, n := range names {
		b := path.Base(n)
		if prev, ok := seen[b]; ok {
			return fmt.Errorf("get: %s and %s would both be saved as %s", prev, n, b)
		}
		seen[b] = n
	}
	quiet := c.Bool("quiet")
	bars := !quiet && term.IsTerminal(int(os.Stderr.Fd()))
	var outMu sync.Mutex
	var g errgroup.Group
	g.SetLimit(parallelGets)
	var failed []error
	for _, name := range names {
		g.Go(func() error {
			start := time.Now()
			var progress func(relay.FileInfo, io.Writer) io.Writer
			if bars {
				progress = func(fi relay.FileInfo, w io.Writer) io.Writer {
					bar := progressbar.DefaultBytes(fi.Size, path.Base(name))
					bar.Set64(fi.Offset)
					return io.MultiWriter(w, bar)
				}
			}
			download := cl.Download
			if c.Bool("resume") {
				download = cl.Resume
			}
			_, info, err := download(c.Context, name, dir, progress)
			outMu.Lock()
			defer outMu.Unlock()
			if err != nil {
				failed = append(failed, err)
				if len(names) > 1 {
					fmt.Fprintln(os.Stderr, "client:", err)
				}
				return nil
			}
			if !quiet && !bars {
				secs := time.Since(start).Seconds()
				fmt.Printf("%s\t%d bytes\t%.3fs\t%s/s\n", name, info.Size, secs, humanize.IBytes(uint64(float64(info.Size)/max(secs, 1e-9))))
			}
			return nil
		})
	}
	g.Wait()
	switch {
	case len(failed) == 1 && len(names) == 1:
		return failed[0]
	case len(failed) > 0:
		return fmt.Errorf("get: %d of %d files failed", len(failed), len(names))
	}
	return nil
}
