package proctest

import (
	"net"
	"os"
	"strings"
)

// CleanEnv returns this process's environment without its RELAYCHAIN_*
// variables, followed by extra, so that a child node or client runs the
// same whatever the caller has set.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYCHAIN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// FreeAddr returns a loopback TCP address (127.0.0.1:PORT) on which
// nothing listens: it listens on a port the system picks and closes the
// listener again. Another program may take the port afterwards.
func FreeAddr() (*net.TCPAddr, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr), nil
}
