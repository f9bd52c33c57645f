package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// testRoot returns a temporary directory and an *os.Root on it.
func testRoot(t testing.TB) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// content returns n deterministic bytes that differ per seed.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newCache(t testing.TB, maxBytes int64, src Source) *Cache {
	t.Helper()
	c, err := New(Config{MaxBytes: maxBytes, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// body returns the bytes of obj, closing its File if any, and checks the
// Data/File contract and the digest.
func body(t testing.TB, obj Object) []byte {
	t.Helper()
	switch {
	case obj.Data != nil && obj.File != nil:
		t.Fatalf("%s: both Data and File set", obj.Name)
	case obj.Data != nil:
		if int64(len(obj.Data)) != obj.Size {
			t.Fatalf("%s: len(Data) = %d, Size = %d", obj.Name, len(obj.Data), obj.Size)
		}
		if got := sha256.Sum256(obj.Data); got != obj.SHA256 {
			t.Fatalf("%s: SHA256 does not match Data", obj.Name)
		}
		if got := CRC(obj.Data); got != obj.CRC64 {
			t.Fatalf("%s: CRC-64 %016x, Data's is %016x", obj.Name, obj.CRC64, got)
		}
		return obj.Data
	case obj.File != nil:
		defer obj.File.Close()
		b, err := io.ReadAll(io.LimitReader(obj.File, obj.Size))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != obj.Size {
			t.Fatalf("%s: streamed %d bytes, Size = %d", obj.Name, len(b), obj.Size)
		}
		return b
	default:
		t.Fatalf("%s: neither Data nor File set", obj.Name)
	}
	return nil
}

// mustGet gets name and checks its bytes against want.
func mustGet(t testing.TB, c *Cache, name string, want []byte) Object {
	t.Helper()
	obj, err := c.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if got := body(t, obj); !bytes.Equal(got, want) {
		t.Fatalf("Get(%q): got %d bytes, want %d bytes (content differs)", name, len(got), len(want))
	}
	checkBound(t, c)
	return obj
}

// checkBound asserts the byte bound and that Stats agrees with List.
func checkBound(t testing.TB, c *Cache) {
	t.Helper()
	s := c.Stats()
	if s.Bytes > s.Capacity || s.Bytes < 0 {
		t.Fatalf("cached bytes %d, capacity %d", s.Bytes, s.Capacity)
	}
	var sum int64
	for _, e := range c.List() {
		sum += e.Size
	}
	if sum > s.Capacity {
		t.Fatalf("listed bytes %d, capacity %d", sum, s.Capacity)
	}
}

// countingSource counts the calls to a Source.
type countingSource struct {
	Source
	opens atomic.Int64
	stats atomic.Int64
}

func (s *countingSource) Open(name string) (*os.File, error) {
	s.opens.Add(1)
	return s.Source.Open(name)
}

func (s *countingSource) Stat(name string) (fs.FileInfo, error) {
	s.stats.Add(1)
	return s.Source.Stat(name)
}
