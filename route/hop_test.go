package route

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHop(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"127.0.0.1:7000", "127.0.0.1:7000"},
		{"127.0.0.1 7000", "127.0.0.1:7000"},
		{"127.0.0.1\t7000", "127.0.0.1:7000"},
		{"  127.0.0.1 \t 7000\t", "127.0.0.1:7000"},
		{" localhost:1 ", "localhost:1"},
		{"localhost:65535", "localhost:65535"},
		{"Relay-1.example.com:443", "Relay-1.example.com:443"},
		{"example.com.:443", "example.com.:443"},
		{"under_score.lan:80", "under_score.lan:80"},
		{"a1:80", "a1:80"},
		{"1a:80", "1a:80"},
		{"localhost:007000", "localhost:7000"},
		{"[::1]:7000", "[::1]:7000"},
		{"[::1] 7000", "[::1]:7000"},
		{"::1 7000", "[::1]:7000"},
		{"[0:0:0:0:0:0:0:1]:7000", "[::1]:7000"},
		{"[2001:DB8::1]:80", "[2001:db8::1]:80"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth0]:80"},
		{"fe80::1%eth0 80", "[fe80::1%eth0]:80"},
		{"[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80"},
	}
	for _, tt := range tests {
		got, err := ParseHop(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseHop(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			continue
		}
		if again, err := ParseHop(got); err != nil || again != got {
			t.Errorf("ParseHop(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
}

func TestParseHopErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty hop"},
		{" \t ", "empty hop"},
		{"localhost", `missing port in "localhost"`},
		{"localhost:", `missing port in "localhost:"`},
		{":7000", `missing host in ":7000"`},
		{"report.pdf", `missing port in "report.pdf"`},
		{"host:0", `bad port "0": want 1-65535`},
		{"host:00", `bad port "00": want 1-65535`},
		{"host:65536", `bad port "65536": want 1-65535`},
		{"host:99999999999999999999", `bad port "99999999999999999999": want 1-65535`},
		{"host:70x0", `bad port "70x0"`},
		{"host:http", `bad port "http"`},
		{"host:-1", `bad port "-1"`},
		{"host:+80", `bad port "+80"`},
		{"host 0", `bad port "0": want 1-65535`},
		{"host:80#c", `bad port "80#c"`},
		{"::1:7000", `bad hop "::1:7000": an IPv6 address must be in brackets`},
		{"2001:db8::1:80", `an IPv6 address must be in brackets`},
		{"a:b:80", `bad hop "a:b:80": too many colons`},
		{"[::1]", `missing port in "[::1]"`},
		{"[::1]:", `missing port in "[::1]:"`},
		{"[::1]7000", `bad hop "[::1]7000": want [IPv6]:PORT`},
		{"[::1:7000", `missing ']'`},
		{"[localhost]:80", `brackets are only for IPv6 addresses`},
		{"[localhost] 80", `brackets are only for IPv6 addresses`},
		{"[1.2.3.4]:80", `brackets are only for IPv6 addresses`},
		{"[::g]:80", `bad IPv6 address "::g"`},
		{"[fe80::1%]:80", `bad IPv6 address`},
		{"[fe80::1%a/b]:80", `bad IPv6 zone`},
		{"1.2.3.4%eth0:80", `bad IPv6 address "1.2.3.4%eth0"`},
		{"host name 80", `bad hop "host name 80": want HOST:PORT or HOST PORT`},
		{"host: 80", `bad IPv6 address "host:"`},
		{"bad_host!:80", `bad host "bad_host!"`},
		{"a..b:80", `bad host "a..b"`},
		{".a:80", `bad host ".a"`},
		{".:80", `bad host "."`},
		{"héllo:80", `bad host "héllo"`},
		{"host/x:80", `bad host "host/x"`},
		{strings.Repeat("a", 64) + ":80", `bad host`},
		{strings.Repeat("a.", 127) + "ab:80", `bad host`},
		{"1.2.3.256:80", `bad IPv4 address "1.2.3.256"`},
		{"010.0.0.1:80", `bad IPv4 address "010.0.0.1"`},
		{"1.2.3:80", `bad IPv4 address "1.2.3"`},
		{"12345:80", `bad IPv4 address "12345"`},
		{"host\x00:80", `bad host "host\x00"`},
		{strings.Repeat("x", 200) + ":80", `bad host "` + strings.Repeat("x", 80) + `"...`},
	}
	for _, tt := range tests {
		got, err := ParseHop(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseHop(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			continue
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseHop(%q) error %v does not match ErrSyntax", tt.in, err)
		}
	}
}

func TestParseHopLongestFitsMaxHopLen(t *testing.T) {
	for _, in := range []string{
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + ".:65535",
		"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%" + strings.Repeat("z", hopMaxZone) + "]:65535",
		"[::ffff:255.255.255.255%" + strings.Repeat("z", hopMaxZone) + "]:65535",
	} {
		got, err := ParseHop(in)
		if err != nil {
			t.Fatalf("ParseHop(%q): %v", in, err)
		}
		if len(got) > MaxHopLen {
			t.Errorf("ParseHop(%q) = %d bytes; want at most MaxHopLen (%d)", in, len(got), MaxHopLen)
		}
	}
}

func TestRouteString(t *testing.T) {
	tests := []struct {
		r    Route
		want string
	}{
		{nil, ""},
		{Route{"a:1"}, "a:1"},
		{Route{"a:1", "[::1]:2", "c:3"}, "a:1 -> [::1]:2 -> c:3"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("Route%q.String() = %q; want %q", []string(tt.r), got, tt.want)
		}
	}
}
