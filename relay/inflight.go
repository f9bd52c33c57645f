package relay

import "sync"

// inflight counts requests in progress. Unlike a sync.WaitGroup, requests
// may start while someone waits for the count to reach zero.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n reaches zero, if someone waits
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// zero returns a channel closed once no request is in progress.
func (f *inflight) zero() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	if f.n == 0 {
		close(ch)
	} else if f.idle != nil {
		ch = f.idle
	} else {
		f.idle = ch
	}
	return ch
}
