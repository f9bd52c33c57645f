package relay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// TestChainCarriesFiles sends every matrix file, and the 200 MiB file,
// through chains of 0, 1, 3 and 8 relays, with Download and with Get, and
// checks that they arrive byte-identical.
func TestChainCarriesFiles(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	var want []testFile
	for _, size := range matrixSizes {
		want = append(want, files[sizeName(size)])
	}
	if testing.Short() {
		t.Log("-short: without the 200 MiB file")
	} else {
		want = append(want, bigFile(t))
	}
	for _, relays := range []int{0, 1, 3, 8} {
		t.Run(fmt.Sprintf("relays=%d", relays), func(t *testing.T) {
			t.Parallel()
			_, rt := chain(t, relays, terminalConfig(root))
			auto := newClient(t, ClientConfig{Route: rt})
			mux := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
			raw := newClient(t, ClientConfig{Route: rt, Transport: TransportRaw})
			ctx := testCtx(t, 5*time.Minute)
			for _, f := range want {
				t.Run(f.Name, func(t *testing.T) {
					// Download with the default transport (raw from
					// DefaultRawThreshold on), Get over each transport.
					if f.Size < bigSize {
						checkDownload(t, ctx, auto, f)
						checkGet(t, ctx, mux, f)
						checkGet(t, ctx, raw, f)
						return
					}
					// 200 MiB through yamux under -race costs 10-60s per
					// chain on two cores: over the mux only through 0 and 8.
					lap := time.Now()
					checkDownload(t, ctx, auto, f)
					t.Logf("%d relays: %s: Download (auto: raw) %v", relays, f.Name, time.Since(lap).Round(time.Millisecond))
					lap = time.Now()
					checkGet(t, ctx, raw, f)
					t.Logf("%d relays: %s: Get (raw) %v", relays, f.Name, time.Since(lap).Round(time.Millisecond))
					if relays == 0 || relays == 8 {
						lap = time.Now()
						checkGet(t, ctx, mux, f)
						t.Logf("%d relays: %s: Get (mux) %v", relays, f.Name, time.Since(lap).Round(time.Millisecond))
					}
				})
			}
		})
	}
}

// TestConcurrentGets runs 100 concurrent gets of mixed files through 3
// relays over one client with the default transport.
func TestConcurrentGets(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	var mix []testFile
	// The medium file is above DefaultRawThreshold: those gets switch from
	// the mux to pooled raw links mid-request.
	for _, size := range append(append([]int64{mediumSize}, matrixSizes...), mixedSizes...) {
		mix = append(mix, files[sizeName(size)])
	}
	_, rt := chain(t, 3, terminalConfig(root))
	c := newClient(t, ClientConfig{Route: rt})
	ctx := testCtx(t, 2*time.Minute)

	const n = 100
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		f := mix[i%len(mix)]
		wg.Go(func() {
			sum, got, info, err := getSum(ctx, c, f.Name)
			switch {
			case err != nil:
				errs <- fmt.Errorf("get %d %s: %w", i, f.Name, err)
			case got != f.Size || info.Size != f.Size:
				errs <- fmt.Errorf("get %d %s: got %d bytes (announced %d), want %d", i, f.Name, got, info.Size, f.Size)
			case sum != f.Sum:
				errs <- fmt.Errorf("get %d %s: got sha256 %x, want %x", i, f.Name, sum, f.Sum)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRouteRevisitsNode sends a request through one relay 15 times over
// (a route of 16 hops, the default maximum): the relay dials itself.
func TestRouteRevisitsNode(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	nodes, _ := chain(t, 1, terminalConfig(root))
	rt := make(route.Route, 0, route.DefaultMaxHops)
	for range route.DefaultMaxHops - 1 {
		rt = append(rt, nodes[0].Addr)
	}
	rt = append(rt, nodes[1].Addr)
	c := newClient(t, ClientConfig{Route: rt})
	checkGet(t, testCtx(t, time.Minute), c, files[sizeName(64<<10+1)])
}

// TestStatAndListings checks the metadata operations through 3 relays: a
// file's stat, the recursive listing, and the cache listing, which shows
// exactly the files fetched (over the mux, over raw links, with Download),
// and not those only stat'ed or never asked for.
func TestStatAndListings(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	content := map[string]string{
		"hello.txt":        "hello, relaychain\n",
		"a.bin":            strings.Repeat("a", 1000),
		"b.bin":            strings.Repeat("b", 300_000),
		"sub/nested.txt":   "nested\n",
		"sub/deeper/c.bin": strings.Repeat("c", 64<<10+1),
		"stat-only.txt":    "stat me\n",
		"never.txt":        "never fetched\n",
	}
	for name, data := range content {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, rt := chain(t, 3, terminalConfig(root))
	mux := newClient(t, ClientConfig{Route: rt, Transport: TransportMux})
	raw := newClient(t, ClientConfig{Route: rt, Transport: TransportRaw})
	ctx := testCtx(t, time.Minute)
	// listing renders entries as name:size, with a * for cached ones.
	listing := func(es []route.Entry) string {
		var b strings.Builder
		for _, e := range es {
			fmt.Fprintf(&b, "%s:%d", e.Name, e.Size)
			if e.Cached {
				b.WriteString("*")
			}
			b.WriteString(" ")
		}
		return strings.TrimSpace(b.String())
	}

	fi, err := mux.Stat(ctx, "stat-only.txt")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if want := int64(len(content["stat-only.txt"])); fi.Size != want || fi.Cached {
		t.Errorf("Stat stat-only.txt: got size %d cached %v, want %d false", fi.Size, fi.Cached, want)
	}
	ls, err := mux.Ls(ctx)
	if err != nil {
		t.Fatalf("Ls: %v", err)
	}
	const wantLs = "a.bin:1000 b.bin:300000 hello.txt:18 never.txt:14 stat-only.txt:8 sub/deeper/c.bin:65537 sub/nested.txt:7"
	if got := listing(ls); got != wantLs {
		t.Errorf("Ls:\n got %s\nwant %s", got, wantLs)
	}
	if list, err := mux.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List before any Get: got %q, %v; want nothing", listing(list), err)
	}

	fetch := []struct {
		c    *Client
		name string
		dl   bool // with Download rather than Get
	}{
		{mux, "hello.txt", false},
		{raw, "sub/nested.txt", false},
		{mux, "a.bin", true},
		{raw, "sub/deeper/c.bin", true},
		{mux, "hello.txt", false}, // a hit: listed once
	}
	for _, f := range fetch {
		want := testFile{Name: f.name, Size: int64(len(content[f.name])), Sum: sha256.Sum256([]byte(content[f.name]))}
		if f.dl {
			// Download names the file by its base name.
			dir := t.TempDir()
			path, _, err := f.c.Download(ctx, f.name, dir, nil)
			if err != nil {
				t.Fatalf("Download %s: %v", f.name, err)
			}
			if sum, n := fileSum(t, path); sum != want.Sum || n != want.Size {
				t.Errorf("Download %s: got %d bytes, sha256 %x; want %d, %x", f.name, n, sum, want.Size, want.Sum)
			}
			continue
		}
		checkGet(t, ctx, f.c, want)
	}

	list, err := raw.List(ctx) // a listing always goes over the mux
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var fetched []string
	for _, f := range fetch {
		fetched = append(fetched, f.name)
	}
	slices.Sort(fetched)
	if got, want := entryNames(list), slices.Compact(fetched); !slices.Equal(got, want) {
		t.Errorf("List after the fetches: got %q, want exactly what was fetched, %q", got, want)
	}
	const wantList = "a.bin:1000* hello.txt:18* sub/deeper/c.bin:65537* sub/nested.txt:7*"
	if got := listing(list); got != wantList {
		t.Errorf("List after the fetches:\n got %s\nwant %s", got, wantList)
	}
	for name, cached := range map[string]bool{"hello.txt": true, "sub/deeper/c.bin": true, "stat-only.txt": false, "b.bin": false} {
		if fi, err := mux.Stat(ctx, name); err != nil || fi.Cached != cached {
			t.Errorf("Stat %s after the fetches: got cached %v, err %v; want %v, nil", name, fi.Cached, err, cached)
		}
	}
}

func entryNames(es []route.Entry) []string {
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}

// TestCacheOff serves the matrix files from a terminal with its cache
// turned off (CacheSize 0): every file is streamed from disk.
func TestCacheOff(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	_, rt := chain(t, 1, Config{Root: root, CacheSize: 0})
	for _, tp := range transports {
		c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
		ctx := testCtx(t, time.Minute)
		for _, size := range matrixSizes {
			t.Run(fmt.Sprintf("%s/%d", tp.name, size), func(t *testing.T) {
				if size == 0 && emptyFilePanicsWithCacheOff(t) {
					t.Fatal("bug (regressed): cache.Get panics (nil store) for an empty file when caching is off")
				}
				checkGet(t, ctx, c, files[sizeName(size)])
			})
		}
	}
}

// emptyFilePanicsWithCacheOff reports whether cache.Get still panics for
// an empty file with caching off, which would crash the test binary from
// inside a node. (singleflight re-panics in the caller, so it is caught.)
func emptyFilePanicsWithCacheOff(t *testing.T) (panicked bool) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	c, err := cache.New(cache.Config{MaxBytes: 0, Source: root})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	obj, err := c.Get(context.Background(), "empty")
	if err == nil && obj.File != nil {
		obj.File.Close()
	}
	return false
}
