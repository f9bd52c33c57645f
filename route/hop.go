package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Route is an ordered list of hops, each a "host:port" address as produced by
// net.JoinHostPort; the last hop is the file server.
type Route []string

// String returns the hops joined by " -> ", as in "a:1 -> b:2".
func (r Route) String() string { return strings.Join(r, " -> ") }

// ErrSyntax is matched, with errors.Is, by every error that reports malformed
// route input: a bad hop from ParseHop or a bad line in a route file.
var ErrSyntax = errors.New("route syntax error")

// Limits of one hop. A hop that passes them fits MaxHopLen.
const (
	hopMaxHostName = 253 // a DNS name, without its trailing dot
	hopMaxLabel    = 63  // one label of a DNS name
	hopMaxZone     = 64  // an IPv6 zone ("eth0" in "fe80::1%eth0")
	errQuoteMax    = 80  // longest input quoted in an error message
)

// inputError is a message about bad route input. It matches its kind
// (ErrSyntax or ErrFileTooLarge) with errors.Is.
type inputError struct {
	kind error
	msg  string
}

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == e.kind }

func syntaxErrorf(format string, args ...any) error {
	return &inputError{kind: ErrSyntax, msg: fmt.Sprintf(format, args...)}
}

// quote quotes s for an error message, cutting it short when it is long.
func quote(s string) string {
	if len(s) > errQuoteMax {
		return strconv.Quote(s[:errQuoteMax]) + "..."
	}
	return strconv.Quote(s)
}

// ParseHop parses one hop and returns it in net.JoinHostPort form. A hop is
// written as "HOST:PORT", "[IPv6]:PORT" or "HOST PORT" (host and port
// separated by white space); surrounding white space is ignored.
//
// HOST is a host name (ASCII letters, digits, '-' and '_' in dot-separated
// labels, with an optional trailing dot), an IPv4 address, or an IPv6 address
// with an optional zone. In the colon form an IPv6 address must be in
// brackets: "::1:7000" is itself an IPv6 address, so it is refused rather
// than guessed at. The space form also takes "::1 7000". IP addresses are
// returned in canonical form ("[::1]:7000"), host names as written.
//
// PORT is a decimal number from 1 to 65535; service names such as "http" are
// refused, leading zeros are dropped.
//
// ParseHop(h) returns h for every h it returns. Errors match ErrSyntax.
func ParseHop(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", syntaxErrorf("empty hop")
	}
	host, port, err := splitHop(s)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", syntaxErrorf("missing host in %s", quote(s))
	}
	if port == "" {
		return "", syntaxErrorf("missing port in %s", quote(s))
	}
	if host, err = parseHost(host); err != nil {
		return "", err
	}
	if port, err = parsePort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// splitHop splits a trimmed, non-empty hop into host and port, removing the
// brackets around an IPv6 address. It does not check either part.
func splitHop(s string) (host, port string, err error) {
	if f := strings.Fields(s); len(f) > 1 {
		if len(f) > 2 {
			return "", "", syntaxErrorf("bad hop %s: want HOST:PORT or HOST PORT", quote(s))
		}
		host, port = f[0], f[1]
		if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
			if !strings.Contains(host, ":") {
				return "", "", syntaxErrorf("bad hop %s: brackets are only for IPv6 addresses", quote(s))
			}
		}
		return host, port, nil
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", syntaxErrorf("bad hop %s: missing ']'", quote(s))
		}
		host, rest := s[1:end], s[end+1:]
		switch {
		case !strings.Contains(host, ":"):
			return "", "", syntaxErrorf("bad hop %s: brackets are only for IPv6 addresses", quote(s))
		case rest == "":
			return "", "", syntaxErrorf("missing port in %s", quote(s))
		case rest[0] != ':':
			return "", "", syntaxErrorf("bad hop %s: want [IPv6]:PORT", quote(s))
		}
		return host, rest[1:], nil
	}
	i := strings.LastIndexByte(s, ':')
	switch {
	case i < 0:
		return "", "", syntaxErrorf("missing port in %s", quote(s))
	case strings.IndexByte(s, ':') != i:
		if isIPv6(s) || isIPv6(s[:i]) {
			return "", "", syntaxErrorf("bad hop %s: an IPv6 address must be in brackets, as in \"[::1]:7000\"", quote(s))
		}
		return "", "", syntaxErrorf("bad hop %s: too many colons", quote(s))
	}
	return s[:i], s[i+1:], nil
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// parseHost checks a host and returns its canonical form.
func parseHost(h string) (string, error) {
	if strings.ContainsAny(h, ":%") {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return "", syntaxErrorf("bad IPv6 address %s", quote(h))
		}
		if z := a.Zone(); z != "" && !validZone(z) {
			return "", syntaxErrorf("bad IPv6 zone in %s", quote(h))
		}
		return a.String(), nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil // IPv4
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > hopMaxHostName {
		return "", syntaxErrorf("bad host %s", quote(h))
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > hopMaxLabel || !allBytes(l, isNameByte) {
			return "", syntaxErrorf("bad host %s", quote(h))
		}
	}
	if allBytes(labels[len(labels)-1], isDigit) {
		// "1.2.3.256", "010.0.0.1", "1.2.3": no host name ends in a numeric label.
		return "", syntaxErrorf("bad IPv4 address %s", quote(h))
	}
	return h, nil
}

// parsePort checks a decimal port and returns it without leading zeros.
func parsePort(p string) (string, error) {
	if !allBytes(p, isDigit) {
		return "", syntaxErrorf("bad port %s", quote(p))
	}
	n := 0
	if t := strings.TrimLeft(p, "0"); len(t) <= 5 {
		n, _ = strconv.Atoi(t) // at most 5 digits; "" (all zeros) is 0
	}
	if n < 1 || n > 65535 {
		return "", syntaxErrorf("bad port %s: want 1-65535", quote(p))
	}
	return strconv.Itoa(n), nil
}

func validZone(z string) bool {
	return len(z) <= hopMaxZone && allBytes(z, func(c byte) bool { return isNameByte(c) || c == '.' })
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isNameByte(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_'
}
