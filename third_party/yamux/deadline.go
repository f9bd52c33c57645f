package yamux

import (
	"sync/atomic"
	"time"
)

// deadline is a stream's read or write deadline (relaychain patch). Upstream
// kept a time.Time in an atomic.Value, and every Store boxed it: an
// allocation for each SetReadDeadline and, on a relay, for each frame
// passed on (the idle rule moves the deadline). It holds the time as an
// offset from deadlineEpoch instead; 0 is no deadline.
type deadline struct{ v atomic.Int64 }

// deadlineEpoch is what deadlines are offsets from. It has a monotonic
// clock reading, so the times Load returns do too.
var deadlineEpoch = time.Now()

// encodeDeadline returns the value of t in a deadline.
func encodeDeadline(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	v := int64(t.Sub(deadlineEpoch)) // saturates far from the epoch
	if v == 0 {
		v = 1 // 0 is no deadline
	}
	return v
}

// Store sets the deadline; the zero time removes it.
func (d *deadline) Store(t time.Time) { d.v.Store(encodeDeadline(t)) }

// Load returns the deadline, or the zero time when there is none.
func (d *deadline) Load() time.Time { return decodeDeadline(d.v.Load()) }

// raw returns the deadline's value, for CompareAndSwap.
func (d *deadline) raw() int64 { return d.v.Load() }

// CompareAndSwap sets the deadline to t if it still has the value old (from
// raw), and reports whether it did.
func (d *deadline) CompareAndSwap(old int64, t time.Time) bool {
	return d.v.CompareAndSwap(old, encodeDeadline(t))
}

// decodeDeadline returns the time of a deadline's value v.
func decodeDeadline(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return deadlineEpoch.Add(time.Duration(v))
}
