package relay

import (
	"fmt"
	"path"
	"strings"
)

// errBadName marks a requested name that is never served.
// It wraps ErrBadRequest, the client's sentinel for the same refusal by a
// terminal.
var errBadName = fmt.Errorf("%w: refused name", ErrBadRequest)

// CleanName validates a requested file name and returns its canonical form:
// slash-separated, relative to the root, without "." or ".." elements. It
// refuses empty names, NUL bytes, absolute paths, names that climb out of
// the root ("../x", "a/../../x") and the root itself. A ".." that stays
// inside the root ("sub/../a.txt") is cleaned away, so the name is the
// same cache entry as "a.txt". The file is then opened through os.Root,
// which also refuses symlinks that leave the root.
func CleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", errBadName)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("%w %q: contains NUL", errBadName, name)
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return "", fmt.Errorf("%w %q: absolute path", errBadName, name)
	}
	clean := path.Clean(name)
	switch {
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("%w %q: \"..\" leaves the root", errBadName, name)
	case clean == ".":
		return "", fmt.Errorf("%w %q: is the root directory", errBadName, name)
	}
	return clean, nil
}
