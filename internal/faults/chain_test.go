package faults

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"
)

// mode says where a case runs its nodes.
type mode int

const (
	// procMode runs every node as a process; leaks are checked by their
	// descriptor counts. Cases in this mode run in parallel.
	procMode mode = iota
	// inprocMode runs the relays and the terminal in the test process,
	// except the nodes a case must kill or stop; leaks are checked by the
	// test process's goroutine and descriptor counts, so these cases must
	// not run in parallel with anything.
	inprocMode
)

func (m mode) String() string { return [...]string{"proc", "inproc"}[m] }

// chainSpec describes a chain: relays, then a terminal.
type chainSpec struct {
	relays int
	mode   mode
	procAt []int    // in inprocMode, the nodes that stay processes
	relay  nodeSpec // for every relay
	term   nodeSpec // for the terminal (its root is made here)
	files  []fileSpec
	// allowNext lets each relay dial only its next hop's HOST:PORT.
	allowNext bool
	// maxRSS is the largest RSS a node may have after a case; 0 means
	// the package's maxRSS. A case that drives memory up on purpose sets
	// its own: the Go runtime keeps freed memory a while before it gives
	// it back to the system.
	maxRSS int64
	// tls makes every node and the client use this CA's certificates.
	tls *certs
	// netns runs the nodes and the clients inside this network namespace,
	// without proxies (toxiproxy runs outside it): the route lists the
	// nodes.
	netns string
}

// checkFile is in every chain's root: the fresh GET after every case.
var checkFile = fileSpec{name: "check.bin", size: 96<<10 + 3}

// chain is a running chain: nodes[i] is behind proxies[i], and the route
// lists the proxies.
type chain struct {
	spec       chainSpec
	nodes      []*node // relays first, terminal last
	proxies    []*proxy
	route      []string
	root       string
	files      map[string]genFile
	clientArgs []string // global client flags for every run (TLS)
	clientWrap []string // runs the client (ip netns exec NS)

	baseFDs map[*node]int
	// poolSlack is how many descriptors above the baseline a node may
	// keep after the case for idle pooled raw links.
	poolSlack int
	baseG     int // goroutines of the test process (inprocMode)
	baseSelf  int // descriptors of the test process (inprocMode)
}

// newChain starts a chain with a toxiproxy proxy in front of every node,
// runs the warm-up GETs and records the baseline.
func newChain(t *testing.T, spec chainSpec) *chain {
	t.Helper()
	var tp *toxiproxy
	if spec.netns == "" {
		tp = toxi(t)
	} else {
		binaries(t)
	}
	c := &chain{spec: spec, root: t.TempDir()}
	c.files = writeFiles(t, c.root, append([]fileSpec{checkFile}, spec.files...))
	n := spec.relays + 1
	c.nodes = make([]*node, n)
	c.proxies = make([]*proxy, n)
	c.route = make([]string, n)
	for i := n - 1; i >= 0; i-- { // backwards: a relay's allow list needs its next hop
		ns, name := spec.relay, fmt.Sprintf("relay%d", i)
		if i == n-1 {
			ns, name = spec.term, "terminal"
			ns.root = c.root
		} else if spec.allowNext {
			ns.allow = []string{c.route[i+1]}
		}
		ns.inproc = spec.mode == inprocMode && !slices.Contains(spec.procAt, i)
		if spec.tls != nil {
			ns.tls = spec.tls
		}
		ns.netns = spec.netns
		c.nodes[i] = startNode(t, name, ns)
		if tp == nil {
			c.route[i] = c.nodes[i].addr
			continue
		}
		c.proxies[i] = tp.newProxy(t, c.nodes[i].addr)
		c.route[i] = c.proxies[i].Listen
	}
	if tp == nil {
		c.proxies = nil
	}
	if spec.tls != nil {
		c.clientArgs = spec.tls.clientFlags()
	}
	if spec.netns != "" {
		c.clientWrap = []string{"ip", "netns", "exec", spec.netns}
	}
	c.warmup(t)
	return c
}

// args returns client arguments: the route, the chain's global flags,
// then global, then the command line.
func (c *chain) args(global []string, cmd ...string) []string {
	var a []string
	for _, h := range c.route {
		a = append(a, "--hop", h)
	}
	a = append(append(a, c.clientArgs...), global...)
	return append(a, cmd...)
}

// get runs `client get -o dir names...` along the chain.
func (c *chain) get(t testing.TB, global []string, dir string, names ...string) *clientRun {
	t.Helper()
	return c.run(t, c.args(global, append([]string{"get", "-o", dir}, names...)...)...)
}

// run runs the client with args (in the chain's network namespace).
func (c *chain) run(t testing.TB, args ...string) *clientRun {
	t.Helper()
	return startClient(t, c.clientWrap, args...).wait(t, clientTimeout)
}

// startGet starts `client get -o dir [getFlags] name`.
func (c *chain) startGet(t testing.TB, global, getFlags []string, dir, name string) *clientRun {
	t.Helper()
	cmd := append(append([]string{"get", "-o", dir}, getFlags...), name)
	return startClient(t, c.clientWrap, c.args(global, cmd...)...)
}

// want returns the generated files named.
func (c *chain) want(names ...string) map[string]genFile {
	m := map[string]genFile{}
	for _, n := range names {
		m[n] = c.files[n]
	}
	return m
}

// fresh fetches the check file over a mux and a raw link and checks it.
func (c *chain) fresh(t testing.TB) {
	t.Helper()
	for _, tr := range []string{"mux", "raw"} {
		dir := t.TempDir()
		r := c.get(t, []string{"--transport", tr}, dir, checkFile.name)
		r.ok(t)
		checkOutDir(t, dir, c.want(checkFile.name), false)
	}
}

// warmup runs the fresh GETs, which leave the links pooled as they are
// after any later fresh GET, and records the baseline counts.
func (c *chain) warmup(t testing.TB) {
	t.Helper()
	c.fresh(t)
	c.baseFDs = map[*node]int{}
	// The minimum over a moment: requests that just ended may still be
	// winding down.
	end := time.Now().Add(400 * time.Millisecond)
	for first := true; first || time.Now().Before(end); first = false {
		for _, n := range c.nodes {
			if n.isProc() {
				k, err := fds(n.pid())
				if err != nil {
					t.Fatal(err)
				}
				if b, ok := c.baseFDs[n]; !ok || k < b {
					c.baseFDs[n] = k
				}
			}
		}
		if c.spec.mode == inprocMode {
			g, s := runtime.NumGoroutine(), selfFDs(t)
			if first || g < c.baseG {
				c.baseG = g
			}
			if first || s < c.baseSelf {
				c.baseSelf = s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// after runs the checks every case ends with: toxics removed, every node
// still up and serving a fresh GET correctly, descriptors (and, in
// process, goroutines) back to the baseline, threads and memory sane.
func (c *chain) after(t testing.TB) {
	t.Helper()
	clearAll(t, c.proxies)
	c.checkAlive(t)
	c.fresh(t)
	c.settle(t, settleTimeout)
	c.checkAlive(t)
	c.sanity(t)
}

// checkAlive fails the test unless every node not killed on purpose runs.
func (c *chain) checkAlive(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		if !n.killed {
			if err := n.alive(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// settle waits up to within for the descriptors of every node process to
// come back to the baseline, and in inprocMode for the test process's
// goroutines and descriptors too.
func (c *chain) settle(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, n := range c.nodes {
		if !n.isProc() || n.killed {
			continue
		}
		for {
			k, err := fds(n.pid())
			if err != nil {
				t.Fatalf("node %s: %v", n.name, err)
			}
			if k <= c.baseFDs[n]+c.poolSlack {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("node %s (pid %d): %d open descriptors %s after the case, baseline %d (+%d):\n%s",
					n.name, n.pid(), k, within, c.baseFDs[n], c.poolSlack, fdReport(n.pid()))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if c.spec.mode == inprocMode {
		settleInProcess(t, c.baseG, c.baseSelf, max(within, goroutineSettle))
	}
}

// goroutineSettle bounds how long the goroutines of a relayed mux stream
// may outlive its failure: a mux relay gives the second direction of a
// splice Config.Linger (10s) to finish once the first has ended.
const goroutineSettle = 13 * time.Second

// settleInProcess waits for the test process's goroutines and descriptors
// to come back to baseG and baseFD.
func settleInProcess(t testing.TB, baseG, baseFD int, within time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		g, f := runtime.NumGoroutine(), selfFDs(t)
		if g <= baseG && f <= baseFD {
			t.Logf("in-process goroutines %d (baseline %d), descriptors %d (baseline %d) after %s",
				g, baseG, f, baseFD, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			stacks := relayStacks(b.String())
			t.Errorf("test process: %d goroutines (baseline %d), %d descriptors (baseline %d) %s after the case:\n%s\ndescriptors:\n%s",
				g, baseG, f, baseFD, within, stacks, fdReport(os.Getpid()))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayStacks keeps the goroutine profile records that run relay or yamux
// code.
func relayStacks(profile string) string {
	var keep []string
	for _, rec := range strings.Split(profile, "\n\n") {
		if strings.Contains(rec, "relaychain/relay") || strings.Contains(rec, "yamux") {
			keep = append(keep, rec)
		}
	}
	return strings.Join(keep, "\n\n")
}

func selfFDs(t testing.TB) int {
	k, err := fds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Sanity bounds on a node process after a case.
const (
	maxThreads = 100
	maxRSS     = 512 << 20
)

// sanity checks the threads and memory of every node process.
func (c *chain) sanity(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		if !n.isProc() || n.killed {
			continue
		}
		rss, threads, err := procStatus(n.pid())
		if err != nil {
			t.Fatalf("node %s: %v", n.name, err)
		}
		limit := c.spec.maxRSS
		if limit == 0 {
			limit = maxRSS
		}
		if threads > maxThreads || rss > limit {
			t.Errorf("node %s: %d threads, RSS %d MiB; want at most %d threads and %d MiB", n.name, threads, rss>>20, maxThreads, limit>>20)
		}
	}
}

// terminal returns the chain's terminal node.
func (c *chain) terminal() *node { return c.nodes[len(c.nodes)-1] }

// matches reports whether s matches the case-insensitive regexp re.
func matches(re, s string) bool {
	return regexp.MustCompile("(?i)" + re).MatchString(s)
}

// waitLog waits up to within for a request line of n that ok accepts.
func waitLog(t testing.TB, n *node, within time.Duration, ok func(logLine) bool) logLine {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, l := range n.requests() {
			if ok(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: no such request line within %s; log:\n%s", n.name, within, tail(n.logText(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
