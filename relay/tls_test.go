package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/pki"
	"github.com/relaychain/relaychain/route"
)

// tlsIDs are mutual-TLS identities for tests. node and client come from
// one CA (as pki.WriteChain writes them); the others mix in a second CA.
type tlsIDs struct {
	node, client *TLS
	// foreignClient holds a certificate of the other CA and trusts ours.
	foreignClient *TLS
	// distrustingClient holds our CA's certificate and trusts only the
	// other CA.
	distrustingClient *TLS
	// foreignNode is a node of the other CA that trusts only it.
	foreignNode *TLS
	// distrustingNode holds our CA's node certificate and trusts only the
	// other CA.
	distrustingNode *TLS
}

// newTLSIDs writes the certificates of both CAs into a temporary
// directory and loads them with LoadTLS.
func newTLSIDs(t testing.TB) *tlsIDs {
	t.Helper()
	dir := t.TempDir()
	ch, err := pki.WriteChain(filepath.Join(dir, "ours"), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatalf("WriteChain: %v", err)
	}
	other, err := pki.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	otherCA := filepath.Join(dir, "other-ca.pem")
	if err := os.WriteFile(otherCA, other.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"other-node", "other-client"} {
		p, err := other.Issue(name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatalf("Issue %s: %v", name, err)
		}
		if err := p.Write(dir, name); err != nil {
			t.Fatalf("Write %s: %v", name, err)
		}
	}
	load := func(cert, key, ca string) *TLS {
		t.Helper()
		id, err := LoadTLS(cert, key, ca)
		if err != nil {
			t.Fatalf("LoadTLS(%s, %s, %s): %v", cert, key, ca, err)
		}
		return id
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	return &tlsIDs{
		node:              load(ch.NodeCert, ch.NodeKey, ch.CA),
		client:            load(ch.ClientCert, ch.ClientKey, ch.CA),
		foreignClient:     load(in("other-client.pem"), in("other-client-key.pem"), ch.CA),
		distrustingClient: load(ch.ClientCert, ch.ClientKey, otherCA),
		foreignNode:       load(in("other-node.pem"), in("other-node-key.pem"), otherCA),
		distrustingNode:   load(ch.NodeCert, ch.NodeKey, otherCA),
	}
}

// tlsTerminal is the default terminal configuration with TLS.
func tlsTerminal(root string, id *TLS) Config {
	cfg := terminalConfig(root)
	cfg.TLS = id
	return cfg
}

// TestTLSChainCarriesFiles sends files through 3 relays and a terminal
// that all require mutual TLS, over every transport.
func TestTLSChainCarriesFiles(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	ids := newTLSIDs(t)
	term := startNode(t, tlsTerminal(root, ids.node))
	rt := append(relayRoute(t, 3, Config{TLS: ids.node}), term.Addr)
	var want []testFile
	for _, size := range append(append(append([]int64{}, matrixSizes...), mixedSizes...), mediumSize) {
		want = append(want, files[sizeName(size)])
	}
	for _, tp := range append(transports, struct {
		name string
		tr   Transport
	}{"auto", TransportAuto}) {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr, TLS: ids.client})
			ctx := testCtx(t, 2*time.Minute)
			for _, f := range want {
				if tp.tr == TransportAuto {
					checkDownload(t, ctx, c, f)
				} else {
					checkGet(t, ctx, c, f)
				}
			}
		})
	}
}

// TestTLSRefusals checks that every TLS mismatch fails the link, on the
// first hop (found by the client) and between relays (reported by the
// relay), naming the hop, and that the nodes go on serving.
func TestTLSRefusals(t *testing.T) {
	t.Parallel()
	ids := newTLSIDs(t)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			// A good TLS chain, and nodes that differ from it.
			good := startNode(t, tlsTerminal("testdata/root", ids.node))
			relays := relayRoute(t, 2, Config{TLS: ids.node})
			plainTerm := startNode(t, terminalConfig("testdata/root"))
			plainRelays := relayRoute(t, 2, Config{})
			foreign := startNode(t, tlsTerminal("testdata/root", ids.foreignNode))
			distrusting := startNode(t, tlsTerminal("testdata/root", ids.distrustingNode))
			goodClient := newClient(t, ClientConfig{Route: append(relays[:2:2], good.Addr), Transport: tp.tr, TLS: ids.client})

			for _, tc := range []struct {
				name   string
				rt     route.Route
				id     *TLS // the client's
				errs   []error
				hop    int
				inMsgs []string
			}{
				// A plaintext peer of a TLS node is told so (status 14),
				// or, by older nodes, hung up on: either way the error
				// mentions TLS.
				{"plaintext-client", route.Route{relays[0], relays[1], good.Addr}, nil,
					[]error{ErrAuth, ErrNotNode}, 0, []string{"TLS"}},
				{"plaintext-first-hop", route.Route{plainRelays[0], relays[1], good.Addr}, ids.client,
					[]error{ErrAuth}, 0, []string{"authentication failed"}},
				{"client-cert-from-another-CA", route.Route{relays[0], relays[1], good.Addr}, ids.foreignClient,
					[]error{ErrAuth}, 0, []string{"authentication failed"}},
				{"client-distrusts-node", route.Route{relays[0], relays[1], good.Addr}, ids.distrustingClient,
					[]error{ErrAuth}, 0, []string{"authentication failed"}},
				{"next-hop-cert-from-another-CA", route.Route{relays[0], relays[1], foreign.Addr}, ids.client,
					[]error{ErrAuth}, 2, []string{"authentication failed"}},
				{"next-hop-distrusts-relay", route.Route{relays[0], relays[1], distrusting.Addr}, ids.client,
					[]error{ErrAuth}, 2, []string{"authentication failed", "refused this side's certificate"}},
				{"plaintext-next-hop", route.Route{relays[0], relays[1], plainTerm.Addr}, ids.client,
					[]error{ErrAuth}, 2, []string{"authentication failed"}},
				{"plaintext-relay-to-TLS-hop", route.Route{plainRelays[0], plainRelays[1], good.Addr}, nil,
					[]error{ErrAuth, ErrNotNode}, 2, []string{"TLS"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := newClient(t, ClientConfig{Route: tc.rt, Transport: tp.tr, TLS: tc.id, DialTimeout: 5 * time.Second})
					start := time.Now()
					err := getErr(t, c, "hello.txt")
					if d := time.Since(start); d > 4*time.Second {
						t.Errorf("refusal took %v, want it at once, not after a timeout", d)
					}
					sentinel := tc.errs[0]
					for _, e := range tc.errs {
						if errors.Is(err, e) {
							sentinel = e
							break
						}
					}
					t.Logf("%v", err)
					wantHopError(t, err, sentinel, tc.hop, tc.rt[tc.hop], tc.inMsgs...)
				})
			}
			// Nothing above hurt the nodes.
			if _, _, _, err := getSum(testCtx(t, 30*time.Second), goodClient, "hello.txt"); err != nil {
				t.Errorf("Get through the good chain after the refusals: %v", err)
			}
		})
	}
}

// TestTLSBadClientCert speaks TLS to a node by hand: without a client
// certificate, with one from another CA presented whatever the node asks
// for (Go's client would not send it), and with TLS 1.2. The node refuses
// each before it answers the preface.
func TestTLSBadClientCert(t *testing.T) {
	t.Parallel()
	ids := newTLSIDs(t)
	term := startNode(t, tlsTerminal("testdata/root", ids.node))
	good := newClient(t, ClientConfig{Route: route.Route{term.Addr}, TLS: ids.client})

	refused := func(t *testing.T, cfg *tls.Config, want string) {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(&d, "tcp", term.Addr, cfg)
		if err != nil {
			// TLS 1.3: the client's side of the handshake normally ends
			// before the node has checked the certificate, and the
			// refusal comes with the first read below.
			t.Logf("handshake: %v", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(dialerMux))
		var in [prefaceSize]byte
		k, err := io.ReadFull(c, in[:])
		if err == nil || isTimeout(err) {
			t.Fatalf("got preface %q, err %v; want the link refused", in[:k], err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refused with %q, want it to say %q", err, want)
		}
	}
	t.Run("no-certificate", func(t *testing.T) {
		refused(t, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}, "certificate required")
	})
	t.Run("certificate-from-another-CA", func(t *testing.T) {
		cfg := ids.foreignClient.clientConfig()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &ids.foreignClient.cert, nil
		}
		refused(t, cfg, "unknown certificate authority")
	})
	t.Run("TLS-1.2", func(t *testing.T) {
		cfg := ids.client.clientConfig()
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(&d, "tcp", term.Addr, cfg)
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.2 handshake succeeded, want only TLS 1.3")
		}
	})
	if _, _, _, err := getSum(testCtx(t, 30*time.Second), good, "hello.txt"); err != nil {
		t.Errorf("Get with a good certificate afterwards: %v", err)
	}
}

// TestTLSHandshakeDeadline connects to a TLS node and stalls: before the
// handshake, half way through it, and after it without a preface. The
// node hangs up after its header timeout each time, and serves others
// meanwhile.
func TestTLSHandshakeDeadline(t *testing.T) {
	t.Parallel()
	ids := newTLSIDs(t)
	cfg := tlsTerminal("testdata/root", ids.node)
	cfg.HeaderTimeout = testHeaderTimeout
	term := startNode(t, cfg)
	good := newClient(t, ClientConfig{Route: route.Route{term.Addr}, TLS: ids.client})
	stillServes := func(t *testing.T) {
		t.Helper()
		if _, n, _, err := getSum(testCtx(t, 30*time.Second), good, "hello.txt"); err != nil || n != int64(len("hello, relaychain\n")) {
			t.Fatalf("Get meanwhile: got %d bytes, %v; want the file", n, err)
		}
	}
	// hangsUp waits for the node to close c, and returns how long it took.
	hangsUp := func(t *testing.T, c net.Conn, start time.Time) time.Duration {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		d := time.Since(start)
		if isTimeout(err) {
			t.Fatalf("the node did not hang up within %v (got %q)", d, got)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		// stall connects and stalls, returning the connection and when
		// the node's clock started.
		stall func(t *testing.T) (net.Conn, time.Time)
		max   time.Duration // the deadlines that apply, before slack
	}{
		{"silent", func(t *testing.T) (net.Conn, time.Time) {
			c, err := net.DialTimeout("tcp", term.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return c, time.Now()
		}, testHeaderTimeout},
		{"half-a-ClientHello", func(t *testing.T) (net.Conn, time.Time) {
			c, err := net.DialTimeout("tcp", term.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			// A handshake record header announcing 512 bytes, and 10 of them.
			c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0})
			return c, start
		}, testHeaderTimeout},
		{"handshake-then-silent", func(t *testing.T) (net.Conn, time.Time) {
			start := time.Now()
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(&d, "tcp", term.Addr, ids.client.clientConfig())
			if err != nil {
				t.Fatal(err)
			}
			// The handshake and then the preface each have the header
			// timeout.
			return c, start
		}, 2 * testHeaderTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, start := tc.stall(t)
			defer c.Close()
			stillServes(t)
			d := hangsUp(t, c, start)
			if d < testHeaderTimeout*3/4 || d > tc.max+2*time.Second {
				t.Errorf("hung up after %v, want after the %v header timeout (at most %v + 2s)", d, testHeaderTimeout, tc.max)
			}
			stillServes(t)
		})
	}
}
