// Package cache is the byte-bounded in-memory file cache of the terminal file
// server: it serves a file either from memory (a shared, read-only slice with
// its SHA-256) or, when the file is larger than the budget or caching is off,
// as an open file to stream from disk.
//
// It knows nothing of sockets or wire formats. Files come from a [Source]
// (an [os.Root] in production). The eviction policy is otter's W-TinyLFU
// (github.com/maypok86/otter/v2) weighted by file size, wrapped by
// cache/internal/store so that the cached bytes never exceed the budget.
// A cached copy is never served stale: every hit stats the file and compares
// size, modification time and inode with the cached copy.
package cache
