package multihost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

// Bounds on every wait.
const (
	buildTimeout   = 5 * time.Minute
	installTimeout = 3 * time.Minute
	cmdTimeout     = 20 * time.Second // one ip or tc command
	listenTimeout  = 20 * time.Second // for a node's "listening on" line
	killTimeout    = 10 * time.Second // for exit after SIGKILL
	clientTimeout  = 60 * time.Second // for one client command
)

// nsPrefix starts the name of every namespace these tests create.
const nsPrefix = "rcmh"

var (
	buildOnce sync.Once
	binDir    string // holds node and client once built
	buildErr  error

	envOnce sync.Once
	envSkip string // why the environment cannot run these tests

	topoSeq atomic.Int32 // numbers the topologies of one test process
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// requireNetns skips the test unless it runs as root on Linux and can
// create network namespaces. It installs iproute2 with apt-get when `ip`
// is missing.
func requireNetns(t *testing.T) {
	t.Helper()
	envOnce.Do(func() { envSkip = checkEnv() })
	if envSkip != "" {
		t.Skip(envSkip)
	}
}

func checkEnv() string {
	if runtime.GOOS != "linux" {
		return "network namespaces need Linux"
	}
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "go command not on PATH; the tests build the binaries with it"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if err := installIproute2(); err != nil {
			return "ip (iproute2) is missing and could not be installed: " + err.Error()
		}
	}
	removeStale()
	probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if out, err := command("ip", "netns", "add", probe); err != nil {
		return "ip netns add failed: " + strings.TrimSpace(out)
	}
	if out, err := command("ip", "netns", "del", probe); err != nil {
		return "ip netns del failed: " + strings.TrimSpace(out)
	}
	return ""
}

func installIproute2() error {
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, apt, "install", "-y", "iproute2")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install -y iproute2: %v\n%s", err, out)
	}
	_, err = exec.LookPath("ip")
	return err
}

// removeStale deletes namespaces named by this package whose test process
// (the pid in the name) no longer exists, left behind by a killed run.
func removeStale() {
	out, err := command("ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			command("ip", "netns", "del", name)
		}
	}
}

// command runs name with args, bounded by cmdTimeout, and returns its
// combined output.
func command(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), err
}

// must runs a command and fails the test if it fails.
func must(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := command(name, args...); err != nil {
		t.Fatal(err)
	}
}

// binaries builds cmd/node and cmd/client once per test process and
// returns their paths. They are built without -race on purpose: see doc.go.
func binaries(t *testing.T) (node, client string) {
	t.Helper()
	buildOnce.Do(func() { buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "node"), filepath.Join(binDir, "client")
}

func build() error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var err error
	binDir, err = proctest.BuildTemp(ctx, "relaychain-multihost-bin-", false, "./cmd/node", "./cmd/client")
	return err
}

// host is one network namespace of a topology.
type host struct {
	ns string
}

// link is one end of a veth pair: its device in a namespace and address.
type link struct {
	dev  string
	addr string // without the prefix length
}

// topology is client <-> relay1 <-> relay2 <-> origin, one namespace each.
// Fields name the addresses each host has on each link, and the devices
// whose egress leads towards the client (where tbf is applied).
type topology struct {
	client, relay1, relay2, origin host

	clientToR1, r1ToClient link // 10.231.1.0/30
	r1ToR2, r2ToR1         link // 10.231.2.0/30
	r2ToOrigin, originToR2 link // 10.231.3.0/30
}

// newTopology creates the four namespaces and three veth links, and
// removes them when the test ends (after the processes started later,
// which t.Cleanup kills first).
func newTopology(t *testing.T) *topology {
	t.Helper()
	requireNetns(t)
	base := fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), topoSeq.Add(1))
	tp := &topology{
		client: host{base + "cl"}, relay1: host{base + "r1"},
		relay2: host{base + "r2"}, origin: host{base + "or"},
		clientToR1: link{"to-r1", "10.231.1.1"}, r1ToClient: link{"to-cl", "10.231.1.2"},
		r1ToR2: link{"to-r2", "10.231.2.1"}, r2ToR1: link{"to-r1", "10.231.2.2"},
		r2ToOrigin: link{"to-or", "10.231.3.1"}, originToR2: link{"to-r2", "10.231.3.2"},
	}
	for _, h := range []host{tp.client, tp.relay1, tp.relay2, tp.origin} {
		must(t, "ip", "netns", "add", h.ns)
		t.Cleanup(func() {
			if _, err := command("ip", "netns", "del", h.ns); err != nil {
				t.Errorf("remove namespace: %v", err)
			}
		})
		must(t, "ip", "-n", h.ns, "link", "set", "lo", "up")
	}
	tp.connect(t, tp.client, tp.clientToR1, tp.relay1, tp.r1ToClient)
	tp.connect(t, tp.relay1, tp.r1ToR2, tp.relay2, tp.r2ToR1)
	tp.connect(t, tp.relay2, tp.r2ToOrigin, tp.origin, tp.originToR2)
	return tp
}

// connect creates a veth pair directly inside the two namespaces (it never
// exists in the host's), addresses both ends in a /30 and brings them up.
func (tp *topology) connect(t *testing.T, a host, la link, b host, lb link) {
	t.Helper()
	must(t, "ip", "link", "add", la.dev, "netns", a.ns, "type", "veth", "peer", "name", lb.dev, "netns", b.ns)
	for _, e := range []struct {
		h host
		l link
	}{{a, la}, {b, lb}} {
		must(t, "ip", "-n", e.h.ns, "addr", "add", e.l.addr+"/30", "dev", e.l.dev)
		must(t, "ip", "-n", e.h.ns, "link", "set", e.l.dev, "up")
	}
}

// towardsClient lists the (host, device) pairs whose egress carries the
// file towards the client.
func (tp *topology) towardsClient() []struct {
	h   host
	dev string
} {
	return []struct {
		h   host
		dev string
	}{{tp.origin, tp.originToR2.dev}, {tp.relay2, tp.r2ToR1.dev}, {tp.relay1, tp.r1ToClient.dev}}
}

// startNode runs the node binary in h's namespace with args and waits for
// its "listening on" line. It is killed when the test ends.
func startNode(t *testing.T, h host, name string, args ...string) *proctest.Proc {
	t.Helper()
	bin, _ := binaries(t)
	// ip netns exec execs the command itself: the pid is the node's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, bin}, args...)...)
	cmd.Env = proctest.CleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return proctest.StartNode(t, name, cmd, listenTimeout, killTimeout)
}

// result is what a client command did.
type result struct {
	stdout, stderr string
	code           int // exit status
}

// runClient runs the client binary in h's namespace with args.
func runClient(t *testing.T, h host, args ...string) result {
	t.Helper()
	_, bin := binaries(t)
	r := proctest.Run(t, "client "+strings.Join(args, " "), clientTimeout, func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, bin}, args...)...)
		cmd.Env = proctest.CleanEnv()
		cmd.WaitDelay = killTimeout
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd
	})
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}
