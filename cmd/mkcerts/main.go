// Command mkcerts creates a CA plus node and client certificates for a
// relaychain test chain with mutual TLS:
//
//	go run ./cmd/mkcerts -dir certs
//
// writes certs/ca.pem, certs/node.pem, certs/node-key.pem,
// certs/client.pem and certs/client-key.pem (and the CA key).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/relaychain/relaychain/internal/pki"
)

func main() {
	dir := flag.String("dir", "certs", "write the files into `DIR`")
	hosts := flag.String("hosts", "127.0.0.1,::1,localhost", "comma-separated names and IPs of the nodes")
	validity := flag.Duration("validity", 365*24*time.Hour, "how long the certificates are valid")
	flag.Parse()
	c, err := pki.WriteChain(*dir, strings.Split(*hosts, ","), *validity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkcerts:", err)
		os.Exit(1)
	}
	fmt.Printf("CA:     %s\nnode:   %s %s\nclient: %s %s\n", c.CA, c.NodeCert, c.NodeKey, c.ClientCert, c.ClientKey)
	fmt.Printf("node:   node --tls-cert %s --tls-key %s --tls-ca %s ...\n", c.NodeCert, c.NodeKey, c.CA)
	fmt.Printf("client: client --tls-cert %s --tls-key %s --tls-ca %s ...\n", c.ClientCert, c.ClientKey, c.CA)
}
