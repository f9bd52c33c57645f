package faults

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A sentinel is a listener that must see no connection: it stands where a
// forbidden next hop would be. It runs in the test process, or, to stand
// inside a network namespace, as the test binary re-executed in helper
// mode under `ip netns exec`.

// sentinelAddrEnv lists the addresses a helper sentinel listens on.
const sentinelAddrEnv = "RELAYCHAIN_FAULTS_SENTINEL_ADDRS"

// runHelper runs the test binary as a helper process. "sentinel" listens
// on the addresses in sentinelAddrEnv, prints "ready", then "accept ADDR"
// for every connection, and exits when its standard input closes.
func runHelper(kind string) int {
	if kind != "sentinel" {
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", kind)
		return 2
	}
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	for _, addr := range strings.Split(os.Getenv(sentinelAddrEnv), ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sentinel:", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				say("accept %s", c.RemoteAddr())
				c.Close()
			}
		}()
	}
	say("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// sentinel counts the connections to its listeners.
type sentinel struct {
	addrs   []string // where it listens (in the test process)
	accepts atomic.Int64
	mu      sync.Mutex
	from    []string
}

func (s *sentinel) saw(from string) {
	s.accepts.Add(1)
	s.mu.Lock()
	s.from = append(s.from, from)
	s.mu.Unlock()
}

// checkNone fails the test if the sentinel saw a connection.
func (s *sentinel) checkNone(t testing.TB) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // let a late connection show
	if k := s.accepts.Load(); k != 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Errorf("the sentinel saw %d connection(s), from %v: a forbidden hop was dialed", k, s.from)
	}
}

// waitAccepts waits for the sentinel to have seen n connections.
func (s *sentinel) waitAccepts(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.accepts.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("sentinel saw %d connections, want %d: it cannot see connections", s.accepts.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listenSentinel listens in the test process on addr.
func listenSentinel(t testing.TB, addr string) *sentinel {
	t.Helper()
	s := &sentinel{}
	if err := s.listen(t, addr); err != nil {
		t.Fatal(err)
	}
	return s
}

// listenMore makes s listen on addr too, if it can be bound.
func (s *sentinel) listenMore(t testing.TB, addr string) {
	t.Helper()
	if err := s.listen(t, addr); err != nil {
		t.Logf("sentinel: %v (skipped)", err)
	}
}

func (s *sentinel) listen(t testing.TB, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addrs = append(s.addrs, ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.saw(c.RemoteAddr().String())
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return nil
}

// control proves the sentinel sees connections: it connects to each of
// its listeners and waits for them to be counted. Call it after checkNone.
func (s *sentinel) control(t testing.TB) {
	t.Helper()
	for i, a := range s.addrs {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			t.Fatalf("control: %v", err)
		}
		c.Close()
		s.waitAccepts(t, int64(i+1))
	}
}

// startSentinelIn runs a helper sentinel inside network namespace ns.
func startSentinelIn(t testing.TB, ns string, addrs ...string) *sentinel {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=sentinel", sentinelAddrEnv+"="+strings.Join(addrs, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sentinel{}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
			} else if from, ok := strings.CutPrefix(line, "accept "); ok {
				s.saw(from)
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("sentinel in %s did not start: %s", ns, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("sentinel in %s: not ready within 20s: %s", ns, stderr.String())
	}
	return s
}
