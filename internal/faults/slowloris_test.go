package faults

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

// Slowloris connections, 50 of each kind.
var lorisKinds = []string{
	"silent",     // connects and sends nothing
	"preface",    // sends the link preface one byte at a time, never all of it
	"raw-header", // a raw link, then the REQUEST one byte at a time
	"mux-header", // a mux link, a stream, then the REQUEST one byte at a time
}

const (
	lorisPerKind  = 50
	lorisDeadline = 2 * time.Second        // the node's --header-timeout
	lorisDrip     = 300 * time.Millisecond // between two bytes
	// lorisSlack is how late after the deadline a cut may be seen.
	lorisSlack = 1500 * time.Millisecond
)

func TestSlowloris(t *testing.T) { testSlowloris(t, procMode) }

// testSlowloris opens 200 slowloris connections to relay0 (directly: the
// node's own deadline is measured) and checks that the node cuts each at
// its header deadline: the connection, or for the mux kind the stream,
// whose link may stay. A normal GET through relay0 completes meanwhile.
func testSlowloris(t *testing.T, m mode) {
	parallelIf(t, m)
	c := newChain(t, chainSpec{relays: 1, mode: m, relay: nodeSpec{headerTimeout: lorisDeadline}, files: []fileSpec{bigFile}})
	target := c.nodes[0].addr

	type result struct {
		kind string
		cut  time.Duration // from the start of the node's deadline to the cut
		err  error
	}
	results := make(chan result, len(lorisKinds)*lorisPerKind)
	var wg sync.WaitGroup
	for _, kind := range lorisKinds {
		for i := 0; i < lorisPerKind; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cut, err := slowloris(kind, target)
				results <- result{kind, cut, err}
			}()
		}
	}
	// A user meanwhile: a large file over a raw link and a small one over
	// the mux, while every slowloris connection is open.
	time.Sleep(lorisDeadline / 4)
	for _, tc := range []struct{ transport, name string }{{"raw", bigFile.name}, {"mux", checkFile.name}} {
		dir := t.TempDir()
		r := c.get(t, []string{"--transport", tc.transport}, dir, tc.name)
		r.ok(t)
		checkOutDir(t, dir, c.want(tc.name), false)
		t.Logf("a user's GET (%s) during the slowloris attack: %s", tc.transport, r.dur.Round(time.Millisecond))
		if r.dur > lorisDeadline {
			t.Errorf("a user's GET (%s) took %s during the attack: it waited for the slowloris connections", tc.transport, r.dur)
		}
	}
	wg.Wait()
	close(results)
	cuts := map[string][]time.Duration{}
	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.kind, r.err)
			continue
		}
		cuts[r.kind] = append(cuts[r.kind], r.cut)
		if r.cut < lorisDeadline-100*time.Millisecond || r.cut > lorisDeadline+lorisSlack {
			t.Errorf("%s: cut after %s; want at the header deadline %s (+%s)", r.kind, r.cut, lorisDeadline, lorisSlack)
		}
	}
	var sum []string
	for _, k := range lorisKinds {
		d := cuts[k]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		if len(d) > 0 {
			sum = append(sum, fmt.Sprintf("%s: %d cut in %s..%s", k, len(d), d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond)))
		}
	}
	t.Logf("header deadline %s: %s", lorisDeadline, strings.Join(sum, "; "))
	c.after(t)
}

// slowloris runs one slowloris connection of kind against addr and returns
// how long after the node's header deadline started it cut the
// connection (or, for mux-header, the stream).
func slowloris(kind, addr string) (time.Duration, error) {
	limit := lorisDeadline + lorisSlack + 3*time.Second // give up waiting
	req, err := (&route.Request{Op: route.OpGet, Route: []string{addr, "127.0.0.1:9"}, Name: "never.bin"}).Append(nil)
	if err != nil {
		return 0, err
	}
	switch kind {
	case "silent", "preface":
		// The node's deadline starts when it has accepted: after start.
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		if kind == "preface" {
			preface := append([]byte(route.Magic), route.Version) // one byte short
			stop := drip(c, preface)
			defer stop()
		}
		return waitCut(c, start, limit)
	case "raw-header":
		// The node's deadline for the REQUEST starts when it has answered
		// the preface: after start.
		start := time.Now()
		c, err := dialPreface(addr, route.ModeRaw)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		stop := drip(c, req)
		defer stop()
		return waitCut(c, start, limit)
	case "mux-header":
		cut := make(chan time.Time, 1)
		m, err := dialMux(addr, func(f yFrame) {
			if f.id == 1 && f.flags&(fFIN|fRST) != 0 {
				select {
				case cut <- time.Now():
				default:
				}
			}
		})
		if err != nil {
			return 0, err
		}
		defer m.close()
		// The stream's deadline starts when the node has accepted it:
		// after start.
		start := time.Now()
		if err := m.write(appendOpen(nil, 1, nil)); err != nil {
			return 0, err
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range req {
				select {
				case <-stop:
					return
				case <-time.After(lorisDrip):
				}
				if m.write(append(yFrame{typ: yData, id: 1, length: 1}.append(nil), b)) != nil {
					return
				}
			}
		}()
		select {
		case at := <-cut:
			return at.Sub(start), nil
		case <-m.done:
			return 0, errors.New("the node closed the whole mux link, not the stream")
		case <-time.After(limit):
			return 0, fmt.Errorf("the stream was not cut within %s", limit)
		}
	}
	return 0, fmt.Errorf("unknown kind %q", kind)
}

// drip writes p to c one byte every lorisDrip until stop is called or a
// write fails.
func drip(c net.Conn, p []byte) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for _, b := range p {
			select {
			case <-done:
				return
			case <-time.After(lorisDrip):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// waitCut reads c until the node closes it, and returns when that was
// after start.
func waitCut(c net.Conn, start time.Time, limit time.Duration) (time.Duration, error) {
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	at := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, fmt.Errorf("the connection was not cut within %s", limit)
	}
	return at, nil
}
