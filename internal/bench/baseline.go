package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The baseline is a plain Go TCP relay chain, run as processes of the bench
// binary itself (re-executed with RoleEnv set): the limit for a chain of
// this shape on this machine.
//
//   - origin: accepts, then io.Copy(conn, file): sendfile(2).
//   - relay: accepts, dials the next hop, io.Copy both ways between the two
//     *net.TCPConn: splice(2), with half-close.
//   - client (in the bench process): reads until EOF into a 256 KiB buffer
//     and discards the bytes, as relay.Client does with its copy buffer.

// RoleEnv names the environment variable that turns the bench binary (or
// the test binary) into one baseline process; RoleArgEnv carries its
// argument.
const (
	RoleEnv    = "RELAYCHAIN_BENCH_ROLE"
	RoleArgEnv = "RELAYCHAIN_BENCH_ROLE_ARG"
)

// Baseline roles.
const (
	roleOrigin = "tcp-origin" // argument: the file to serve
	roleRelay  = "tcp-relay"  // argument: the next hop's host:port
)

// RoleRequested reports whether this process was started as a baseline
// process. A main (or TestMain) calls it first and, if true, exits with
// the status RunRole returns.
func RoleRequested() bool { return os.Getenv(RoleEnv) != "" }

// RunRole runs the baseline role named by RoleEnv until the process is
// killed, and returns an exit status: nonzero only when it cannot start.
func RunRole() int {
	role, arg := os.Getenv(RoleEnv), os.Getenv(RoleArgEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench role:", err)
		return 1
	}
	switch role {
	case roleOrigin:
		if _, err := os.Stat(arg); err != nil {
			fmt.Fprintln(os.Stderr, "bench role:", err)
			return 1
		}
	case roleRelay:
	default:
		fmt.Fprintf(os.Stderr, "bench role %q: want %s or %s\n", role, roleOrigin, roleRelay)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s listening on %s\n", role, ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench role: accept:", err)
			return 1
		}
		switch role {
		case roleOrigin:
			go serveFileTCP(c.(*net.TCPConn), arg)
		case roleRelay:
			go relayTCP(c.(*net.TCPConn), arg)
		}
	}
}

// serveFileTCP sends the whole file with io.Copy (sendfile), half-closes,
// and waits for the client to close.
func serveFileTCP(c *net.TCPConn, path string) {
	defer c.Close()
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := io.Copy(c, f); err != nil {
		return
	}
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	io.Copy(io.Discard, c)
}

// relayTCP dials next and copies both ways; each io.Copy between two
// *net.TCPConn is a splice.
func relayTCP(up *net.TCPConn, next string) {
	defer up.Close()
	d, err := net.DialTimeout("tcp", next, 10*time.Second)
	if err != nil {
		return
	}
	down := d.(*net.TCPConn)
	defer down.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(down, up)
		down.CloseWrite()
	}()
	io.Copy(up, down)
	up.CloseWrite()
	wg.Wait()
}

// fetchTCP connects to addr, reads until EOF into a 256 KiB buffer, and
// returns the byte count. It fails unless exactly want bytes arrive.
func fetchTCP(ctx context.Context, addr string, want int64, buf []byte) (int64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if n != want {
		return n, fmt.Errorf("got %d bytes, want %d", n, want)
	}
	return n, nil
}
