package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// allowList is the set of next hops a node may dial. It is immutable after
// parseAllow and safe for concurrent use.
type allowList struct {
	prefixes []netip.Prefix   // any port
	hostPort []netip.AddrPort // one port
}

// errForbidden marks a dial refused by the allow list.
var errForbidden = errors.New("not in the allow list")

// parseAllow parses allow entries: CIDRs, IPs and host:port, each entry
// possibly comma-separated. Host names are resolved once, here. Nil or
// empty means loopback only.
func parseAllow(entries []string) (*allowList, error) {
	a := &allowList{}
	var items []string
	for _, e := range entries {
		for _, s := range strings.Split(e, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	}
	if len(items) == 0 {
		items = []string{"127.0.0.0/8", "::1/128"}
	}
	for _, s := range items {
		if err := a.add(s); err != nil {
			return nil, fmt.Errorf("allow entry %q: %w", s, err)
		}
	}
	return a, nil
}

func (a *allowList) add(s string) error {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Dialed addresses are matched unmapped, so store an
			// IPv4-mapped prefix as the IPv4 prefix it covers.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		return nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want a CIDR, an IP or host:port")
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("bad port %q", portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		a.hostPort = append(a.hostPort, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		return nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		a.hostPort = append(a.hostPort, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return nil
}

// allows reports whether the resolved address may be dialed.
func (a *allowList) allows(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	for _, hp := range a.hostPort {
		if hp.Addr() == ip && hp.Port() == ap.Port() {
			return true
		}
	}
	return false
}

// control is a net.Dialer.ControlContext that refuses, before connect(2),
// every resolved address the list does not allow. Because it runs on the
// resolved IP, a host name that resolves to a forbidden address is refused.
func (a *allowList) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, errForbidden)
	}
	if !a.allows(ap) {
		return errForbidden // net.Dialer adds "dial tcp ADDRESS"
	}
	return nil
}
