package relay_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaychain/relaychain/relay"
	"github.com/relaychain/relaychain/route"
)

// benchChain starts a terminal serving dir with the given cache size and
// relays in front of it, and returns the route.
func benchChain(b testing.TB, dir string, cacheSize int64, relays int) route.Route {
	b.Helper()
	start := func(cfg relay.Config) string {
		n, err := relay.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go n.Serve(ln)
		b.Cleanup(func() { n.Close() })
		return ln.Addr().String()
	}
	rt := route.Route{start(relay.Config{Root: dir, CacheSize: cacheSize})}
	for i := 0; i < relays; i++ {
		rt = append(route.Route{start(relay.Config{})}, rt...)
	}
	return rt
}

// BenchmarkGet1MiB compares a 1 MiB cache hit with a 1 MiB miss (read from
// disk on every request, cache off) through 3 relays over the mux.
//
//	go test -run '^$' -bench Get1MiB -benchtime 200x ./relay/
func BenchmarkGet1MiB(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		cache int64
	}{{"hit", 64 << 20}, {"miss", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			cl, err := relay.NewClient(relay.ClientConfig{Route: benchChain(b, dir, bc.cache, 3), Transport: relay.TransportMux})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			if _, err := cl.Get(ctx, "f.bin", io.Discard, nil); err != nil { // warm links and cache
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fi, err := cl.Get(ctx, "f.bin", io.Discard, nil)
				if err != nil {
					b.Fatal(err)
				}
				if fi.Cached != (bc.cache > 0) {
					b.Fatalf("cached = %v, want %v", fi.Cached, bc.cache > 0)
				}
			}
		})
	}
}

// BenchmarkSmallGet fetches a cached 4 KiB file through 3 relays over the
// mux, 32 requests in flight per CPU, as the bench's small-GET table does.
//
//	go test -run '^$' -bench SmallGet ./relay/
func BenchmarkSmallGet(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.bin"), make([]byte, 4<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	cl, err := relay.NewClient(relay.ClientConfig{Route: benchChain(b, dir, 64<<20, 3)})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := cl.Get(ctx, "s.bin", io.Discard, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.Get(ctx, "s.bin", io.Discard, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
