package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	_, root := testRoot(t)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"negative", Config{MaxBytes: -1, Source: root}, false},
		{"nil source", Config{MaxBytes: 1}, false},
		{"disabled", Config{MaxBytes: 0, Source: root}, true},
		{"default", DefaultConfig(root), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if got := err == nil; got != tt.ok {
				t.Fatalf("New: err = %v, want ok = %v", err, tt.ok)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestBounds(t *testing.T) {
	const capacity = 1 << 20
	dir, root := testRoot(t)
	exact := content(1, capacity)
	over := content(2, capacity+1)
	small := content(3, 1000)
	writeFile(t, dir, "exact", exact)
	writeFile(t, dir, "over", over)
	writeFile(t, dir, "small", small)
	c := newCache(t, capacity, root)

	obj := mustGet(t, c, "exact", exact)
	if obj.Data == nil || !c.Contains("exact") {
		t.Fatalf("file of exactly the capacity: Data nil = %v, cached = %v; want cached in memory", obj.Data == nil, c.Contains("exact"))
	}
	if got := c.Stats().Bytes; got != capacity {
		t.Fatalf("Bytes = %d, want %d", got, capacity)
	}
	if obj := mustGet(t, c, "exact", exact); !obj.Hit {
		t.Fatal("second Get of exact: not a hit")
	}

	for range 2 {
		obj = mustGet(t, c, "over", over)
		if obj.File == nil || obj.Data != nil || c.Contains("over") {
			t.Fatalf("capacity+1 file: File nil = %v, cached = %v; want streamed, not cached", obj.File == nil, c.Contains("over"))
		}
		if obj.Size != capacity+1 {
			t.Fatalf("streamed Size = %d, want %d", obj.Size, capacity+1)
		}
	}

	// A small file must push the full-capacity file out (or be refused), never overflow.
	for range 5 {
		mustGet(t, c, "small", small)
		mustGet(t, c, "exact", exact)
	}
	if s := c.Stats(); s.Streams != 2 || s.Loads < 2 {
		t.Fatalf("stats %+v: want 2 streams and at least 2 loads", s)
	}
}

func TestEvictionCycle(t *testing.T) {
	const capacity = 1 << 20
	dir, root := testRoot(t)
	r := rand.New(rand.NewPCG(7, 7))
	var names []string
	files := map[string][]byte{}
	var total int64
	for i := 0; total < 3*capacity; i++ {
		n := 8<<10 + r.IntN(120<<10)
		name := fmt.Sprintf("d%d/f%03d.bin", i%4, i)
		files[name] = content(uint64(i)+100, n)
		writeFile(t, dir, name, files[name])
		names = append(names, name)
		total += int64(n)
	}
	c := newCache(t, capacity, root)
	for pass := range 3 {
		for _, name := range names {
			mustGet(t, c, name, files[name])
		}
		// Re-read a random sample, many of them evicted by now.
		for range len(names) {
			name := names[r.IntN(len(names))]
			mustGet(t, c, name, files[name])
		}
		t.Logf("pass %d: %+v", pass, c.Stats())
	}
	s := c.Stats()
	if s.Evictions+s.Rejections == 0 {
		t.Fatalf("cycled %d bytes through a %d-byte cache without evicting: %+v", total, capacity, s)
	}
	if s.Hits == 0 {
		t.Fatalf("no hits: %+v", s)
	}
	if s.HitBytes == 0 || s.Bytes > capacity {
		t.Fatalf("stats %+v", s)
	}
}

func TestKeyNormalisation(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 100)
	writeFile(t, dir, "a.txt", data)
	if err := os.Mkdir(dir+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, 1<<20, root)
	for i, name := range []string{"a.txt", "./a.txt", "sub/../a.txt", "a.txt/", ".//a.txt"} {
		obj := mustGet(t, c, name, data)
		if obj.Name != "a.txt" {
			t.Errorf("Get(%q).Name = %q, want a.txt", name, obj.Name)
		}
		if want := i > 0; obj.Hit != want {
			t.Errorf("Get(%q).Hit = %v, want %v", name, obj.Hit, want)
		}
		if !c.Contains(name) {
			t.Errorf("Contains(%q) = false", name)
		}
	}
	if got := c.List(); len(got) != 1 || got[0] != (Entry{Name: "a.txt", Size: 100}) {
		t.Fatalf("List = %v, want [{a.txt 100}]", got)
	}

	for _, name := range []string{"/a.txt", "/", "..", "../a.txt", "sub/../../a.txt", "a\x00.txt"} {
		_, err := c.Get(context.Background(), name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidName", name, err)
		}
		if c.Contains(name) {
			t.Errorf("Contains(%q) = true", name)
		}
	}
}

func TestNotRegular(t *testing.T) {
	dir, root := testRoot(t)
	if err := os.Mkdir(dir+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, 1<<20, root)
	for _, name := range []string{"sub", ".", ""} {
		_, err := c.Get(context.Background(), name)
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("Get(%q): err = %v, want ErrNotRegular", name, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	_, root := testRoot(t)
	for _, maxBytes := range []int64{0, 1 << 20} {
		c := newCache(t, maxBytes, root)
		_, err := c.Get(context.Background(), "missing.txt")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("MaxBytes %d: err = %v, want fs.ErrNotExist", maxBytes, err)
		}
	}
}

func TestDisabledStreams(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 5000)
	writeFile(t, dir, "a", data)
	src := &countingSource{Source: root}
	c := newCache(t, 0, src)
	for range 3 {
		obj := mustGet(t, c, "a", data)
		if obj.File == nil || obj.Hit {
			t.Fatalf("disabled cache: File nil = %v, Hit = %v", obj.File == nil, obj.Hit)
		}
	}
	if c.Contains("a") || c.List() != nil || src.opens.Load() != 3 {
		t.Fatalf("disabled cache: Contains = %v, List = %v, opens = %d", c.Contains("a"), c.List(), src.opens.Load())
	}
	if s := c.Stats(); s.Streams != 3 || s.Misses != 3 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// lyingSource reports a stat that is not the file's.
type lyingSource struct {
	Source
	fi fs.FileInfo
}

func (s lyingSource) Stat(string) (fs.FileInfo, error) { return s.fi, nil }

type fakeInfo struct {
	size int64
	mod  time.Time
	sys  any
}

func (f fakeInfo) Name() string       { return "fake" }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return 0o644 }
func (f fakeInfo) ModTime() time.Time { return f.mod }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return f.sys }

func TestStreamSizeFromFstat(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 3000)
	writeFile(t, dir, "a", data)
	real, err := root.Stat("a")
	if err != nil {
		t.Fatal(err)
	}
	// The pre-stat claims the file is too large to cache and older than it is.
	src := lyingSource{Source: root, fi: fakeInfo{size: 1 << 30, mod: time.Unix(1, 0)}}
	c := newCache(t, 1<<20, src)
	obj := mustGet(t, c, "a", data)
	if obj.File == nil || obj.Size != 3000 || !obj.ModTime.Equal(real.ModTime()) {
		t.Fatalf("Size = %d, ModTime = %v; want streamed with fstat size 3000 and mtime %v", obj.Size, obj.ModTime, real.ModTime())
	}

	// The pre-stat claims the file is small; the load trusts the fstat.
	src.fi = fakeInfo{size: 10, mod: time.Unix(1, 0)}
	c = newCache(t, 1<<20, src)
	obj = mustGet(t, c, "a", data)
	if obj.Data == nil || obj.Size != 3000 || !obj.ModTime.Equal(real.ModTime()) {
		t.Fatalf("Size = %d, ModTime = %v; want cached with fstat size and mtime", obj.Size, obj.ModTime)
	}
}

func TestCloseIdempotent(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 100)
	writeFile(t, dir, "a", data)
	c := newCache(t, 1<<20, root)
	mustGet(t, c, "a", data)
	if !c.Contains("a") {
		t.Fatal("not cached")
	}
	c.Close()
	c.Close()
	if c.Contains("a") || len(c.List()) != 0 || c.Stats().Bytes != 0 {
		t.Fatalf("after Close: Contains = %v, List = %v, stats %+v", c.Contains("a"), c.List(), c.Stats())
	}
	if obj := mustGet(t, c, "a", data); obj.File == nil {
		t.Fatal("after Close: Get did not stream")
	}
}

func TestStats(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 1234)
	writeFile(t, dir, "a", data)
	c := newCache(t, 1<<20, root)
	for range 4 {
		mustGet(t, c, "a", data)
	}
	want := Stats{Hits: 3, Misses: 1, Loads: 1, HitBytes: 3 * 1234, Bytes: 1234, Entries: 1, Capacity: 1 << 20}
	if got := c.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}
