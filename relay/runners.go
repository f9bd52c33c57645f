package relay

import (
	"fmt"
	"sync"
	"time"

	"github.com/panjf2000/ants/v2"
)

// Pooled goroutines for the short tasks of every request: serving a stream
// at the terminal, and moving a relayed stream's frames (yamux's
// Config.Go). A new goroutine starts with the smallest stack and grows it
// by copying, several times for these tasks: at 64 concurrent small GETs
// that was 12% of a relay's CPU and 20% of the terminal's (BENCHMARKS.md,
// "Goroutines that keep their stacks"). A pooled goroutine keeps its grown
// stack from one task to the next.
const (
	// maxRunners bounds the pooled goroutines of a node, idle or busy; a
	// task beyond them gets a goroutine of its own. It bounds the stacks
	// that idle runners hold.
	maxRunners = 64
	// runnerIdle is how long a runner may wait for a task before it
	// exits, freeing its stack; the pool looks every runnerIdle, so an
	// idle runner is gone within twice that.
	runnerIdle = 2 * time.Second
	// runnersStop bounds how long Close waits for busy runners to finish
	// once every link is closed.
	runnersStop = 5 * time.Second
)

// ants starts a default pool when it is imported, with two goroutines
// that wake twice a second for the life of the process. relaychain does not
// use it: stop it (as gnet, by the author of ants, does).
func init() { ants.Release() }

// runners starts a node's tasks on pooled goroutines (ants), from the
// first task until Close, and on goroutines of their own when the pool is
// full or closed. While it exists the pool has two goroutines of its own,
// which look for idle runners every runnerIdle and update its clock every
// 500 ms.
type runners struct {
	// mu is held for reading while a task is handed to the pool, and for
	// writing to make or stop it, so that close never stops a pool in the
	// middle of a hand-over (which would leave a runner it does not wait
	// for).
	mu     sync.RWMutex
	pool   *ants.Pool // nil before the first task and after close
	closed bool
}

// start runs f on a pooled goroutine, or on a new one when the pool is
// full (it does not block: Nonblocking), closed, or could not be made. The
// first task makes the pool.
func (r *runners) start(f func()) {
	r.mu.RLock()
	if r.pool == nil && !r.closed {
		r.mu.RUnlock()
		r.open()
		r.mu.RLock()
	}
	err := ants.ErrPoolClosed
	if r.pool != nil {
		err = r.pool.Submit(f)
	}
	r.mu.RUnlock()
	if err != nil {
		go f()
	}
}

// open makes the pool unless it exists or was closed. If it cannot be
// made, every task gets a goroutine of its own, as before the pool.
func (r *runners) open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pool == nil && !r.closed {
		r.pool, _ = ants.NewPool(maxRunners,
			ants.WithNonblocking(true),
			ants.WithExpiryDuration(runnerIdle),
			ants.WithPanicHandler(repanic))
	}
}

// close stops the pool: idle runners exit at once, busy ones after their
// task, waited for up to timeout. Tasks that got goroutines of their own
// are not waited for. Later tasks get goroutines of their own.
func (r *runners) close(timeout time.Duration) error {
	r.mu.Lock()
	p := r.pool
	r.pool, r.closed = nil, true
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.ReleaseTimeout(timeout); err != nil {
		return fmt.Errorf("stop pooled goroutines: %w", err)
	}
	return nil
}

// running returns the pool's goroutines, busy or idle (0 before the first
// task and after close).
func (r *runners) running() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.pool == nil {
		return 0
	}
	return r.pool.Running()
}

// repanic crashes the process on a task's panic, as a goroutine of its own
// would: the pool recovers the panic and calls this on the panicking
// goroutine, whose frames the crash's traceback then still shows.
func repanic(p any) { panic(p) }
