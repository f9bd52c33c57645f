package cliutil

import (
	"fmt"

	"github.com/relaychain/relaychain/relay"
)

// LoadTLS loads a mutual-TLS identity from the three --tls-* flag values:
// all empty means no TLS, and a partial set is an error.
func LoadTLS(cert, key, ca string) (*relay.TLS, error) {
	switch {
	case cert == "" && key == "" && ca == "":
		return nil, nil
	case cert == "" || key == "" || ca == "":
		return nil, fmt.Errorf("TLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	return relay.LoadTLS(cert, key, ca)
}
