package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaychain/relaychain/relay"
)

// nodeSpec says how to run a node.
type nodeSpec struct {
	root          string        // serve the files under root; "" relays only
	allow         []string      // --allow entries; nil means the default, loopback
	noCache       bool          // --cache-size 0
	headerTimeout time.Duration // --header-timeout; 0 means the default
	tls           *certs        // mutual TLS with the node certificate of this CA
	netns         string        // run inside this network namespace (a process only)
	inproc        bool          // run inside the test process (relay.New)
}

// node is a running node: a process, or a relay.Node in the test process.
// A node is used by one test goroutine at a time.
type node struct {
	name string
	spec nodeSpec
	addr string // where it listens

	// a process
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	killed  bool // killed on purpose by the case

	// in the test process
	n      *relay.Node
	logBuf *syncBuffer
	served chan error
}

// startNode starts a node listening on a free loopback port; it is
// stopped when the test ends.
func startNode(t testing.TB, name string, spec nodeSpec) *node {
	t.Helper()
	binaries(t)
	n := &node{name: name, spec: spec}
	if spec.inproc {
		n.startInProcess(t)
	} else {
		n.launch(t, "127.0.0.1:0")
	}
	return n
}

func (n *node) startInProcess(t testing.TB) {
	t.Helper()
	cfg := relay.DefaultConfig()
	cfg.Root = n.spec.root
	cfg.Allow = n.spec.allow
	if n.spec.noCache {
		cfg.CacheSize = 0
	}
	if n.spec.headerTimeout > 0 {
		cfg.HeaderTimeout = n.spec.headerTimeout
	}
	if c := n.spec.tls; c != nil {
		id, err := relay.LoadTLS(c.nodeCert, c.nodeKey, c.ca)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = id
	}
	n.logBuf = &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(n.logBuf, nil))
	rn, err := relay.New(cfg)
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rn.Close()
		t.Fatal(err)
	}
	n.n, n.addr, n.served = rn, ln.Addr().String(), make(chan error, 1)
	go func() { n.served <- rn.Serve(ln) }()
	t.Cleanup(func() {
		rn.Close()
		select {
		case <-n.served:
		case <-time.After(10 * time.Second):
			t.Errorf("node %s: Serve did not return within 10s of Close", n.name)
		}
	})
}

// args returns the node's command line, listening on listen.
func (n *node) args(listen string) []string {
	a := []string{"--listen", listen, "--log-format", "json"}
	if n.spec.root != "" {
		a = append(a, "--root", n.spec.root)
	}
	for _, e := range n.spec.allow {
		a = append(a, "--allow", e)
	}
	if n.spec.noCache {
		a = append(a, "--cache-size", "0")
	}
	if n.spec.headerTimeout > 0 {
		a = append(a, "--header-timeout", n.spec.headerTimeout.String())
	}
	if c := n.spec.tls; c != nil {
		a = append(a, "--tls-cert", c.nodeCert, "--tls-key", c.nodeKey, "--tls-ca", c.ca)
	}
	return a
}

var listeningRE = regexp.MustCompile(`listening on ([^"\s]+)`)

// launch starts the node process on listen and waits until it listens.
func (n *node) launch(t testing.TB, listen string) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), n.name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	argv := append([]string{bins.node}, n.args(listen)...)
	if n.spec.netns != "" {
		argv = append([]string{"ip", "netns", "exec", n.spec.netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", n.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.cmd, n.exited, n.logPath, n.killed = cmd, exited, logf.Name(), false
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("node %s (pid %d) did not exit within 10s of SIGKILL", n.name, cmd.Process.Pid)
		}
	})
	deadline := time.Now().Add(listenTimeout)
	for {
		if m := listeningRE.FindStringSubmatch(n.logText()); m != nil {
			n.addr = m[1]
			return
		}
		select {
		case <-exited:
			t.Fatalf("node %s exited before listening: %s", n.name, tail(n.logText(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: no \"listening on\" within %s: %s", n.name, listenTimeout, tail(n.logText(), 2000))
		}
	}
}

func (n *node) pid() int { return n.cmd.Process.Pid }

// isProc reports whether the node is a process.
func (n *node) isProc() bool { return n.cmd != nil }

// alive returns an error unless the node is still running.
func (n *node) alive() error {
	if n.isProc() {
		select {
		case <-n.exited:
			return fmt.Errorf("node %s (pid %d) exited (%v): %s", n.name, n.pid(), n.cmd.ProcessState, tail(n.logText(), 1500))
		default:
			return nil
		}
	}
	select {
	case err := <-n.served:
		n.served <- err
		return fmt.Errorf("node %s: Serve returned %v", n.name, err)
	default:
		return nil
	}
}

// signal sends sig to the node process.
func (n *node) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to node %s: %v", sig, n.name, err)
	}
}

// kill kills the node process with SIGKILL and waits for it to exit.
func (n *node) kill(t testing.TB) {
	t.Helper()
	n.signal(t, syscall.SIGKILL)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s did not exit within 10s of SIGKILL", n.name)
	}
	n.killed = true
}

// restart starts a killed node process again on the same address.
func (n *node) restart(t testing.TB) {
	t.Helper()
	addr := n.addr
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may be busy for a moment
		if err = tryListen(addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart node %s: %s stays busy: %v", n.name, addr, err)
	}
	n.launch(t, addr)
	if n.addr != addr {
		t.Fatalf("restarted node %s listens on %s, want %s", n.name, n.addr, addr)
	}
}

func tryListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// logText returns everything the node has logged.
func (n *node) logText() string {
	if n.logBuf != nil {
		return n.logBuf.String()
	}
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// logLine is one JSON log line of a node.
type logLine map[string]any

// requests returns the node's "request" log lines (one per request).
func (n *node) requests() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(n.logText()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "request" {
			out = append(out, l)
		}
	}
	return out
}

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

func (l logLine) int(k string) int64 {
	f, _ := l[k].(float64)
	return int64(f)
}

// fds counts the open file descriptors of process pid, pipes left out:
// Go's io.Copy between TCP connections splices through pipes that it
// pools and closes only when the garbage collector drops them.
func fds(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	k := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && !strings.HasPrefix(target, "pipe:") {
			k++
		}
	}
	return k, nil
}

// fdReport lists the descriptors of pid, sockets with their TCP state and
// addresses, for failure messages.
func fdReport(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	socks := tcpSockets()
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		fmt.Fprintf(&b, "  fd %s -> %s", e.Name(), target)
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			if s, ok := socks[strings.TrimSuffix(ino, "]")]; ok {
				fmt.Fprintf(&b, " %s", s)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

var tcpStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
	"05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}

// tcpSockets maps socket inodes to "STATE local -> remote" from /proc/net/tcp.
func tcpSockets() map[string]string {
	out := map[string]string{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			out[fs[9]] = fmt.Sprintf("%s %s -> %s", tcpStates[fs[3]], hexAddr(fs[1]), hexAddr(fs[2]))
		}
	}
	return out
}

// hexAddr decodes an IPv4 address of /proc/net/tcp ("0100007F:1F40").
func hexAddr(s string) string {
	host, port, ok := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if !ok || len(host) != 8 {
		return fmt.Sprintf("[%s]:%d", host, p)
	}
	v, _ := strconv.ParseUint(host, 16, 32)
	return fmt.Sprintf("%d.%d.%d.%d:%d", byte(v), byte(v>>8), byte(v>>16), byte(v>>24), p)
}

// procStatus returns the resident set size in bytes and the thread count
// of process pid.
func procStatus(pid int) (rss int64, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseInt(fs[0], 10, 64)
			rss = kb << 10
		case "Threads":
			threads, _ = strconv.Atoi(fs[0])
		}
	}
	return rss, threads, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// certs is a CA with a node and a client certificate, made by mkcerts.
type certs struct {
	ca, nodeCert, nodeKey, clientCert, clientKey string
}

// makeCerts runs mkcerts into a temporary directory.
func makeCerts(t testing.TB) *certs {
	t.Helper()
	binaries(t)
	dir := t.TempDir()
	if out, err := exec.Command(bins.mkcerts, "-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("mkcerts: %v\n%s", err, out)
	}
	j := func(f string) string { return filepath.Join(dir, f) }
	return &certs{ca: j("ca.pem"), nodeCert: j("node.pem"), nodeKey: j("node-key.pem"),
		clientCert: j("client.pem"), clientKey: j("client-key.pem")}
}

// clientFlags are the client's TLS flags for this identity.
func (c *certs) clientFlags() []string {
	return []string{"--tls-cert", c.clientCert, "--tls-key", c.clientKey, "--tls-ca", c.ca}
}
