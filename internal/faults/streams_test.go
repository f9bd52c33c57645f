package faults

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

// Bounds of the unread-streams attack.
const (
	// attackRSSAbort stops the attack when a node grows past it: the
	// machine is shared, and this is already far past any bound.
	attackRSSAbort = 3 << 30
	// attackRSSBound is the most RSS a node may reach under the attack.
	attackRSSBound = 1 << 30
	// usersWithin bounds a normal GET during the attack.
	usersWithin = 10 * time.Second
)

// TestUnreadStreams opens 10,000 streams to the first relay of a chain, on
// one mux link or on ten, each with a GET (and its START) for a 1 MiB
// file, and never reads them. The nodes must stay up and their RSS bounded
// (it is reported). With one attacking link (held to --max-streams), a
// normal user's GETs through the same relay must complete meanwhile; with
// ten, which can hold the node-wide cap (--max-streams-total), a user may
// instead be answered busy at once.
func TestUnreadStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ sessions, perSession int }{{1, 10000}, {10, 1000}} {
		t.Run(fmt.Sprintf("%dx%d", tc.sessions, tc.perSession), func(t *testing.T) {
			testUnreadStreams(t, tc.sessions, tc.perSession)
		})
	}
}

func testUnreadStreams(t *testing.T, sessions, perSession int) {
	attack := fileSpec{name: "attack.bin", size: 1 << 20}
	c := newChain(t, chainSpec{relays: 1, files: []fileSpec{attack, bigFile}, maxRSS: attackRSSBound})
	relayN, term := c.nodes[0], c.terminal()
	watched := []*node{relayN, term}
	before, peak := map[*node]int64{}, map[*node]int64{}
	aborted := false
	// watch records the nodes' RSS; it reports false once the attack must
	// stop.
	watch := func() bool {
		for _, n := range watched {
			v, _, err := procStatus(n.pid())
			if err != nil {
				t.Errorf("node %s: %v", n.name, err)
				return false
			}
			if _, ok := before[n]; !ok {
				before[n] = v
			}
			peak[n] = max(peak[n], v)
			if v > attackRSSAbort && !aborted {
				aborted = true
				t.Errorf("node %s: RSS %d MiB under the attack, past %d MiB: attack stopped", n.name, v>>20, attackRSSAbort>>20)
			}
		}
		return !aborted
	}
	watch()

	// The request and its START, sent at once: the terminal starts
	// sending as soon as it has answered.
	req, err := (&route.Request{Op: route.OpGet, Route: []string{relayN.addr, c.route[1]}, Name: attack.name}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	req = route.AppendStart(req, 0)

	var ended atomic.Int64 // streams the node closed or reset (busy, or done)
	var conns []*muxConn
	closeAll := func() {
		for _, m := range conns {
			m.close()
		}
	}
	defer closeAll()
	for s := 0; s < sessions; s++ {
		m, err := dialMux(relayN.addr, func(f yFrame) {
			if f.id != 0 && f.flags&(fFIN|fRST) != 0 {
				ended.Add(1)
			}
		})
		if err != nil {
			t.Fatalf("attack link %d: %v", s, err)
		}
		conns = append(conns, m)
	}
	opened, start := 0, time.Now()
	const batch = 200
	// The node drops a link that holds far more streams open than its
	// --max-streams (2x + 16): then the attack's writes on it fail, which
	// is the defence working; the attack goes on on the other links.
	dropped := map[*muxConn]bool{}
	for i := 0; i < perSession && watch() && len(dropped) < len(conns); i += batch {
		for _, m := range conns {
			if dropped[m] {
				continue
			}
			var b []byte
			k := min(batch, perSession-i)
			for j := i; j < i+k; j++ {
				b = appendOpen(b, uint32(2*j+1), req)
			}
			if err := m.write(b); err != nil {
				if i == 0 {
					t.Fatalf("attack: first write: %v", err)
				}
				t.Logf("the node dropped an attacking link after %d of its streams: %v", i, err)
				dropped[m] = true
				continue
			}
			opened += k
		}
	}
	t.Logf("opened %d unread streams on %d links in %s (%d links dropped by the node)",
		opened, len(conns), time.Since(start).Round(time.Millisecond), len(dropped))

	// Let the nodes take it in, then serve users while watching memory.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && watch(); {
		time.Sleep(100 * time.Millisecond)
	}
	var users sync.WaitGroup
	for _, tr := range []string{"mux", "raw"} {
		if aborted {
			break
		}
		users.Add(1)
		go func() {
			defer users.Done()
			dir := t.TempDir()
			r := startClient(t, nil, c.args([]string{"--transport", tr}, "get", "-o", dir, bigFile.name)...)
			select {
			case <-r.done:
			case <-time.After(usersWithin):
				t.Errorf("a user's GET (%s) during the attack did not end within %s", tr, usersWithin)
				return
			}
			if r.code != 0 && sessions > 1 && strings.Contains(r.stderr.String(), "busy") {
				// Several attacking links can hold the node-wide stream
				// cap (one link cannot): then a user is told busy at
				// once, never queued forever.
				t.Logf("a user's GET (%s) during the attack on %d links was answered busy in %s: %s",
					tr, sessions, r.dur.Round(time.Millisecond), strings.TrimSpace(r.stderr.String()))
				return
			}
			if r.code != 0 {
				t.Errorf("a user's GET (%s) during the attack failed: %s", tr, r.stderr.String())
				return
			}
			t.Logf("a user's GET (%s) of %d bytes during the attack: %s", tr, bigFile.size, r.dur.Round(time.Millisecond))
			checkOutDir(t, dir, c.want(bigFile.name), false)
		}()
	}
	usersDone := make(chan struct{})
	go func() { users.Wait(); close(usersDone) }()
	for waiting := true; waiting; {
		select {
		case <-usersDone:
			waiting = false
		case <-time.After(100 * time.Millisecond):
			if !watch() {
				closeAll() // stop the growth; the users' GETs end with it
				conns = nil
			}
		}
	}
	watch()
	c.checkAlive(t)
	closeAll()
	var received int64
	for _, m := range conns {
		received += m.read
	}
	conns = nil
	report := ""
	for _, n := range watched {
		report += fmt.Sprintf("\n  %s: RSS %d MiB before, %d MiB peak (%d KiB per stream)",
			n.name, before[n]>>20, peak[n]>>20, (peak[n]-before[n])/int64(max(opened, 1))>>10)
	}
	t.Logf("%d unread streams, %d ended by the node (busy, or sent), %d bytes sent to the attacker:%s", opened, ended.Load(), received, report)
	for _, n := range watched {
		if peak[n] > attackRSSBound {
			t.Errorf("node %s: RSS peaked at %d MiB under %d unread streams; want at most %d MiB", n.name, peak[n]>>20, opened, attackRSSBound>>20)
		}
	}
	c.after(t)
}
