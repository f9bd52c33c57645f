package cache

import "errors"

// ErrInvalidName is wrapped by the error of Get for a name that is absolute,
// escapes the root with "..", or contains a NUL byte.
var ErrInvalidName = errors.New("cache: invalid file name")

// ErrNotRegular is wrapped by the error of Get for a name that is a
// directory or another non-regular file (device, pipe, socket).
var ErrNotRegular = errors.New("cache: not a regular file")
