// Command demo runs a three-node relaychain on loopback and fetches files
// through it with the client, checking every step:
//
//	go run ./examples/demo
//
// It builds bin/node and bin/client, starts an origin on 127.0.0.1:7000
// serving a temporary copy of examples/files plus a generated 50 MiB file,
// starts relays on 127.0.0.1:7001 and 127.0.0.1:7002 (the route in
// examples/routes.txt), fetches files, lists and stats them, checks the bytes
// by SHA-256, shows how errors read, and stops the nodes with SIGTERM. It
// exits 0 only if every check passed. The nodes are stopped on every way
// out, Ctrl-C included.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

const (
	modulePath   = "github.com/relaychain/relaychain"
	largeName    = "large.bin"
	largeSize    = 50 << 20
	startTimeout = 15 * time.Second // for a node to print "listening on"
	stopTimeout  = 20 * time.Second // for a node to exit after SIGTERM (its --grace is 10s)
	cmdTimeout   = 2 * time.Minute  // for one client command
)

// The nodes of examples/routes.txt.
var nodes = []struct{ name, addr string }{
	{"origin", "127.0.0.1:7000"},
	{"relay A", "127.0.0.1:7001"},
	{"relay B", "127.0.0.1:7002"},
}

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{ctx: ctx}
	defer d.cleanup()
	start := time.Now()
	if err := d.run(); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "\ndemo: interrupted; stopping the nodes")
			return 130
		}
		d.dumpLogs()
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		return 1
	}
	fmt.Printf("\ndemo OK: every check passed in %.1fs\n", time.Since(start).Seconds())
	return 0
}

// demo holds what the run has started, so that cleanup can stop it.
type demo struct {
	ctx   context.Context
	root  string // the module root; commands run here
	tmp   string // scratch directory, removed by cleanup
	node  string // path of bin/node
	cli   string // path of bin/client
	procs []*proc
}

func (d *demo) run() error {
	step("Checking the environment")
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	d.root = root
	fmt.Println("module root:", root)
	if err := portsFree(); err != nil {
		return err
	}
	fmt.Println("ports 7000, 7001 and 7002 on 127.0.0.1 are free")

	step("Building bin/node and bin/client")
	if err := d.build(); err != nil {
		return err
	}

	step("Preparing the files to serve")
	if d.tmp, err = os.MkdirTemp("", "relaychain-demo-"); err != nil {
		return err
	}
	serve := filepath.Join(d.tmp, "files")
	out := filepath.Join(d.tmp, "out")
	if err := copyDir(filepath.Join(root, "examples", "files"), serve); err != nil {
		return fmt.Errorf("copy examples/files: %w", err)
	}
	if err := writeRandom(filepath.Join(serve, largeName), largeSize); err != nil {
		return err
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	fmt.Printf("serving a copy of examples/files plus a generated %s (%d MiB) from\n  %s\n", largeName, largeSize>>20, serve)
	fmt.Println("downloads go to\n ", out)

	step("Starting the origin and two relays (route: examples/routes.txt)")
	for i, n := range nodes {
		args := []string{"--listen", n.addr}
		if i == 0 {
			args = append(args, "--root", serve)
		}
		if err := d.startNode(n.name, args...); err != nil {
			return err
		}
	}

	step("Fetching files through relay A -> relay B -> origin")
	if _, err := d.client(0, "--route", "examples/routes.txt", "get", "-o", out, "hello.txt"); err != nil {
		return err
	}
	if _, err := d.client(0, "--route", "examples/routes.txt", "get", "-o", out, largeName, "sample.bin", "docs/route-format.md"); err != nil {
		return err
	}
	classic := filepath.Join(out, "classic")
	if err := os.Mkdir(classic, 0o755); err != nil {
		return err
	}
	fmt.Println("\nA classic input file names the file on its first line:")
	if err := show(filepath.Join(root, "examples", "input.txt")); err != nil {
		return err
	}
	if _, err := d.client(0, "--route", "examples/input.txt", "get", "-o", classic); err != nil {
		return err
	}

	step("Checking the downloads byte for byte (SHA-256)")
	for _, c := range []struct{ got, want string }{
		{"hello.txt", "hello.txt"},
		{largeName, largeName},
		{"sample.bin", "sample.bin"},
		{"route-format.md", "docs/route-format.md"},
		{"classic/hello.txt", "hello.txt"},
	} {
		if err := sameFile(c.got, filepath.Join(out, c.got), filepath.Join(serve, c.want)); err != nil {
			return err
		}
	}

	step("Listing and stat")
	r, err := d.client(0, "--route", "examples/routes.txt", "ls")
	if err != nil {
		return err
	}
	for _, name := range []string{"hello.txt", largeName, "docs/route-format.md"} {
		if !strings.Contains(r.stdout, name+"\t") {
			return fmt.Errorf("client ls: %s missing from the listing", name)
		}
	}
	if _, err := d.client(0, "--route", "examples/routes.txt", "list"); err != nil {
		return err
	}
	r, err = d.client(0, "--route", "examples/routes.txt", "stat", largeName)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("size\t%d ", largeSize); !strings.Contains(r.stdout, want) {
		return fmt.Errorf("client stat: want a line starting %q", want)
	}

	step("Errors name the hop that failed (these commands must fail)")
	r, err = d.client(1, "--route", "examples/routes.txt", "get", "-o", out, "missing.txt")
	if err != nil {
		return err
	}
	if !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "missing.txt") {
		return fmt.Errorf("get missing.txt: want an error saying not found, got %q", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "missing.txt")); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("get missing.txt left a file behind")
	}
	dead, err := closedPort()
	if err != nil {
		return err
	}
	r, err = d.client(1, "--hop", nodes[1].addr, "--hop", dead, "--hop", nodes[0].addr, "get", "-o", out, "hello.txt")
	if err != nil {
		return err
	}
	if !strings.Contains(r.stderr, "hop 1 ("+dead+")") {
		return fmt.Errorf("route through the closed port %s: want an error naming hop 1 (%s), got %q", dead, dead, r.stderr)
	}

	step("Stopping the nodes with SIGTERM")
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if err := p.stop(); err != nil {
			return err
		}
		fmt.Printf("%-8s exited with status 0\n", p.Name)
	}
	return nil
}

// step prints the heading of a step.
func step(title string) { fmt.Printf("\n==> %s\n", title) }

// moduleRoot finds the directory of the relaychain go.mod: the one the go
// command reports for the working directory, or else the first one found
// walking up from it.
func moduleRoot() (string, error) {
	var candidates []string
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			candidates = append(candidates, filepath.Dir(gomod))
		}
	}
	if dir, err := os.Getwd(); err == nil {
		for ; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, dir)
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range candidates {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && regexp.MustCompile(`(?m)^module\s+`+regexp.QuoteMeta(modulePath)+`\s*$`).Match(data) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("cannot find the %s module: run the demo from inside the repository (cd into it, then `go run ./examples/demo`)", modulePath)
}

// portsFree checks that the demo's ports can be listened on.
func portsFree() error {
	var busy []string
	for _, n := range nodes {
		ln, err := net.Listen("tcp", n.addr)
		if err != nil {
			busy = append(busy, n.addr)
			continue
		}
		ln.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("port(s) %s already in use: the demo needs 127.0.0.1:7000-7002 free.\n"+
			"Is another node or demo still running? Find it with `ss -ltnp` or `lsof -iTCP:7000-7002 -sTCP:LISTEN`, stop it, and run the demo again",
			strings.Join(busy, ", "))
	}
	return nil
}

// build runs `go build -o bin/ ./cmd/...` in the module root.
func (d *demo) build() error {
	fmt.Println("$ go build -o bin/ ./cmd/...")
	start := time.Now()
	cmd := exec.CommandContext(d.ctx, "go", "build", "-o", "bin/", "./cmd/...")
	cmd.Dir = d.root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	d.node = filepath.Join(d.root, "bin", "node"+exe)
	d.cli = filepath.Join(d.root, "bin", "client"+exe)
	fmt.Printf("built bin/node and bin/client in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// proc is a running node.
type proc struct{ *proctest.Proc }

// startNode starts bin/node with args and waits for its "listening on" line.
func (d *demo) startNode(name string, args ...string) error {
	fmt.Printf("$ bin/node %s\n", strings.Join(args, " "))
	cmd := exec.Command(d.node, args...)
	cmd.Dir = d.root
	cmd.Env = proctest.CleanEnv()
	pp, err := proctest.Start(name, cmd)
	if err != nil {
		return err
	}
	p := &proc{pp}
	d.procs = append(d.procs, p)
	select {
	case <-p.Log.Ready():
		fmt.Printf("  %s is listening on %s (pid %d)\n", name, p.Log.Addr(), p.Cmd.Process.Pid)
		return nil
	case <-p.Done():
		msg := fmt.Sprintf("%s exited before listening (%v)", name, p.Err())
		if strings.Contains(p.Log.String(), "address already in use") {
			msg += "; its port was taken after the check, by another program"
		}
		return errors.New(msg)
	case <-time.After(startTimeout):
		return fmt.Errorf("%s did not print \"listening on\" within %s", name, startTimeout)
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	fmt.Printf("$ kill -TERM %d   # %s\n", p.Cmd.Process.Pid, p.Name)
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	select {
	case <-p.Done():
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s still running %s after SIGTERM", p.Name, stopTimeout)
	}
	if p.Err() != nil {
		return fmt.Errorf("%s: after SIGTERM: %v (want exit status 0)", p.Name, p.Err())
	}
	return nil
}

// cleanup stops whatever still runs (SIGTERM, then SIGKILL) and removes
// the scratch directory.
func (d *demo) cleanup() {
	for _, p := range d.procs {
		select {
		case <-p.Done():
			continue
		default:
		}
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.Done():
		case <-time.After(stopTimeout):
			p.Cmd.Process.Kill()
			<-p.Done()
		}
	}
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}

// dumpLogs prints the end of each node's log, to explain a failure.
func (d *demo) dumpLogs() {
	for _, p := range d.procs {
		lines := strings.Split(strings.TrimRight(p.Log.String(), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(os.Stderr, "\n--- last lines of the %s log ---\n%s\n", p.Name, strings.Join(lines, "\n"))
	}
}

// result is the output of a client command.
type result struct{ stdout, stderr string }

// client runs bin/client with args in the module root, prints the command
// and its output, and checks its exit status: 0 when wantCode is 0, any
// other status when wantCode is not 0.
func (d *demo) client(wantCode int, args ...string) (result, error) {
	fmt.Printf("$ bin/client %s\n", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(d.ctx, cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Dir = d.root
	cmd.Env = proctest.CleanEnv()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout.String(), stderr.String()}
	indent(os.Stdout, r.stdout)
	indent(os.Stdout, r.stderr)
	if d.ctx.Err() != nil {
		return r, d.ctx.Err()
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("bin/client %s: no answer within %s", strings.Join(args, " "), cmdTimeout)
	}
	var exit *exec.ExitError
	switch {
	case err == nil && wantCode == 0:
		return r, nil
	case errors.As(err, &exit) && wantCode != 0:
		fmt.Printf("  (exit status %d, as expected)\n", exit.ExitCode())
		return r, nil
	case err == nil:
		return r, fmt.Errorf("bin/client %s: succeeded, want a failure", strings.Join(args, " "))
	}
	return r, fmt.Errorf("bin/client %s: %w", strings.Join(args, " "), err)
}

// indent prints each line of s indented.
func indent(w io.Writer, s string) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		fmt.Fprintln(w, "  "+sc.Text())
	}
}

// show prints a file indented.
func show(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	indent(os.Stdout, string(data))
	return nil
}

// closedPort returns a loopback address that nothing listens on.
func closedPort() (string, error) {
	addr, err := proctest.FreeAddr()
	if err != nil {
		return "", err
	}
	return addr.String(), nil
}

// copyDir copies the regular files and directories under src into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
}

// writeRandom writes size pseudo-random bytes (the same on every run) to path.
func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var seed [32]byte
	copy(seed[:], "relaychain demo large file seed")
	if _, err := io.CopyN(f, rand.NewChaCha8(seed), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sameFile checks that got has the bytes of want and prints its digest
// under label.
func sameFile(label, got, want string) error {
	g, gn, err := digest(got)
	if err != nil {
		return fmt.Errorf("downloaded file: %w", err)
	}
	w, wn, err := digest(want)
	if err != nil {
		return err
	}
	if g != w || gn != wn {
		return fmt.Errorf("%s differs from the original: %d bytes sha256 %s, want %d bytes sha256 %s", got, gn, g, wn, w)
	}
	fmt.Printf("ok  %-18s %9d bytes  sha256 %s…\n", label, gn, g[:16])
	return nil
}

func digest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
