package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedSource holds every Open until `want` Stats have been made, so that
// all the Gets of a herd are in flight before the first load can finish.
type gatedSource struct {
	countingSource
	want int64
}

func (s *gatedSource) Open(name string) (*os.File, error) {
	deadline := time.Now().Add(5 * time.Second)
	for s.stats.Load() < s.want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return s.countingSource.Open(name)
}

func TestHerdOneOpen(t *testing.T) {
	const herd = 100
	dir, root := testRoot(t)
	data := content(1, 256<<10)
	writeFile(t, dir, "big.bin", data)
	src := &gatedSource{countingSource: countingSource{Source: root}, want: herd}
	c := newCache(t, 1<<20, src)

	var wg sync.WaitGroup
	objs := make([]Object, herd)
	errs := make([]error, herd)
	for i := range herd {
		wg.Go(func() { objs[i], errs[i] = c.Get(context.Background(), "big.bin") })
	}
	wg.Wait()
	for i := range herd {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		if !bytes.Equal(objs[i].Data, data) {
			t.Fatalf("Get %d: wrong bytes", i)
		}
	}
	if got := src.opens.Load(); got != 1 {
		t.Fatalf("%d concurrent Gets caused %d Opens, want 1", herd, got)
	}
	s := c.Stats()
	if s.Loads != 1 || s.Hits+s.Misses != herd {
		t.Fatalf("stats %+v: want 1 load and %d gets", s, herd)
	}
	t.Logf("stats %+v", s)
}

// TestConcurrentBound runs Gets and atomic rewrites of a working set three
// times the capacity from several goroutines while a watcher checks the bound
// continuously. Every answer must be a version that was written, whole.
func TestConcurrentBound(t *testing.T) {
	const (
		capacity = 256 << 10
		nfiles   = 48
		versions = 4
	)
	dir, root := testRoot(t)
	r := rand.New(rand.NewPCG(1, 2))
	valid := map[string]map[[32]byte]bool{}
	vdata := map[string][][]byte{}
	for i := range nfiles {
		name := fmt.Sprintf("f%02d", i)
		valid[name] = map[[32]byte]bool{}
		for v := range versions {
			b := content(uint64(i*versions+v), 1+r.IntN(32<<10))
			vdata[name] = append(vdata[name], b)
			valid[name][sha256.Sum256(b)] = true
		}
		writeFile(t, dir, name, vdata[name][0])
	}
	c := newCache(t, capacity, root)

	iters := 3000
	if testing.Short() {
		iters = 500
	}
	var stop atomic.Bool
	var watch sync.WaitGroup
	var maxSeen atomic.Int64
	watch.Go(func() {
		for !stop.Load() {
			b := c.Stats().Bytes
			if b > maxSeen.Load() {
				maxSeen.Store(b)
			}
		}
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range iters {
				name := fmt.Sprintf("f%02d", min(r.IntN(nfiles), r.IntN(nfiles))) // skewed
				if g == 0 && r.IntN(10) == 0 {
					b := vdata[name][r.IntN(versions)]
					tmp := filepath.Join(dir, fmt.Sprintf("%s.%d.tmp", name, g))
					if err := os.WriteFile(tmp, b, 0o644); err != nil {
						t.Error(err)
						return
					}
					if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				obj, err := c.Get(context.Background(), name)
				if err != nil {
					t.Error(err)
					return
				}
				got := sha256.Sum256(body(t, obj))
				if !valid[name][got] {
					t.Errorf("%s: bytes that were never written", name)
					return
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	watch.Wait()
	if m := maxSeen.Load(); m > capacity {
		t.Fatalf("watcher saw %d cached bytes, capacity %d", m, capacity)
	}
	checkBound(t, c)
	t.Logf("max bytes seen %d of %d; stats %+v", maxSeen.Load(), capacity, c.Stats())
}

// statSource answers Stat with one preallocated FileInfo, so that a hit can
// be measured without the allocation of a real stat.
type statSource struct {
	Source
	fi fs.FileInfo
}

func (s statSource) Stat(string) (fs.FileInfo, error) { return s.fi, nil }

func TestHitAllocsZero(t *testing.T) {
	dir, root := testRoot(t)
	data := content(1, 10000)
	writeFile(t, dir, "a.txt", data)
	fi, err := root.Stat("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, 1<<20, statSource{Source: root, fi: fi})
	ctx := context.Background()
	mustGet(t, c, "a.txt", data)
	allocs := testing.AllocsPerRun(1000, func() {
		obj, err := c.Get(ctx, "a.txt")
		if err != nil || !obj.Hit {
			t.Fatalf("not a hit: %v", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a hit allocates %v times, want 0", allocs)
	}
	// The same slice every time: no copy.
	a, _ := c.Get(ctx, "a.txt")
	b, _ := c.Get(ctx, "a.txt")
	if &a.Data[0] != &b.Data[0] {
		t.Fatal("hits returned different slices")
	}

	// For the record: with a real os.Root, the stat itself allocates.
	c2 := newCache(t, 1<<20, root)
	mustGet(t, c2, "a.txt", data)
	t.Logf("allocs per hit through os.Root (the stat's own): %v", testing.AllocsPerRun(1000, func() {
		if _, err := c2.Get(ctx, "a.txt"); err != nil {
			t.Fatal(err)
		}
	}))
}
