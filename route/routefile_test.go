package route

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want File
	}{
		{"host:port", "a.example:7001\nb.example:7002\n", File{Route: Route{"a.example:7001", "b.example:7002"}}},
		{"host port", "127.0.0.1 7001\n127.0.0.1 7000\n", File{Route: Route{"127.0.0.1:7001", "127.0.0.1:7000"}}},
		{"one hop", "localhost:7000", File{Route: Route{"localhost:7000"}}},
		{"ipv6", "[::1]:7001\n[2001:db8::2]:7000\n", File{Route: Route{"[::1]:7001", "[2001:db8::2]:7000"}}},
		{"ipv6 space form", "::1 7001\n", File{Route: Route{"[::1]:7001"}}},
		{"hostnames", "relay-1.lan:1\nFILES.example.com.:2\n", File{Route: Route{"relay-1.lan:1", "FILES.example.com.:2"}}},
		{"whole-line comments", "# route\n#a:1\n  # indented\nb:2\n# end", File{Route: Route{"b:2"}}},
		{"trailing comments", "a:1 # relay\nb 2\t#server\n", File{Route: Route{"a:1", "b:2"}}},
		{"blank lines", "\n\na:1\n\n  \n\t\nb:2\n\n", File{Route: Route{"a:1", "b:2"}}},
		{"crlf", "# c\r\na:1\r\n\r\nb 2 # s\r\n", File{Route: Route{"a:1", "b:2"}}},
		{"crlf no final newline", "a:1\r\nb:2", File{Route: Route{"a:1", "b:2"}}},
		{"no final newline", "a:1\nb:2", File{Route: Route{"a:1", "b:2"}}},
		{"extra final newlines", "a:1\nb:2\n\n\n", File{Route: Route{"a:1", "b:2"}}},
		{"tabs and spaces", "\t a:1 \t\n\tb\t\t2\t\n", File{Route: Route{"a:1", "b:2"}}},
		{"byte order mark", "\uFEFFa:1\n", File{Route: Route{"a:1"}}},
		{"byte order mark and name", "\uFEFFproxy.pdf\na:1\n", File{Route: Route{"a:1"}, Name: "proxy.pdf"}},
		{"canonical forms", "[0::1]:07000\n", File{Route: Route{"[::1]:7000"}}},
		{
			"classic input file",
			"proxy.pdf\n127.0.0.1 9100\n127.0.0.1 9101\n127.0.0.1 9099\n",
			File{Route: Route{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9099"}, Name: "proxy.pdf"},
		},
		{"name after comments", "# fetch\n\n  report.pdf  # the file\na:1\n", File{Route: Route{"a:1"}, Name: "report.pdf"}},
		{"name with spaces", "my report.pdf\na:1\n", File{Route: Route{"a:1"}, Name: "my report.pdf"}},
		{"name with hash", "notes#1.txt\na:1\n", File{Route: Route{"a:1"}, Name: "notes#1.txt"}},
		{"name with path", "docs/a.txt\na:1\n", File{Route: Route{"a:1"}, Name: "docs/a.txt"}},
		{"hop wins over name", "foo 80\na:1\n", File{Route: Route{"foo:80", "a:1"}}},
		{"max line length", strings.Repeat(" ", fileMaxLineBytes-3) + "a:1\n", File{Route: Route{"a:1"}}},
		{"max line length crlf", strings.Repeat(" ", fileMaxLineBytes-3) + "a:1\r\n", File{Route: Route{"a:1"}}},
		{"max lines", strings.Repeat("\n", fileMaxLines-1) + "a:1", File{Route: Route{"a:1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "t.txt")
			if err != nil {
				t.Fatalf("Parse(%q): got error %v, want %+v", tt.in, err, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q):\ngot  %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // the whole message
		kind    error
	}{
		{"empty file", "", "t.txt: no hops in route", ErrSyntax},
		{"only comments", "# nothing\n\n  # here\n", "t.txt: no hops in route", ErrSyntax},
		{"only a name", "proxy.pdf\n", "t.txt: no hops in route", ErrSyntax},
		{"bad port letters", "a:1\n# c\nb:70x0\n", `t.txt:3: bad port "70x0"`, ErrSyntax},
		{"port 0", "a:0\n", `t.txt:1: bad port "0": want 1-65535`, ErrSyntax},
		{"port 65536", "a:1\na 65536\n", `t.txt:2: bad port "65536": want 1-65535`, ErrSyntax},
		{"port out of range, two words", "a 99999\nb:1\n", `t.txt:1: bad port "99999": want 1-65535`, ErrSyntax},
		{"missing port", "a:1\nlocalhost\n", `t.txt:2: missing port in "localhost" (only the first line that is not blank or a comment may name a file)`, ErrSyntax},
		{"missing port after colon", "a:\nb:1\n", `t.txt:1: missing port in "a:"`, ErrSyntax},
		{"name not first", "a:1\nproxy.pdf\nb:2\n", `t.txt:2: missing port in "proxy.pdf" (only the first line that is not blank or a comment may name a file)`, ErrSyntax},
		{"two names", "a.pdf\nb.pdf\nc:1\n", `t.txt:2: missing port in "b.pdf" (only`, ErrSyntax},
		{"bad first hop is not a name", "127.0.0.1:70x0\n127.0.0.1:7000\n", `t.txt:1: bad port "70x0"`, ErrSyntax},
		{"unbracketed ipv6", "::1:7000\n", `t.txt:1: bad hop "::1:7000": an IPv6 address must be in brackets, as in "[::1]:7000"`, ErrSyntax},
		{"hash without space", "a:1#c\n", `t.txt:1: bad port "1#c"`, ErrSyntax},
		{"three words", "a:1\nb 1 2\n", `t.txt:2: bad hop "b 1 2": want HOST:PORT or HOST PORT (only`, ErrSyntax},
		{"control character in name", "a\x01b\nc:1\n", `t.txt:1: bad file name "a\x01b": control character`, ErrSyntax},
		{"name not utf-8", "a\xffb\nc:1\n", `t.txt:1: bad file name "a\xffb": not UTF-8`, ErrSyntax},
		{"line too long", "a:1\n" + strings.Repeat(" ", fileMaxLineBytes-2) + "b:1\n", "t.txt:2: line longer than 4096 bytes", ErrFileTooLarge},
		{"line too long in comment", "# " + strings.Repeat("x", fileMaxLineBytes) + "\na:1\n", "t.txt:1: line longer than 4096 bytes", ErrFileTooLarge},
		{"too many lines", strings.Repeat("a:1\n", fileMaxLines+1), "t.txt:1025: more than 1024 lines", ErrFileTooLarge},
		{"too many lines, limits first", "x:y\n" + strings.Repeat("\n", fileMaxLines), "t.txt:1025: more than 1024 lines", ErrFileTooLarge},
		{"too many bytes", strings.Repeat(strings.Repeat("#", 1023)+"\n", 1024) + "a:1\n", "t.txt: larger than 1048576 bytes", ErrFileTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "t.txt")
			if err == nil {
				t.Fatalf("Parse(%.40q) = %+v; want error %q", tt.in, got, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%.40q) error:\ngot  %q\nwant %q", tt.in, err, tt.wantErr)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("Parse(%.40q) error %q does not match %v", tt.in, err, tt.kind)
			}
		})
	}
}

func TestParseNoSource(t *testing.T) {
	for _, tt := range []struct {
		in, wantErr string
	}{
		{"a:x\n", `line 1: bad port "x"`},
		{"", "route file: no hops in route"},
	} {
		_, err := Parse(strings.NewReader(tt.in), "")
		if err == nil || err.Error() != tt.wantErr {
			t.Errorf("Parse(%q, \"\") error = %v; want %q", tt.in, err, tt.wantErr)
		}
	}
}

// TestParseBounded checks that Parse stops reading an endless input.
func TestParseBounded(t *testing.T) {
	endless := iotest.OneByteReader(&repeatReader{b: []byte("127.0.0.1:7000\n")})
	_, err := Parse(io.LimitReader(endless, 1<<30), "endless")
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("Parse(endless) error = %v; want ErrFileTooLarge", err)
	}
	if got, want := err.Error(), "endless: larger than 1048576 bytes"; got != want {
		t.Errorf("Parse(endless) error = %q; want %q", got, want)
	}
}

type repeatReader struct {
	b []byte
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.i:])
		n += c
		r.i = (r.i + c) % len(r.b)
	}
	return n, nil
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse(io.MultiReader(strings.NewReader("a:1\n"), iotest.ErrReader(boom)), "t.txt")
	if !errors.Is(err, boom) {
		t.Fatalf("Parse error = %v; want it to wrap %v", err, boom)
	}
	if got, want := err.Error(), "t.txt: read: boom"; got != want {
		t.Errorf("Parse error = %q; want %q", got, want)
	}
}

func TestParseFile(t *testing.T) {
	tests := []struct {
		path string
		want File
	}{
		{"input.txt", File{Route: Route{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9099"}, Name: "proxy.pdf"}},
		{"routes.txt", File{Route: Route{"127.0.0.1:7001", "[::1]:7002", "localhost:7000"}}},
	}
	for _, tt := range tests {
		got, err := ParseFile(filepath.Join("testdata", tt.path))
		if err != nil {
			t.Errorf("ParseFile(%q): %v", tt.path, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFile(%q):\ngot  %+v\nwant %+v", tt.path, got, tt.want)
		}
	}
}

func TestParseFileErrors(t *testing.T) {
	path := filepath.Join("testdata", "bad_port.txt")
	_, err := ParseFile(path)
	if want := path + `:3: bad port "70x0"`; err == nil || err.Error() != want {
		t.Errorf("ParseFile(%q) error = %v; want %q", path, err, want)
	}
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("ParseFile(%q) error %v does not match ErrSyntax", path, err)
	}

	missing := filepath.Join(t.TempDir(), "nope.txt")
	_, err = ParseFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("ParseFile(%q) error = %v; want fs.ErrNotExist naming the path", missing, err)
	}
}

func TestStripComment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"# all", ""},
		{"a:1 # c", "a:1 "},
		{"a:1\t#c", "a:1\t"},
		{"a#b", "a#b"},
		{"a#b #c", "a#b "},
		{"a#b#c", "a#b#c"},
		{"a\u00a0#c", "a\u00a0"},
		{"##", ""},
	}
	for _, tt := range tests {
		if got := stripComment(tt.in); got != tt.want {
			t.Errorf("stripComment(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
