package cache

import (
	"fmt"
	"path"
	"strings"
)

// cleanName returns the cache key of name: path.Clean(name), relative to the
// root. Callers are expected to have refused bad names already; this is
// defence in depth. It does not allocate for a name that is already clean.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q contains NUL", ErrInvalidName, name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("%w: %q is absolute", ErrInvalidName, name)
	}
	key := path.Clean(name)
	if key == ".." || strings.HasPrefix(key, "../") {
		return "", fmt.Errorf("%w: %q escapes the root", ErrInvalidName, name)
	}
	return key, nil
}
