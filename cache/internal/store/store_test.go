package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewRejectsNonPositive(t *testing.T) {
	for _, max := range []int64{0, -1} {
		if _, err := New[int](max); err == nil {
			t.Errorf("New(%d): no error", max)
		}
	}
}

func TestAddBoundsAndSizes(t *testing.T) {
	s, err := New[int](100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(&Item[int]{Key: "big", Size: 101}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add(101 bytes into 100): err = %v, want ErrTooLarge", err)
	}
	ok, err := s.Add(&Item[int]{Key: "exact", Size: 100})
	if err != nil || !ok {
		t.Fatalf("Add(exactly the budget) = %v, %v; want kept", ok, err)
	}
	if s.Bytes() != 100 || s.Len() != 1 {
		t.Fatalf("Bytes = %d, Len = %d", s.Bytes(), s.Len())
	}
	// Empty items weigh 1 in the policy so that their number is bounded too.
	for i := range 300 {
		if _, err := s.Add(&Item[int]{Key: fmt.Sprint("empty", i)}); err != nil {
			t.Fatal(err)
		}
		if s.Bytes() > 100 {
			t.Fatalf("Bytes = %d", s.Bytes())
		}
	}
	if s.Len() > 100 {
		t.Fatalf("%d empty items live in a 100-byte store", s.Len())
	}
}

func TestRemoveIsConditional(t *testing.T) {
	s, _ := New[int](100)
	a := &Item[int]{Key: "k", Size: 10, Value: 1}
	b := &Item[int]{Key: "k", Size: 20, Value: 2}
	s.Add(a)
	s.Add(b) // replaces a
	if a.Live() || !b.Live() || s.Bytes() != 20 {
		t.Fatalf("after replace: a live %v, b live %v, bytes %d", a.Live(), b.Live(), s.Bytes())
	}
	if s.Remove(a) {
		t.Fatal("Remove(a) removed the newer b")
	}
	if got, ok := s.Get("k"); !ok || got != b {
		t.Fatal("b not found")
	}
	if !s.Remove(b) || s.Bytes() != 0 || s.Len() != 0 {
		t.Fatalf("Remove(b): bytes %d, len %d", s.Bytes(), s.Len())
	}
}

func TestClear(t *testing.T) {
	s, _ := New[int](100)
	s.Add(&Item[int]{Key: "a", Size: 10})
	s.Clear()
	s.Clear()
	if s.Bytes() != 0 || s.Len() != 0 {
		t.Fatalf("after Clear: bytes %d len %d", s.Bytes(), s.Len())
	}
	if _, err := s.Add(&Item[int]{Key: "b", Size: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Clear: %v", err)
	}
}

// TestBoundUnderConcurrency adds, reads and removes from several goroutines
// while a watcher checks that Bytes never exceeds the budget.
func TestBoundUnderConcurrency(t *testing.T) {
	const budget = 1 << 16
	s, _ := New[int](budget)
	var stop atomic.Bool
	var watch sync.WaitGroup
	watch.Go(func() {
		for !stop.Load() {
			if b := s.Bytes(); b > budget || b < 0 {
				t.Errorf("Bytes = %d, budget %d", b, budget)
				return
			}
		}
	})
	n := 20000
	if testing.Short() {
		n = 3000
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range n {
				key := fmt.Sprint(r.IntN(200))
				if it, ok := s.Get(key); ok {
					if r.IntN(8) == 0 {
						s.Remove(it)
					}
					continue
				}
				if _, err := s.Add(&Item[int]{Key: key, Size: int64(1 + r.IntN(budget/4))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	watch.Wait()
	var sum int64
	var count int64
	for it := range s.All() {
		sum += it.Size
		count++
	}
	if sum != s.Bytes() || count != s.Len() || sum > budget {
		t.Fatalf("live items sum to %d bytes in %d items; Bytes = %d, Len = %d", sum, count, s.Bytes(), s.Len())
	}
	t.Logf("bytes %d, items %d, evictions %d, rejections %d", s.Bytes(), s.Len(), s.Evictions(), s.Rejections())
}
