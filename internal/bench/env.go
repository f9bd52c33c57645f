package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/relaychain/relaychain/relay"
	"github.com/relaychain/relaychain/route"
)

// Files under the served root.
const (
	fileHit     = "hit.bin"     // bulk, served from the terminal's cache
	fileMiss    = "miss.bin"    // bulk, streamed from disk (cache off)
	fileSmall   = "small.bin"   // latency suites
	fileStreams = "streams.bin" // streams suite
	fileTune    = "tune.bin"    // tune suite
)

// startTimeout bounds the start of one process.
const startTimeout = 15 * time.Second

// env is the processes and files of one run. Components start lazily, the
// first time a suite asks for them, and live until close.
type env struct {
	cfg   *Config
	dir   string // work directory
	ownWD bool   // dir is ours to remove
	root  string // dir/root: the files every origin serves
	ps    *procs
	node  string // node binary

	socat string // path, or "" when absent or left out
	nginx string // path, or "" when absent or left out
	notes []string

	// relaychain processes with default settings, shared by the suites.
	rcRelays   []*proc // rcRelays[i] is the i-th hop of every chain
	originHit  *proc   // --cache-size big enough for the bulk file
	originMiss *proc   // --cache-size 0: every GET streams from disk

	goOrigins map[string]*proc // file -> Go TCP baseline origin serving it
	goChains  map[goKey]string // first hop of a Go TCP chain
	goPids    map[goKey][]int  // pids of a Go TCP chain: relays, then origin
	socats    map[int]string   // relays -> first hop of a socat chain
	ngx       *nginxEnv

	closeOnce sync.Once
}

func newEnv(cfg *Config) *env {
	return &env{cfg: cfg, goOrigins: map[string]*proc{}, goChains: map[goKey]string{}, goPids: map[goKey][]int{}, socats: map[int]string{}}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (e *env) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	e.notes = append(e.notes, s)
	e.logf("note: %s", s)
}

// setup creates the work directory and the files, builds the node, and
// looks for socat and nginx.
func (e *env) setup(ctx context.Context) error {
	e.dir = e.cfg.Dir
	if e.dir == "" {
		d, err := os.MkdirTemp("", "relaychain-bench-")
		if err != nil {
			return err
		}
		e.dir, e.ownWD = d, true
	}
	e.ps = &procs{dir: e.dir}
	e.root = filepath.Join(e.dir, "root")
	if err := os.MkdirAll(e.root, 0o755); err != nil {
		return err
	}
	// nginx workers may run as another user: let them read the root.
	os.Chmod(e.dir, 0o755)
	e.node = e.cfg.NodeBin
	if e.node == "" {
		e.logf("building cmd/node")
		bin, err := buildNode(ctx, e.dir)
		if err != nil {
			return err
		}
		e.node = bin
	}
	e.logf("writing files under %s", e.root)
	files := map[string]int64{fileSmall: e.cfg.SmallSize, fileStreams: e.cfg.StreamsFile}
	if e.cfg.has(SuiteBulk) {
		files[fileHit] = e.cfg.Size
	}
	if e.cfg.has(SuiteBulk) || e.cfg.has(SuiteTLS) {
		files[fileMiss] = e.cfg.Size
	}
	if e.cfg.has(SuiteTune) {
		files[fileTune] = e.cfg.TuneSize
	}
	for name, size := range files {
		if err := writeRandomFile(filepath.Join(e.root, name), size); err != nil {
			return err
		}
	}
	if !e.cfg.NoSocat {
		if p, err := exec.LookPath("socat"); err == nil {
			e.socat = p
		} else {
			e.note("socat is not installed: its rows are left out (apt-get install socat)")
		}
	}
	if !e.cfg.NoNginx {
		if p, err := lookNginx(); err == nil {
			e.nginx = p
		} else {
			e.note("nginx is not installed: its rows are left out (apt-get install nginx)")
		}
	}
	return nil
}

func lookNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// writeRandomFile writes size bytes of a repeated random 1 MiB block.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(len(path))})
	r.Read(block)
	for left := size; left > 0; {
		k := min(left, int64(len(block)))
		if _, err := f.Write(block[:k]); err != nil {
			f.Close()
			return err
		}
		left -= k
		block[0]++ // no two blocks alike
	}
	return f.Close()
}

// close ends every process and removes the work directory if it made it.
func (e *env) close() {
	e.closeOnce.Do(func() {
		if e.ps != nil {
			e.ps.killAll()
		}
		if e.ownWD && e.dir != "" {
			os.RemoveAll(e.dir)
		}
	})
}

// startNode starts a node process with the given flags and waits until it
// listens.
func (e *env) startNode(ctx context.Context, name string, args ...string) (*proc, error) {
	return e.startNodeBin(ctx, e.node, name, args...)
}

// startNodeBin is startNode with another node binary.
func (e *env) startNodeBin(ctx context.Context, bin, name string, args ...string) (*proc, error) {
	argv := append([]string{bin, "--listen", "127.0.0.1:0", "--quiet"}, args...)
	p, err := e.ps.start(name, argv, nil)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, p, startTimeout); err != nil {
		e.ps.stop(p)
		return nil, err
	}
	return p, nil
}

// startRole starts a baseline process of this program.
func (e *env) startRole(ctx context.Context, name, role, arg string) (*proc, error) {
	p, err := e.ps.start(name, e.cfg.Self, []string{RoleEnv + "=" + role, RoleArgEnv + "=" + arg})
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, p, startTimeout); err != nil {
		e.ps.stop(p)
		return nil, err
	}
	return p, nil
}

func sizeArg(n int64) string { return strconv.FormatInt(n, 10) }

// relays returns the first n shared relay nodes, starting any missing.
func (e *env) relays(ctx context.Context, n int) ([]*proc, error) {
	for len(e.rcRelays) < n {
		p, err := e.startNode(ctx, fmt.Sprintf("relay%d", len(e.rcRelays)+1))
		if err != nil {
			return nil, err
		}
		e.rcRelays = append(e.rcRelays, p)
	}
	return e.rcRelays[:n], nil
}

// hitOrigin returns the origin whose cache holds the bulk file.
func (e *env) hitOrigin(ctx context.Context) (*proc, error) {
	if e.originHit == nil {
		p, err := e.startNode(ctx, "origin-hit", "--root", e.root, "--cache-size", sizeArg(2*e.cfg.Size+64<<20))
		if err != nil {
			return nil, err
		}
		e.originHit = p
	}
	return e.originHit, nil
}

// missOrigin returns the origin without a cache.
func (e *env) missOrigin(ctx context.Context) (*proc, error) {
	if e.originMiss == nil {
		p, err := e.startNode(ctx, "origin-miss", "--root", e.root, "--cache-size", "0")
		if err != nil {
			return nil, err
		}
		e.originMiss = p
	}
	return e.originMiss, nil
}

// rcRoute is the route through the first n shared relays to origin.
func (e *env) rcRoute(ctx context.Context, n int, origin *proc) (route.Route, error) {
	rs, err := e.relays(ctx, n)
	if err != nil {
		return nil, err
	}
	var r route.Route
	for _, p := range rs {
		r = append(r, p.addr)
	}
	return append(r, origin.addr), nil
}

// goKey names a Go TCP chain: its length and the file its origin serves.
type goKey struct {
	n    int
	file string
}

// goChain returns the first hop of a chain of n Go TCP relays in front of
// a Go TCP origin serving file (the origin itself for n = 0).
func (e *env) goChain(ctx context.Context, n int, file string) (string, error) {
	if a, ok := e.goChains[goKey{n, file}]; ok {
		return a, nil
	}
	origin := e.goOrigins[file]
	if origin == nil {
		p, err := e.startRole(ctx, "go-origin-"+file, roleOrigin, filepath.Join(e.root, file))
		if err != nil {
			return "", err
		}
		origin = p
		e.goOrigins[file] = p
	}
	next, pids, err := e.goRelays(ctx, n, origin.addr, "go-relay")
	if err != nil {
		return "", err
	}
	e.goChains[goKey{n, file}] = next
	e.goPids[goKey{n, file}] = append(pids, origin.pid())
	return next, nil
}

// goRelays starts n baseline Go TCP relays (io.Copy both ways) in front of
// target, named name1-of-N..nameN-of-N from the first hop on, and returns
// the first hop and their pids in that order.
func (e *env) goRelays(ctx context.Context, n int, target, name string) (string, []int, error) {
	next := target
	pids := make([]int, n)
	for i := n; i >= 1; i-- {
		p, err := e.startRole(ctx, fmt.Sprintf("%s%d-of-%d", name, i, n), roleRelay, next)
		if err != nil {
			return "", nil, err
		}
		next = p.addr
		pids[i-1] = p.pid()
	}
	return next, pids, nil
}

// socatChain returns the first hop of a chain of n socat relays in front of
// the Go TCP origin.
func (e *env) socatChain(ctx context.Context, n int) (string, error) {
	if a, ok := e.socats[n]; ok {
		return a, nil
	}
	next, err := e.goChain(ctx, 0, fileMiss)
	if err != nil {
		return "", err
	}
	for i := n; i >= 1; i-- {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		argv := []string{e.socat, "-b", "131072",
			fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr", port), "TCP:" + next}
		p, err := e.ps.start(fmt.Sprintf("socat%d-of-%d", i, n), argv, nil)
		if err != nil {
			return "", err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitDial(ctx, p, addr, startTimeout); err != nil {
			return "", err
		}
		next = addr
	}
	e.socats[n] = next
	return next, nil
}

// newClient returns a relaychain client for rt.
func newClient(rt route.Route, transport, verify string, window uint32) (*relay.Client, error) {
	return newClientTimeout(rt, transport, verify, window, 0)
}

// newClientGrowth is newClient whose stream windows start at w.Start and
// grow up to w.Max, or stay at w.Start for a fixed window.
func newClientGrowth(rt route.Route, transport, verify string, w TuneWindow) (*relay.Client, error) {
	cfg := clientConfig(rt, transport, verify, w.Start, 0)
	cfg.StreamWindowMax = max(w.Max, w.Start) // at Start: no growth
	return relay.NewClient(cfg)
}

// newClientTimeout is newClient with an idle timeout (0: the default).
func newClientTimeout(rt route.Route, transport, verify string, window uint32, timeout time.Duration) (*relay.Client, error) {
	return relay.NewClient(clientConfig(rt, transport, verify, window, timeout))
}

// clientConfig returns the configuration of a client for rt.
func clientConfig(rt route.Route, transport, verify string, window uint32, timeout time.Duration) relay.ClientConfig {
	cfg := relay.ClientConfig{Route: rt, StreamWindow: window, Timeout: timeout}
	switch transport {
	case "raw":
		cfg.Transport = relay.TransportRaw
	case "mux":
		cfg.Transport = relay.TransportMux
	default:
		cfg.Transport = relay.TransportAuto
	}
	if verify == "crc64" {
		cfg.Verify = relay.VerifyCRC64
	}
	return cfg
}
