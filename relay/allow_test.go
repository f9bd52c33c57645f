package relay

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllow(t *testing.T) {
	t.Parallel()
	type probe struct {
		addr string
		want bool
	}
	for _, tc := range []struct {
		name    string
		entries []string
		probes  []probe
	}{
		{"default", nil, []probe{
			{"127.0.0.1:80", true},
			{"127.255.255.254:1", true},
			{"[::1]:7000", true},
			{"[::ffff:127.0.0.1]:7000", true}, // IPv4-mapped loopback
			{"10.0.0.1:80", false},
			{"10.255.255.1:80", false},
			{"0.0.0.0:80", false},
			{"[::]:80", false},
			{"[::2]:80", false},
			{"[::ffff:10.0.0.1]:80", false},
			{"169.254.169.254:80", false},
		}},
		{"empty strings", []string{"", " , ,"}, []probe{
			{"127.0.0.1:80", true},
			{"[::1]:80", true},
			{"192.168.0.1:80", false},
		}},
		{"cidr", []string{"10.0.0.0/8"}, []probe{
			{"10.1.2.3:80", true},
			{"10.255.255.255:1", true},
			{"[::ffff:10.1.2.3]:80", true},
			{"11.0.0.1:80", false},
			{"127.0.0.1:80", false}, // an explicit list replaces the default
		}},
		{"cidr not masked", []string{"192.168.1.77/24"}, []probe{
			{"192.168.1.1:80", true},
			{"192.168.2.1:80", false},
		}},
		{"ipv6 cidr", []string{"fd00::/8"}, []probe{
			{"[fd12::1]:80", true},
			{"[fe80::1]:80", false},
			{"10.0.0.1:80", false},
		}},
		{"ip", []string{"192.168.1.5"}, []probe{
			{"192.168.1.5:1", true},
			{"192.168.1.5:65535", true},
			{"192.168.1.6:1", false},
		}},
		{"ipv6 ip", []string{"::1"}, []probe{
			{"[::1]:80", true},
			{"127.0.0.1:80", false},
		}},
		{"ipv4-mapped ip", []string{"::ffff:10.0.0.1"}, []probe{
			{"10.0.0.1:80", true},
			{"[::ffff:10.0.0.1]:80", true},
			{"10.0.0.2:80", false},
		}},
		{"host:port", []string{"127.0.0.1:7000"}, []probe{
			{"127.0.0.1:7000", true},
			{"[::ffff:127.0.0.1]:7000", true},
			{"127.0.0.1:7001", false},
			{"127.0.0.2:7000", false},
		}},
		{"ipv6 host:port", []string{"[::1]:7000"}, []probe{
			{"[::1]:7000", true},
			{"[::1]:7001", false},
			{"127.0.0.1:7000", false},
		}},
		{"ipv4-mapped host:port", []string{"[::ffff:127.0.0.1]:7000"}, []probe{
			{"127.0.0.1:7000", true},
			{"127.0.0.1:7001", false},
		}},
		{"localhost:port", []string{"localhost:7000"}, []probe{
			{"127.0.0.1:7000", true},
			{"127.0.0.1:7001", false},
		}},
		{"comma-separated", []string{"10.0.0.0/8, 127.0.0.1:7000 ,192.168.1.5", "fd00::/8"}, []probe{
			{"10.9.9.9:1", true},
			{"127.0.0.1:7000", true},
			{"127.0.0.1:7001", false},
			{"192.168.1.5:22", true},
			{"[fd00::5]:22", true},
			{"172.16.0.1:80", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAllow(tc.entries)
			if err != nil {
				t.Fatalf("parseAllow(%q): %v", tc.entries, err)
			}
			for _, p := range tc.probes {
				ap := netip.MustParseAddrPort(p.addr)
				if got := a.allows(ap); got != p.want {
					t.Errorf("parseAllow(%q).allows(%s): got %v, want %v", tc.entries, p.addr, got, p.want)
				}
				err := a.control(context.Background(), "tcp", p.addr, nil)
				if p.want && err != nil || !p.want && !errors.Is(err, errForbidden) {
					t.Errorf("control(%s): got %v, want allowed=%v", p.addr, err, p.want)
				}
			}
		})
	}
}

// TestParseAllowMappedPrefix: a CIDR written in IPv4-mapped IPv6 form
// covers the IPv4 addresses it maps, as an IPv4-mapped IP entry does.
func TestParseAllowMappedPrefix(t *testing.T) {
	t.Parallel()
	a, err := parseAllow([]string{"::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.1.2.3:80", "[::ffff:10.1.2.3]:80"} {
		if !a.allows(netip.MustParseAddrPort(p)) {
			t.Errorf("parseAllow(::ffff:10.0.0.0/104).allows(%s): got false, want true", p)
		}
	}
	if a.allows(netip.MustParseAddrPort("11.0.0.1:80")) {
		t.Errorf("parseAllow(::ffff:10.0.0.0/104).allows(11.0.0.1:80): got true, want false")
	}
}

func TestParseAllowErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		entry string
		want  string
	}{
		{"bogus", "want a CIDR, an IP or host:port"},
		{"1.2.3.4/33", "want a CIDR, an IP or host:port"},
		{"10.0.0.0/8,nonsense", `"nonsense"`},
		{"127.0.0.1:0", "bad port"},
		{"127.0.0.1:65536", "bad port"},
		{"127.0.0.1:http", "bad port"},
		{"[::1]:", "bad port"},
	} {
		_, err := parseAllow([]string{tc.entry})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseAllow(%q): got %v, want an error saying %q", tc.entry, err, tc.want)
		}
	}
}

func TestAllowControlUnparsable(t *testing.T) {
	t.Parallel()
	a, err := parseAllow(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.control(context.Background(), "tcp", "localhost:80", nil); !errors.Is(err, errForbidden) {
		t.Errorf("control(localhost:80): got %v, want errForbidden (only resolved addresses pass)", err)
	}
}
