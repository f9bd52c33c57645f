package route

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse checks that Parse never panics, that every error it returns
// matches ErrSyntax or ErrFileTooLarge, and that a parsed file has at least
// one hop, each in the form ParseHop returns, and a name that is not a hop.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"a:1",
		"proxy.pdf\n127.0.0.1 9100\n127.0.0.1 9101\n127.0.0.1 9099\n",
		"# c\r\n[::1]:7000 # t\r\n\r\nlocalhost 7001",
		"\uFEFFreport.pdf # name\n::1 7000\n",
		"a:1\nb:70x0\n",
		"::1:7000\n",
		"foo 80\n",
		"notes#1.txt\n[fe80::1%eth0]:80\n",
	} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrFileTooLarge) {
				t.Fatalf("Parse(%q) error %q matches neither ErrSyntax nor ErrFileTooLarge", data, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("Parse(%q) error %q does not name its source", data, err)
			}
			return
		}
		if len(file.Route) == 0 {
			t.Fatalf("Parse(%q) = %+v with no hops and no error", data, file)
		}
		for _, hop := range file.Route {
			if again, err := ParseHop(hop); err != nil || again != hop {
				t.Fatalf("Parse(%q): hop %q re-parses to %q, %v", data, hop, again, err)
			}
		}
		if n := file.Name; n != "" {
			if n != strings.TrimSpace(n) || strings.ContainsFunc(n, unicode.IsControl) || strings.Contains(n, ":") {
				t.Fatalf("Parse(%q): bad name %q", data, n)
			}
			if _, err := ParseHop(n); err == nil {
				t.Fatalf("Parse(%q): name %q is a hop", data, n)
			}
			if len(n) > MaxName {
				t.Fatalf("Parse(%q): name of %d bytes is over MaxName", data, len(n))
			}
		}
	})
}

// FuzzParseHop checks that ParseHop never panics, that its errors match
// ErrSyntax, and that a hop it returns is a fixed point in net.JoinHostPort
// form with a port of 1-65535 that fits MaxHopLen and parses alone as a
// route file.
func FuzzParseHop(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:7000", "127.0.0.1 7000", "[::1]:7000", "::1 7000", "::1:7000",
		"localhost:0", "host:65536", "host:70x0", "[fe80::1%eth0]:80", "example.com.:443",
		"[::ffff:1.2.3.4]:80", "1.2.3.256:80", " a\t1 ", "[a]:1", "a:007",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hop, err := ParseHop(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseHop(%q) error %q does not match ErrSyntax", s, err)
			}
			return
		}
		if again, err := ParseHop(hop); err != nil || again != hop {
			t.Fatalf("ParseHop(%q) = %q, which re-parses to %q, %v", s, hop, again, err)
		}
		host, port, err := net.SplitHostPort(hop)
		if err != nil || net.JoinHostPort(host, port) != hop {
			t.Fatalf("ParseHop(%q) = %q, not in net.JoinHostPort form (%v)", s, hop, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("ParseHop(%q) = %q with bad port", s, hop)
		}
		if len(hop) > MaxHopLen {
			t.Fatalf("ParseHop(%q) = %q of %d bytes, over MaxHopLen", s, hop, len(hop))
		}
		if !strings.ContainsAny(s, "\n#") && len(s) <= fileMaxLineBytes {
			file, err := Parse(strings.NewReader(s), "fuzz")
			if err != nil || len(file.Route) != 1 || file.Route[0] != hop || file.Name != "" {
				t.Fatalf("ParseHop(%q) = %q, but Parse gives %+v, %v", s, hop, file, err)
			}
		}
	})
}
