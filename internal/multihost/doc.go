// Package multihost holds end-to-end tests that run the node and client
// binaries on separate network hosts: the client, two relays and the
// origin each live in their own network namespace, and each adjacent pair
// is joined by a veth pair with its own /30 (10.231.N.0/30, addresses that
// exist only inside the namespaces the test creates, never in the host's).
//
//	client 10.231.1.1 <-> 10.231.1.2 relay1 10.231.2.1 <-> 10.231.2.2 relay2 10.231.3.1 <-> 10.231.3.2 origin
//
// The relays are application-level, so nothing is forwarded or routed:
// each relay listens on 0.0.0.0 inside its namespace and dials the next hop
// over the directly connected link.
//
// The tests check a multi-MiB fetch across the hosts, the next-hop allow
// list on real non-loopback addresses (an allowed /32 and host:port, a list
// naming some other address, and the loopback-only default), and that
// throughput follows a tc tbf rate limit on the links towards the client,
// over both the raw and the mux transport.
//
// They skip unless they run as root on Linux with `ip netns` working (and,
// for the throughput test, tc with the tbf qdisc). When `ip` is missing and
// apt-get is available, the harness installs iproute2 first. Namespaces are
// named after the test process's pid and removed in t.Cleanup, after the
// processes in them have been killed; namespaces left behind by a test
// process that no longer exists are removed too.
//
// The binaries are built without -race even under `go test -race`, so that
// the measured throughput is the network's and not the race detector's;
// the race-built binaries are exercised by internal/e2e.
//
// The package has no non-test code.
package multihost
