package cache

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/relaychain/relaychain/cache/internal/store"
)

// loadResult is what one singleflight load hands to every caller waiting on it.
type loadResult struct {
	it     *store.Item[*file] // nil when stream
	hit    bool               // it was already in memory (re-check)
	stream bool               // every caller must stream the file itself
}

// load returns key from memory, joining any concurrent load of the same key
// so that concurrent misses cause one read of the file.
func (c *Cache) load(key string, id identity) (Object, error) {
	v, err, _ := c.flight.Do(key, func() (any, error) {
		// Re-check, as groupcache's load does: a load that finished between
		// this caller's lookup and Do may have just cached the file.
		if it, ok := c.store.Get(key); ok && it.Value.id == id {
			return &loadResult{it: it, hit: true}, nil
		}
		return c.loadFromDisk(key)
	})
	if err != nil {
		c.ctr.misses.Add(1)
		return Object{}, err
	}
	r := v.(*loadResult)
	switch {
	case r.stream:
		c.ctr.misses.Add(1)
		return c.stream(key)
	case r.hit:
		c.ctr.countHit(unsafe.Pointer(r.it), r.it.Size)
	default:
		c.ctr.misses.Add(1)
	}
	return r.it.Value.object(r.it.Key, r.hit), nil
}

// loadFromDisk reads key whole and offers it to the store. A file that
// changes while it is read is read once more; if it changes again, or has
// grown past the limit, the callers stream it instead.
func (c *Cache) loadFromDisk(key string) (*loadResult, error) {
	for range 2 {
		it, err := c.readFile(key)
		switch {
		case errors.Is(err, errChanged):
			continue
		case errors.Is(err, errTooLarge):
			return &loadResult{stream: true}, nil
		case err != nil:
			return nil, err
		}
		c.ctr.loads.Add(1)
		if _, err := c.store.Add(it); err != nil && !errors.Is(err, store.ErrClosed) {
			return nil, fmt.Errorf("cache: store %q: %w", key, err)
		}
		// Kept or not by the policy, the data is served from memory once.
		return &loadResult{it: it}, nil
	}
	return &loadResult{stream: true}, nil
}

// testHookRead, if set, runs between the first fstat and the read.
var testHookRead func(key string)

var (
	errChanged  = errors.New("file changed while it was read")
	errTooLarge = errors.New("file larger than the cache limit")
)

// readFile opens key, fstats it, reads exactly the fstat size and fstats it
// again. The identity stored with the data comes from the open file, so a
// later hit compares against what was actually read.
func (c *Cache) readFile(key string) (*store.Item[*file], error) {
	f, err := c.src.Open(key)
	if err != nil {
		return nil, fmt.Errorf("cache: load %q: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cache: load %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(key, fi)
	}
	if fi.Size() > c.limit {
		return nil, errTooLarge
	}
	if testHookRead != nil {
		testHookRead(key)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errChanged // shrank
		}
		return nil, fmt.Errorf("cache: load %q: %w", key, err)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cache: load %q: %w", key, err)
	}
	id := identityOf(fi)
	if identityOf(after) != id {
		return nil, errChanged // rewritten or grown while read
	}
	return &store.Item[*file]{
		Key:  strings.Clone(key), // do not pin the caller's buffer
		Size: int64(len(data)),
		Value: &file{
			id:      id,
			modTime: fi.ModTime(),
			data:    data,
			sum:     sha256.Sum256(data),
			crc:     CRC(data),
		},
	}, nil
}

// stream opens key for streaming. Size and ModTime come from the fstat of the
// open file, never from an earlier stat.
func (c *Cache) stream(key string) (Object, error) {
	f, err := c.src.Open(key)
	if err != nil {
		return Object{}, fmt.Errorf("cache: get %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Object{}, fmt.Errorf("cache: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return Object{}, notRegular(key, fi)
	}
	c.ctr.streams.Add(1)
	return Object{Name: key, Size: fi.Size(), ModTime: fi.ModTime(), File: f}, nil
}
