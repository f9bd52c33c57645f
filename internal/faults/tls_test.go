package faults

import (
	"regexp"
	"testing"
)

// TestTLSRefused runs a mutual-TLS chain (relay0, terminal; certificates of
// one CA, made by mkcerts) and dials it with the wrong identity: the link
// is refused and the error says authentication failed (or refused), naming
// the hop. protocol.md, section 1: "A plaintext peer or a certificate from
// another CA fails the link (status authentication failed, 14, when a
// relay reports it)".
func TestTLSRefused(t *testing.T) {
	t.Parallel()
	ca, other := makeCerts(t), makeCerts(t)
	c := newChain(t, chainSpec{relays: 1, tls: ca})
	tp := toxi(t)
	// Relays of the wrong kind in front of the chain, each with its proxy:
	// one with a certificate of the other CA, one without TLS.
	wrongCA := startNode(t, "relay-other-ca", nodeSpec{tls: other})
	plain := startNode(t, "relay-plain", nodeSpec{})
	wrongCAHop, plainHop := tp.newProxy(t, wrongCA.addr).Listen, tp.newProxy(t, plain.addr).Listen

	first := c.route[0]
	for _, tc := range []struct {
		name  string
		flags []string // the client's TLS flags
		route []string
		hop   string // the refused hop, as "hop N (ADDR)"
	}{
		{name: "client-other-ca", flags: other.clientFlags(), route: c.route, hop: "hop 0 (" + first + ")"},
		{name: "client-cert-other-ca", flags: []string{"--tls-cert", other.clientCert, "--tls-key", other.clientKey, "--tls-ca", ca.ca},
			route: c.route, hop: "hop 0 (" + first + ")"},
		{name: "client-no-cert", flags: nil, route: c.route, hop: "hop 0 (" + first + ")"},
		{name: "relay-other-ca", flags: other.clientFlags(), route: append([]string{wrongCAHop}, c.route...), hop: "hop 1 (" + first + ")"},
		{name: "relay-plain", flags: nil, route: append([]string{plainHop}, c.route...), hop: "hop 1 (" + first + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range transports {
				var args []string
				for _, h := range tc.route {
					args = append(args, "--hop", h)
				}
				dir := t.TempDir()
				r := runClient(t, append(append(args, tc.flags...), "--transport", tr, "get", "-o", dir, checkFile.name)...)
				t.Logf("%s: %s", tr, r.stderr.String())
				r.failed(t, regexp.QuoteMeta(tc.hop)+`: (authentication failed|refused)`)
				checkOutDir(t, dir, nil, false)
			}
		})
	}
	if err := wrongCA.alive(); err != nil {
		t.Error(err)
	}
	if err := plain.alive(); err != nil {
		t.Error(err)
	}
	c.after(t)
}
