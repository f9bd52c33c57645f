package relay

import (
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/relaychain/relaychain/cache"
)

// discard is an io.Writer that keeps nothing, like io.Discard, without
// io.Discard's ReaderFrom.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestSendBodyHitAllocs: a cache hit is written from the cached slice with
// no allocation.
func TestSendBodyHitAllocs(t *testing.T) {
	n, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	obj := &cache.Object{Name: "hit", Size: int64(len(data)), ModTime: time.Now(), Data: data, SHA256: sha256.Sum256(data), Hit: true}
	var w io.Writer = discard{}
	if sent, err := n.sendBody(w, obj, 0, nil); err != nil || sent != obj.Size {
		t.Fatalf("sendBody: got %d, %v; want %d, nil", sent, err, obj.Size)
	}
	// Under -race, sync.Pool drops a quarter of Puts, so a pooled buffer is
	// sometimes allocated afresh; AllocsPerRun's integer average stays 0
	// unless the path itself allocates.
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := n.sendBody(w, obj, 0, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("sendBody of a cache hit: got %v allocations, want 0", allocs)
	}
}
