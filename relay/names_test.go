package relay

import (
	"errors"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // "" means refused
		why  string // part of the refusal message
	}{
		{in: "a.txt", want: "a.txt"},
		{in: "sub/b.txt", want: "sub/b.txt"},
		{in: "sub/../a.txt", want: "a.txt"},
		{in: "./a.txt", want: "a.txt"},
		{in: "a//b", want: "a/b"},
		{in: "a/./b/", want: "a/b"},
		{in: "a/b/../../c", want: "c"},
		{in: "..foo", want: "..foo"},
		{in: "foo..", want: "foo.."},
		{in: "a/..b", want: "a/..b"},
		{in: "...", want: "..."},
		{in: `a\..\..\x`, want: `a\..\..\x`}, // a backslash is a name character on the wire
		{in: "héllo wörld.txt", want: "héllo wörld.txt"},
		{in: "", why: "empty name"},
		{in: ".", why: "is the root directory"},
		{in: "./", why: "is the root directory"},
		{in: "a/..", why: "is the root directory"},
		{in: "..", why: `".." leaves the root`},
		{in: "../x", why: `".." leaves the root`},
		{in: "a/../../x", why: `".." leaves the root`},
		{in: "a/b/../../../x", why: `".." leaves the root`},
		{in: "./../x", why: `".." leaves the root`},
		{in: "../", why: `".." leaves the root`},
		{in: "/etc/passwd", why: "absolute path"},
		{in: "/", why: "absolute path"},
		{in: "//x", why: "absolute path"},
		{in: `\x`, why: "absolute path"},
		{in: "x\x00y", why: "contains NUL"},
		{in: "\x00", why: "contains NUL"},
		{in: "a.txt\x00.jpg", why: "contains NUL"},
	} {
		got, err := CleanName(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("CleanName(%q): got %q, %v; want %q, nil", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("CleanName(%q): got %q, nil; want an error", tc.in, got)
			continue
		}
		if got != "" {
			t.Errorf("CleanName(%q): got %q with the error, want \"\"", tc.in, got)
		}
		if !errors.Is(err, errBadName) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CleanName(%q): got error %q, want errBadName saying %q", tc.in, err, tc.why)
		}
	}
}

func TestCleanNameIdempotent(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"a.txt", "sub/../a.txt", "a//b/./c", "x/y/z/../.."} {
		once, err := CleanName(in)
		if err != nil {
			t.Fatalf("CleanName(%q): %v", in, err)
		}
		twice, err := CleanName(once)
		if err != nil || twice != once {
			t.Errorf("CleanName(CleanName(%q)): got %q, %v; want %q", in, twice, err, once)
		}
	}
}
