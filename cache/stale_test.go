package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNeverStale(t *testing.T) {
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	old := content(1, 1000)
	tests := []struct {
		name   string
		mutate func(t *testing.T, p string) []byte // returns the new content; nil if deleted
		err    error                               // the error Get must wrap after the change
	}{
		{"rewritten same size, new mtime", func(t *testing.T, p string) []byte {
			b := content(2, 1000)
			must(t, os.WriteFile(p, b, 0o644)) // in place: same inode
			must(t, os.Chtimes(p, t0, t0.Add(time.Second)))
			return b
		}, nil},
		{"rewritten same size and mtime, new inode", func(t *testing.T, p string) []byte {
			b := content(3, 1000)
			tmp := p + ".tmp"
			must(t, os.WriteFile(tmp, b, 0o644))
			must(t, os.Chtimes(tmp, t0, t0)) // identical mtime: only the inode differs
			must(t, os.Rename(tmp, p))
			return b
		}, nil},
		{"rewritten different size", func(t *testing.T, p string) []byte {
			b := content(4, 1500)
			must(t, os.WriteFile(p, b, 0o644))
			must(t, os.Chtimes(p, t0, t0)) // same mtime: only the size differs
			return b
		}, nil},
		{"replaced by rename", func(t *testing.T, p string) []byte {
			b := content(5, 800)
			tmp := p + ".new"
			must(t, os.WriteFile(tmp, b, 0o644))
			must(t, os.Rename(tmp, p))
			return b
		}, nil},
		{"touched", func(t *testing.T, p string) []byte {
			must(t, os.Chtimes(p, t0, t0.Add(time.Hour)))
			return old
		}, nil},
		{"deleted", func(t *testing.T, p string) []byte {
			must(t, os.Remove(p))
			return nil
		}, fs.ErrNotExist},
		{"replaced by a directory", func(t *testing.T, p string) []byte {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o755))
			return nil
		}, ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, root := testRoot(t)
			p := filepath.Join(dir, "f")
			writeFile(t, dir, "f", old)
			must(t, os.Chtimes(p, t0, t0))
			c := newCache(t, 1<<20, root)

			mustGet(t, c, "f", old)
			if obj := mustGet(t, c, "f", old); !obj.Hit {
				t.Fatal("second Get: not a hit")
			}
			want := tt.mutate(t, p)
			if tt.err != nil {
				_, err := c.Get(context.Background(), "f")
				if !errors.Is(err, tt.err) {
					t.Fatalf("Get after change: err = %v, want %v", err, tt.err)
				}
				if c.Contains("f") || c.Stats().Bytes != 0 {
					t.Fatalf("entry still cached after the file went: %+v", c.Stats())
				}
			} else {
				if obj := mustGet(t, c, "f", want); obj.Hit {
					t.Fatal("Get after change: served the old entry as a hit")
				}
				if obj := mustGet(t, c, "f", want); !obj.Hit {
					t.Fatal("Get after reload: not a hit")
				}
				if got := c.Stats().Bytes; got != int64(len(want)) {
					t.Fatalf("Bytes = %d, want %d", got, len(want))
				}
			}
			if s := c.Stats(); s.Stale != 1 {
				t.Fatalf("Stale = %d, want 1 (%+v)", s.Stale, s)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestChangedWhileRead(t *testing.T) {
	for _, tt := range []struct {
		changes int
		stream  bool
	}{
		{changes: 1, stream: false}, // read again, then cached
		{changes: 2, stream: true},  // still changing: streamed
	} {
		dir, root := testRoot(t)
		p := filepath.Join(dir, "f")
		writeFile(t, dir, "f", content(1, 4096))
		n := 0
		testHookRead = func(string) {
			if n++; n <= tt.changes {
				b, _ := os.ReadFile(p)
				must(t, os.WriteFile(p, append(b, 'x'), 0o644)) // grows, same inode
			}
		}
		t.Cleanup(func() { testHookRead = nil })
		src := &countingSource{Source: root}
		c := newCache(t, 1<<20, src)
		obj, err := c.Get(context.Background(), "f")
		if err != nil {
			t.Fatal(err)
		}
		got := body(t, obj)
		want, _ := os.ReadFile(p)
		if string(got) != string(want) {
			t.Fatalf("changes %d: got %d bytes, want the %d bytes on disk", tt.changes, len(got), len(want))
		}
		if (obj.File != nil) != tt.stream || c.Contains("f") == tt.stream {
			t.Fatalf("changes %d: streamed = %v, cached = %v", tt.changes, obj.File != nil, c.Contains("f"))
		}
		if want := int64(tt.changes + 1); src.opens.Load() != want {
			t.Fatalf("changes %d: %d opens, want %d", tt.changes, src.opens.Load(), want)
		}
	}
}
