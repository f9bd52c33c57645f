package cache

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
)

// mapStatSource answers Stat from preallocated FileInfos, to measure the
// cache itself without the allocation and syscall of a real stat.
type mapStatSource struct {
	Source
	fi map[string]fs.FileInfo
}

func (s mapStatSource) Stat(name string) (fs.FileInfo, error) {
	if fi, ok := s.fi[name]; ok {
		return fi, nil
	}
	return s.Source.Stat(name)
}

// BenchmarkGetHit measures parallel hits over 1024 cached 4 KiB files.
// Run with -cpu 1,2. stat=fake isolates the cache (0 allocs per hit);
// stat=root includes the real os.Root stat of every hit.
func BenchmarkGetHit(b *testing.B) {
	const files = 1024
	dir, root := testRoot(b)
	names := make([]string, files)
	fake := mapStatSource{Source: root, fi: map[string]fs.FileInfo{}}
	for i := range names {
		names[i] = fmt.Sprintf("d%d/f%04d", i%8, i)
		writeFile(b, dir, names[i], content(uint64(i), 4096))
		fi, err := root.Stat(names[i])
		if err != nil {
			b.Fatal(err)
		}
		fake.fi[names[i]] = fi
	}
	for _, bc := range []struct {
		name string
		src  Source
	}{{"stat=fake", fake}, {"stat=root", root}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCache(b, DefaultMaxBytes, bc.src)
			ctx := context.Background()
			for _, n := range names {
				if _, err := c.Get(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					obj, err := c.Get(ctx, names[i%files])
					if err != nil || !obj.Hit {
						b.Errorf("Get: hit %v, err %v", obj.Hit, err)
						return
					}
					i += 7
				}
			})
		})
	}
}

// BenchmarkGetStream measures the path of a file that is not cached (cache
// disabled): stat, open, fstat, close.
func BenchmarkGetStream(b *testing.B) {
	dir, root := testRoot(b)
	writeFile(b, dir, "f", content(1, 4096))
	c := newCache(b, 0, root)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			obj, err := c.Get(ctx, "f")
			if err != nil {
				b.Error(err)
				return
			}
			obj.File.Close()
		}
	})
}
