// Package pki creates a small certificate authority and the node and client
// certificates of a test chain, for relaychain's mutual TLS. It is meant
// for tests and for trying TLS out; production deployments bring their own
// PKI.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Pair is a certificate and its private key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA valid for validity.
func NewCA(name string, validity time.Duration) (*Pair, error) {
	tmpl := template(name, validity)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	return sign(tmpl, nil)
}

// Issue creates a certificate signed by ca, usable both to serve and to
// dial (a relay is both), valid for the given host names and IPs.
func (ca *Pair) Issue(name string, hosts []string, validity time.Duration) (*Pair, error) {
	tmpl := template(name, validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(tmpl, ca)
}

func template(name string, validity time.Duration) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"relaychain"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}
}

func sign(tmpl *x509.Certificate, parent *Pair) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return &Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		cert:    cert,
		key:     key,
	}, nil
}

// Write writes the pair to dir as NAME.pem and NAME-key.pem (key mode 0600).
func (p *Pair) Write(dir, name string) error {
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), p.CertPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), p.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// Chain is the files of a test chain, as written by WriteChain.
type Chain struct {
	CA                    string // ca.pem
	NodeCert, NodeKey     string // node.pem, node-key.pem
	ClientCert, ClientKey string // client.pem, client-key.pem
}

// WriteChain creates a CA, one node certificate (for every node of the
// chain, valid for hosts) and one client certificate, in dir.
func WriteChain(dir string, hosts []string, validity time.Duration) (Chain, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Chain{}, fmt.Errorf("make %s: %w", dir, err)
	}
	ca, err := NewCA("relaychain test CA", validity)
	if err != nil {
		return Chain{}, err
	}
	node, err := ca.Issue("relaychain node", hosts, validity)
	if err != nil {
		return Chain{}, err
	}
	client, err := ca.Issue("relaychain client", nil, validity)
	if err != nil {
		return Chain{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return Chain{}, fmt.Errorf("write CA: %w", err)
	}
	// The CA key is written too, so more certificates can be issued.
	if err := os.WriteFile(filepath.Join(dir, "ca-key.pem"), ca.KeyPEM, 0o600); err != nil {
		return Chain{}, fmt.Errorf("write CA key: %w", err)
	}
	if err := node.Write(dir, "node"); err != nil {
		return Chain{}, err
	}
	if err := client.Write(dir, "client"); err != nil {
		return Chain{}, err
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	return Chain{CA: j("ca.pem"), NodeCert: j("node.pem"), NodeKey: j("node-key.pem"),
		ClientCert: j("client.pem"), ClientKey: j("client-key.pem")}, nil
}
