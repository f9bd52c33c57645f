package route

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// File is a parsed route file.
type File struct {
	Route Route  // the hops, in order
	Name  string // the file named by a classic input file's first line, or ""
}

// ErrFileTooLarge is matched, with errors.Is, by the error for a route file
// over one of Parse's limits: its size, its number of lines, or the length of
// one line.
var ErrFileTooLarge = errors.New("route file too large")

// Limits of a route file.
const (
	fileMaxBytes     = 1 << 20 // whole file
	fileMaxLines     = 1024    // lines, counting blank lines and comments
	fileMaxLineBytes = 4 << 10 // one line, without its "\n" or "\r\n"
)

// Parse reads a route file from r; source names it in errors (e.g. the path).
//
// A route file holds one hop per line, in order, each written as ParseHop
// takes it ("HOST:PORT", "[IPv6]:PORT" or "HOST PORT"); the last hop is the
// file server. A '#' at the start of a line or after white space starts a
// comment that runs to the end of the line. Blank lines, surrounding white
// space, "\r\n" line ends, a leading UTF-8 byte order mark and a missing or
// extra final newline are all accepted.
//
// The classic proxy-chain input file also parses: its first line that is not
// blank or a comment may name the file to fetch instead of being a hop, as in
//
//	proxy.pdf
//	127.0.0.1 9100
//	127.0.0.1 9099
//
// That line is a name only if it is not a hop and does not look like one: a
// line that parses as a hop is a hop ("foo 80"), and a line that contains ':'
// or is two words ending in a number is reported as a bad hop. A name must
// not contain control characters. Any later line that is not a hop is an
// error.
//
// Errors name the source and the line, as in `routes.txt:3: bad port "70x0"`.
// Syntax errors, including a file without hops, match ErrSyntax. Parse reads
// at most 1 MiB from r; a larger input, more than 1024 lines, or a line
// longer than 4 KiB is refused with an error that matches ErrFileTooLarge.
// Errors from r are returned wrapped.
func Parse(r io.Reader, source string) (File, error) {
	data, err := io.ReadAll(io.LimitReader(r, fileMaxBytes+1))
	if err != nil {
		return File{}, fmt.Errorf("%s: read: %w", sourceName(source), err)
	}
	if len(data) > fileMaxBytes {
		return File{}, lineErr(source, 0, tooLargef("larger than %d bytes", fileMaxBytes))
	}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	if n := countLines(text); n > fileMaxLines {
		return File{}, lineErr(source, fileMaxLines+1, tooLargef("more than %d lines", fileMaxLines))
	}

	var f File
	first := true // no hop or name seen yet
	num := 0
	for line := range strings.Lines(text) {
		num++
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if len(line) > fileMaxLineBytes {
			return File{}, lineErr(source, num, tooLargef("line longer than %d bytes", fileMaxLineBytes))
		}
		s := strings.TrimSpace(stripComment(line))
		if s == "" {
			continue
		}
		hop, err := ParseHop(s)
		switch {
		case err == nil:
			f.Route = append(f.Route, hop)
		case looksLikeHop(s):
			return File{}, lineErr(source, num, err)
		case !first:
			return File{}, lineErr(source, num, fmt.Errorf("%w (only the first line that is not blank or a comment may name a file)", err))
		default:
			if err := checkName(s); err != nil {
				return File{}, lineErr(source, num, err)
			}
			f.Name = s
		}
		first = false
	}
	if len(f.Route) == 0 {
		return File{}, lineErr(source, 0, syntaxErrorf("no hops in route"))
	}
	return f, nil
}

// ParseFile opens and parses the route file at path; see Parse.
func ParseFile(path string) (File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("route file: %w", err)
	}
	defer fh.Close()
	return Parse(fh, path)
}

// lineError places an error at a line of a route file; line 0 is the whole file.
type lineError struct {
	source string
	line   int
	err    error
}

func lineErr(source string, line int, err error) error {
	return &lineError{source: source, line: line, err: err}
}

func (e *lineError) Error() string {
	switch {
	case e.line == 0:
		return sourceName(e.source) + ": " + e.err.Error()
	case e.source == "":
		return "line " + strconv.Itoa(e.line) + ": " + e.err.Error()
	}
	return e.source + ":" + strconv.Itoa(e.line) + ": " + e.err.Error()
}

func (e *lineError) Unwrap() error { return e.err }

func sourceName(source string) string {
	if source == "" {
		return "route file"
	}
	return source
}

func tooLargef(format string, args ...any) error {
	return &inputError{kind: ErrFileTooLarge, msg: fmt.Sprintf(format, args...)}
}

// countLines counts the lines of s; a final line needs no "\n".
func countLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// stripComment cuts line at a '#' that starts it or follows white space.
func stripComment(line string) string {
	for i := strings.IndexByte(line, '#'); i >= 0; {
		if i == 0 {
			return ""
		}
		if r, _ := utf8.DecodeLastRuneInString(line[:i]); unicode.IsSpace(r) {
			return line[:i]
		}
		j := strings.IndexByte(line[i+1:], '#')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return line
}

// looksLikeHop reports whether s, which is not a valid hop, was meant as one
// and so must not be taken for a file name: it has a colon ("host:70x0",
// "::1:7000") or is two words ending in a number ("host 99999").
func looksLikeHop(s string) bool {
	if strings.Contains(s, ":") {
		return true
	}
	f := strings.Fields(s)
	return len(f) == 2 && allBytes(f[1], isDigit)
}

// checkName checks the file name on the first line of a classic input file.
func checkName(s string) error {
	if !utf8.ValidString(s) {
		return syntaxErrorf("bad file name %s: not UTF-8", quote(s))
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return syntaxErrorf("bad file name %s: control character", quote(s))
	}
	return nil
}
