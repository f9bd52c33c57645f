package yamux

import "sync/atomic"

// notifier is a stream's wake-up channel for a reader waiting for data or
// a writer waiting for window, made at the first wait (relaychain patch).
// A relayed stream (Relay) is never waited on, and a relay with 10,000
// streams held 20,000 such channels that nobody used. A waiter takes the
// channel (wait) before it checks, once more, what it waits for, and a
// notifier changes that before it looks for the channel (notify): either
// the check sees the change, or the notify sees the channel, so no wake-up
// is lost.
type notifier struct {
	ch atomic.Pointer[chan struct{}]
}

// wait returns the channel, made at the first call.
func (n *notifier) wait() chan struct{} {
	if p := n.ch.Load(); p != nil {
		return *p
	}
	c := make(chan struct{}, 1)
	if n.ch.CompareAndSwap(nil, &c) {
		return c
	}
	return *n.ch.Load()
}

// notify wakes the waiter, if any, without blocking.
func (n *notifier) notify() {
	if p := n.ch.Load(); p != nil {
		asyncNotify(*p)
	}
}
