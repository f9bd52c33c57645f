package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/relaychain/relaychain/route"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:   "ls",
		Usage:  "list the files the terminal serves, recursively (NAME<TAB>SIZE)",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON array of {name, size}"}},
		Action: func(c *cli.Context) error { return runList(c, false) },
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:   "list",
		Usage:  "list the files in the terminal's cache (NAME<TAB>SIZE)",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON array of {name, size}"}},
		Action: func(c *cli.Context) error { return runList(c, true) },
	}
}

func runList(c *cli.Context, cached bool) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments", c.Command.Name)
	}
	cl, _, err := newClient(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	var entries []route.Entry
	if cached {
		entries, err = cl.List(c.Context)
	} else {
		entries, err = cl.Ls(c.Context)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if entries == nil {
			entries = []route.Entry{}
		}
		enc := json.NewEncoder(os.Stdout)
		return enc.Encode(entries)
	}
	for _, e := range entries {
		fmt.Printf("%s\t%d\n", e.Name, e.Size)
	}
	return nil
}

func statCommand() *cli.Command {
	return &cli.Command{
		Name:      "stat",
		Usage:     "show a file's size, modification time, and whether it is cached",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("stat takes one NAME")
			}
			cl, _, err := newClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			fi, err := cl.Stat(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			fmt.Printf("name\t%s\nsize\t%d (%s)\nmtime\t%s\ncached\t%t\n", fi.Name, fi.Size,
				humanize.IBytes(uint64(fi.Size)), fi.ModTime.Format(time.RFC3339Nano), fi.Cached)
			return nil
		},
	}
}
