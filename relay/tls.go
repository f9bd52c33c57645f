package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// errAuth marks a link refused by mutual TLS: a plaintext peer, a
// certificate from another CA, or none.
var errAuth = errors.New("TLS authentication failed")

// TLS is the mutual-TLS identity of a node or client: its own certificate,
// and the CA that every peer's certificate must be signed by. Membership is
// the identity: any certificate the CA signed is accepted, whatever host
// name it names, so one certificate can serve every node of a chain. TLS
// 1.3 only. A TLS is immutable and safe for concurrent use.
type TLS struct {
	cert tls.Certificate
	cas  *x509.CertPool
}

// LoadTLS reads a PEM certificate, its key, and the CA certificate(s).
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS CA: %w", err)
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load TLS CA %s: no PEM certificate in it", caFile)
	}
	return &TLS{cert: cert, cas: cas}, nil
}

// serverConfig is the acceptor's side: a client certificate from the CA
// is required.
func (t *TLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.cas,
	}
}

// clientConfig is the dialer's side: the peer's chain is verified against
// the CA (in VerifyConnection, since host names are not the identity).
func (t *TLS) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{t.cert},
		InsecureSkipVerify: true, // replaced by verifyPeer: CA membership, no host name
		VerifyConnection:   t.verifyPeer,
	}
}

func (t *TLS) verifyPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         t.cas,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// handshake runs a TLS handshake on conn under deadline and returns the
// TLS connection; on failure it closes conn.
func handshake(conn net.Conn, cfg *tls.Config, server bool, deadline time.Time) (net.Conn, error) {
	var tc *tls.Conn
	if server {
		tc = tls.Server(conn, cfg)
	} else {
		tc = tls.Client(conn, cfg)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if isTimeout(err) {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		return nil, fmt.Errorf("%w: %w", errAuth, err)
	}
	return tc, nil
}
