package relay

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// countingSource counts the files opened through it.
type countingSource struct {
	*os.Root
	opens atomic.Int64
}

func (s *countingSource) Open(name string) (*os.File, error) {
	s.opens.Add(1)
	return s.Root.Open(name)
}

// TestRawHitSendfile: a large hit fetched over a raw link goes out from the
// file (one more open per hit, for sendfile), a mux hit from the cache (no
// open), and both arrive whole and verified by SHA-256.
func TestRawHitSendfile(t *testing.T) {
	dir := t.TempDir()
	f, err := genFile(dir, "big.bin", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	src := &countingSource{Root: root}
	_, rt := chain(t, 1, Config{Source: src, CacheSize: 64 << 20})
	ctx := testCtx(t, 30*time.Second)
	fetch := func(tr Transport, wantCached bool) int64 {
		t.Helper()
		c := newClient(t, ClientConfig{Route: rt, Transport: tr, Verify: VerifySHA256})
		before := src.opens.Load()
		sum, n, info, err := getSum(ctx, c, "big.bin")
		if err != nil {
			t.Fatalf("get over %v: %v", tr, err)
		}
		if sum != f.Sum || n != f.Size || info.Cached != wantCached {
			t.Fatalf("get over %v: %d bytes, sum %x cached %v; want %d, %x, %v", tr, n, sum, info.Cached, f.Size, f.Sum, wantCached)
		}
		return src.opens.Load() - before
	}
	fetch(TransportRaw, true) // loads the cache
	if opened := fetch(TransportRaw, true); opened != 1 {
		t.Errorf("raw hit opened the file %d times, want 1 (sendfile from the file)", opened)
	}
	if opened := fetch(TransportMux, true); opened != 0 {
		t.Errorf("mux hit opened the file %d times, want 0 (written from the cache)", opened)
	}
}
