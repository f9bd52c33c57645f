package faults

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// TestForbidden routes requests to next hops a relay must not dial. Each
// is refused with "not allowed" naming the hop, and a sentinel listener
// standing at the forbidden address sees no connection.
func TestForbidden(t *testing.T) {
	t.Parallel()
	t.Run("port", testForbiddenPort)
	t.Run("hostname", testForbiddenHostname)
	t.Run("metadata", testForbiddenMetadata)
}

// notAllowed checks that the GET along route failed as not allowed at hop
// 1, naming hop.
func notAllowed(t *testing.T, c *chain, route []string, hop, transport string) {
	t.Helper()
	var args []string
	for _, h := range route {
		args = append(args, "--hop", h)
	}
	dir := t.TempDir()
	r := c.run(t, append(append(args, c.clientArgs...), "--transport", transport, "get", "-o", dir, checkFile.name)...)
	t.Logf("%s: %s", transport, r.stderr.String())
	r.failed(t, `hop 1 \(`+regexp.QuoteMeta(hop)+`\): not allowed`)
	checkOutDir(t, dir, nil, false)
}

// testForbiddenPort: relay0 may dial only its next hop's HOST:PORT; a
// route to another port of the same loopback address is refused.
func testForbiddenPort(t *testing.T) {
	t.Parallel()
	c := newChain(t, chainSpec{relays: 1, allowNext: true})
	s := listenSentinel(t, "127.0.0.1:0")
	addr := s.addrs[0]
	for _, tr := range transports {
		notAllowed(t, c, []string{c.route[0], addr, c.route[1]}, addr, tr)
	}
	s.checkNone(t)
	s.control(t)
	c.after(t)
}

// testForbiddenHostname: relay0 may dial only 127.0.0.2; a route to
// localhost, which resolves to 127.0.0.1 (and ::1), is refused on the
// resolved address.
func testForbiddenHostname(t *testing.T) {
	t.Parallel()
	c := newChain(t, chainSpec{relays: 0, term: nodeSpec{allow: []string{"127.0.0.2/32"}}})
	s := listenSentinel(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(s.addrs[0])
	s.listenMore(t, net.JoinHostPort("::1", port))
	hop := net.JoinHostPort("localhost", port)
	for _, tr := range transports {
		notAllowed(t, c, []string{c.route[0], hop}, hop, tr)
	}
	s.checkNone(t)
	s.control(t)
	c.after(t)
}

// testForbiddenMetadata: a relay with the default allow list (loopback)
// is routed to the cloud metadata address 169.254.169.254:80. The relay
// refuses before connect(2); to be sure no packet could leave this
// machine anyway, the relay, its clients and the sentinel run in a network
// namespace made for the test, whose only interface is its loopback, which
// holds 169.254.169.254 and the sentinel listening there.
func testForbiddenMetadata(t *testing.T) {
	t.Parallel()
	ns := netns(t)
	const metadata = "169.254.169.254:80"
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("add 169.254.169.254 to lo in %s: %v: %s", ns, err, out)
	}
	// The sentinel's loopback listener is only for the control below: the
	// test itself never connects to 169.254.169.254.
	s := startSentinelIn(t, ns, metadata, "127.0.0.1:9")
	c := newChain(t, chainSpec{relays: 0, netns: ns})
	for _, tr := range transports {
		notAllowed(t, c, []string{c.route[0], metadata}, metadata, tr)
	}
	s.checkNone(t)
	// Control: the helper reports connections (to its loopback listener).
	r := c.run(t, "--hop", c.route[0], "--hop", "127.0.0.1:9", "get", "-o", t.TempDir(), checkFile.name)
	r.failed(t, `not a relay node`)
	s.waitAccepts(t, 1)
	c.after(t)
}

// netns creates a network namespace with its loopback up, deleted when
// the test ends. It skips the test where that cannot be done.
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create a network namespace to keep this subcase's traffic in")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2): cannot create a network namespace to keep this subcase's traffic in")
	}
	name := fmt.Sprintf("rlyfaults-%d-%d", os.Getpid(), proxySeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		// Processes in it are killed by the cleanups registered later
		// (which run first).
		for i := 0; i < 20; i++ {
			if exec.Command("ip", "netns", "del", name).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("ip netns del %s failed", name)
	})
	if out, err := exec.Command("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up in %s: %v: %s", name, err, out)
	}
	return name
}
