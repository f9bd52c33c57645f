// Package faults is the fault-injection suite of GitHub issue 5: it runs
// real node processes chained on loopback with toxiproxy between the hops,
// breaks the chain in the ways a network and its users do, and checks
// that every failure is reported clearly, that nothing is left behind,
// and that the nodes go on serving.
//
// Run it with
//
//	go test ./internal/faults/          (or with -race; -count=1 to rerun)
//
// # Harness
//
//   - cmd/node, cmd/client and cmd/mkcerts are built once per test binary
//     into a temporary directory (without -race, so that timing and memory
//     figures are those of a release build; under -race the in-process
//     cases below run the node code with the race detector).
//   - toxiproxy (github.com/Shopify/toxiproxy/v2, server v2.12.0) is found
//     as toxiproxy-server on PATH, or as "server" in GOBIN or GOPATH/bin,
//     or installed there with go install. It runs once per test binary on a
//     free loopback port and is driven through its HTTP API with net/http:
//     one proxy in front of every node, the route lists the proxies. The
//     tests that need it skip, saying why, only when it cannot be had.
//   - Nodes log JSON (--log-format json): the suite reads "listening on
//     HOST:PORT" and the one line per request with its bytes.
//
// After every case: each node is still running and serves a fresh GET
// correctly over mux and raw links; the node's open file descriptors
// (/proc/PID/fd) come back to the count measured after the warm-up; its
// threads and RSS are sane; and the client's output directory holds no
// file under the final name unless it is complete and matches the
// source's SHA-256, and no temporary file (NAME.partial is allowed only
// in the resume cases). Goroutines of a process cannot be counted from
// outside, so TestInProcess runs a subset of the cases with the relays and
// the terminal inside the test process (relay.New), the hop that must be
// killed or stopped still a process, and checks that the test process's
// goroutines and descriptors come back to their baseline; those cases run
// sequentially, before the parallel ones.
//
// # Cases
//
//   - TestSlowHops: 200 ms latency and 1 MB/s on every hop, both ways:
//     completes and is correct; a --timeout shorter than the transfer does
//     not cut it (the timeout is idle-based).
//   - TestResetPeer: a reset between relays or on the client's hop: a
//     clear error; with --resume the partial is kept and a second run
//     completes it.
//   - TestLimitData: a hop cut after N bytes (mid-data, near or in the
//     trailer): an error, never a success, and no file.
//   - TestMiddleHopKilled / TestMiddleHopStopped: SIGKILL or SIGSTOP of the
//     middle relay mid-transfer: an error within seconds (within the
//     client's --timeout 3s when stopped); after SIGCONT nothing stays open.
//   - TestRefused (sequential, for its timing): a first, middle or next hop
//     that refuses connections: an error naming that HOST:PORT in under 1s.
//   - TestDiskFull: a 1 MiB tmpfs (as root) or ulimit -f: non-zero exit,
//     no success line, no file, no temporary file.
//   - TestSlowloris: 200 connections that send their preface or request
//     header slowly are all cut at --header-timeout 2s while a normal GET
//     completes.
//   - TestUnreadStreams: 10,000 yamux streams whose GETs are never read:
//     the node stays up, other users are served, RSS is reported and
//     bounded.
//   - TestForbidden: next hops outside the allow list (another port, the
//     link-local metadata address inside a network namespace of the test's
//     own, a host name that resolves to a forbidden address) are refused
//     with "not allowed" naming the hop, and a sentinel listener sees no
//     connection.
//   - TestTLSRefused: a client or relay with a certificate from another CA,
//     or without TLS: the link is refused.
//   - TestParallelMixed: 200 parallel downloads of 0 B to 8 MiB through 3
//     relays: every checksum matches.
//   - TestCancelReachesOrigin: SIGINT to a slow client of a 1 GiB file:
//     every node's descriptors are back within 2 s, and the origin's log
//     shows it sent far fewer bytes than the size.
//
// # Known bugs
//
// Every wait is bounded, every process is killed in t.Cleanup, and no
// traffic leaves loopback (the metadata-address case runs inside a network
// namespace that has only a loopback interface). The package has no
// non-test code.
package faults
