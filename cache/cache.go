package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/singleflight"

	"github.com/relaychain/relaychain/cache/internal/store"
)

// DefaultMaxBytes is the default cache budget: 64 MiB.
const DefaultMaxBytes = 64 << 20

// Source is where files come from; *os.Root satisfies it. Names passed to it
// are clean, relative and slash-separated. Its methods must be safe for
// concurrent use.
type Source interface {
	Open(name string) (*os.File, error)
	Stat(name string) (fs.FileInfo, error)
}

// Config configures a Cache.
type Config struct {
	// MaxBytes is the budget: the cached bytes never exceed it. A file larger
	// than MaxBytes is streamed from disk. 0 disables caching (every Get
	// streams from disk); negative is invalid.
	MaxBytes int64
	// Source is where files come from. Required.
	Source Source
}

// DefaultConfig returns a Config for src with the default budget.
func DefaultConfig(src Source) Config {
	return Config{MaxBytes: DefaultMaxBytes, Source: src}
}

// Object is one file ready to serve. Exactly one of Data or File is set.
type Object struct {
	// Name is the cache key: path.Clean of the requested name.
	Name string
	// Size is the file's size: len(Data), or the fstat size of File.
	Size int64
	// ModTime is the file's modification time, from the fstat of the open
	// file the data was read from (or that File is).
	ModTime time.Time
	// Data holds the cached bytes, shared and read-only: the caller must
	// never modify them. nil when streaming.
	Data []byte
	// SHA256 is the digest of Data, computed once at load time; valid only
	// when Data != nil.
	SHA256 [32]byte
	// CRC64 is the transport check (CRC) of Data, computed with SHA256;
	// valid only when Data != nil.
	CRC64 uint64
	// File is an open file to stream from disk when Data == nil; the caller
	// closes it. Send exactly Size bytes (io.CopyN) and treat a short copy as
	// an error: the file may change while it is streamed.
	File *os.File
	// Hit is true when the object was served from an entry already in
	// memory, not loaded by this call.
	Hit bool

	id identity // of the file Data was read from; zero when streaming
}

// Current reports whether fi, a stat of the file now, is the version that
// Data was read from: same size, mtime, ctime, device and inode. It is
// false when the object is not cached data.
func (o *Object) Current(fi fs.FileInfo) bool {
	return o.Data != nil && identityOf(fi) == o.id
}

// Entry describes one cached file, as listed by List.
type Entry struct {
	// Name is the cache key.
	Name string
	// Size is the file's size in bytes.
	Size int64
}

// file is what the cache keeps for one file.
type file struct {
	id      identity // from the fstat of the open file the data was read from
	modTime time.Time
	data    []byte
	sum     [32]byte
	crc     uint64
}

// object returns the Object for f under name. It does not allocate.
func (f *file) object(name string, hit bool) Object {
	return Object{
		Name:    name,
		Size:    int64(len(f.data)),
		ModTime: f.modTime,
		Data:    f.data,
		SHA256:  f.sum,
		CRC64:   f.crc,
		Hit:     hit,
		id:      f.id,
	}
}

// Cache is a byte-bounded in-memory file cache in front of a Source.
//
// All methods are safe for concurrent use. A hit takes no lock and does not
// allocate; concurrent misses of one file are joined into a single load
// (singleflight); storing a loaded file is serialised inside the store.
// The Data slices it hands out are shared by all callers and must not be
// modified.
type Cache struct {
	src    Source
	max    int64
	limit  int64               // largest file kept in memory; 0 when caching is off
	store  *store.Store[*file] // nil when caching is off
	flight singleflight.Group
	ctr    counters
	closed atomic.Bool
}

// New returns a Cache configured by cfg.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("cache: MaxBytes %d: must not be negative", cfg.MaxBytes)
	}
	if cfg.Source == nil {
		return nil, errors.New("cache: Source is nil")
	}
	c := &Cache{src: cfg.Source, max: cfg.MaxBytes}
	if cfg.MaxBytes > 0 {
		s, err := store.New[*file](cfg.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		c.store = s
		c.limit = min(cfg.MaxBytes, store.MaxItemSize)
	}
	return c, nil
}

// Get returns the file name, from memory if it is cached and unchanged on
// disk, else loaded from the Source (and cached if it fits and the policy
// keeps it), else as an open file to stream.
//
// Every call stats the file, hit or not. A hit returns the cached slice
// itself: no copy, no allocation beyond the Source's Stat. A file that
// changed on disk since it was cached (size, mtime or inode) is dropped and
// loaded again. ctx is checked once, before any disk work; a load in progress
// (at most MaxBytes from local disk) is not interrupted.
//
// Errors wrap ErrInvalidName, fs.ErrNotExist (the file does not exist, or was
// deleted since it was cached), ErrNotRegular, ctx's error, or the Source's
// error.
func (c *Cache) Get(ctx context.Context, name string) (Object, error) {
	key, err := cleanName(name)
	if err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("cache: get %q: %w", key, err)
	}
	fi, err := c.src.Stat(key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.drop(key)
		}
		return Object{}, fmt.Errorf("cache: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		c.drop(key)
		return Object{}, notRegular(key, fi)
	}
	id := identityOf(fi)
	if c.store != nil {
		if it, ok := c.store.Get(key); ok {
			if it.Value.id == id {
				c.ctr.countHit(unsafe.Pointer(it), it.Size)
				return it.Value.object(it.Key, true), nil
			}
			if c.store.Remove(it) {
				c.ctr.stale.Add(1)
			}
		}
	}
	if c.store == nil || id.size > c.limit || c.closed.Load() {
		c.ctr.misses.Add(1)
		return c.stream(key)
	}
	return c.load(key, id)
}

// drop removes the entry under key, if any, after the file vanished or
// stopped being a regular file.
func (c *Cache) drop(key string) {
	if c.store == nil {
		return
	}
	if it, ok := c.store.Peek(key); ok && c.store.Remove(it) {
		c.ctr.stale.Add(1)
	}
}

func notRegular(key string, fi fs.FileInfo) error {
	return fmt.Errorf("cache: get %q: %w (mode %v)", key, ErrNotRegular, fi.Mode().Type())
}

// Contains reports whether an entry is cached under the key of name, without
// checking that it is still fresh (no stat).
func (c *Cache) Contains(name string) bool {
	key, err := cleanName(name)
	if err != nil || c.store == nil {
		return false
	}
	_, ok := c.store.Peek(key)
	return ok
}

// List returns the cached entries sorted by Name. Entries are not checked for
// freshness. It is weakly consistent with concurrent Gets.
func (c *Cache) List() []Entry {
	if c.store == nil {
		return nil
	}
	var list []Entry
	for it := range c.store.All() {
		list = append(list, Entry{Name: it.Key, Size: it.Size})
	}
	slices.SortFunc(list, func(a, b Entry) int { return cmp.Compare(a.Name, b.Name) })
	return list
}

// Close drops every cached entry and turns caching off: later Gets still
// work, streaming every file from disk. The cache runs no goroutines, so
// there is nothing else to release. Close is idempotent.
func (c *Cache) Close() {
	if c.closed.Swap(true) {
		return
	}
	if c.store != nil {
		c.store.Clear()
	}
}
