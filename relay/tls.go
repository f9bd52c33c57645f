package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/relaychain/relaychain/route"
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

// refusePlaintext peeks at the first bytes of an inbound link of a TLS
// node. A plaintext dialer opens with the preface magic (a TLS client with
// a handshake record, 0x16): it is answered in plaintext with status
// authentication failed, so that it can tell its user why, and refused.
// Otherwise conn is returned with the peeked bytes put back in front.
func refusePlaintext(conn net.Conn, deadline time.Time) (net.Conn, error) {
	conn.SetReadDeadline(deadline)
	var b [len(route.Magic)]byte
	k, err := io.ReadFull(conn, b[:])
	conn.SetReadDeadline(time.Time{})
	if err == nil && string(b[:]) == route.Magic {
		// Read the rest of its preface first: closing with unread bytes
		// would reset the connection and could lose the answer.
		var rest [route.PrefaceLen - len(route.Magic)]byte
		conn.SetReadDeadline(deadline)
		io.ReadFull(conn, rest[:])
		answerPreface(conn, route.StatusAuth, deadline)
		return nil, fmt.Errorf("link refused: %w: a plaintext peer", errAuth)
	}
	return &peekedConn{Conn: conn, r: io.MultiReader(bytes.NewReader(b[:k]), conn)}, nil
}

// peekedConn is a connection with bytes already read put back in front.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
