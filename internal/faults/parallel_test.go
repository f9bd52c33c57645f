package faults

import (
	"fmt"
	"testing"
	"time"
)

// TestParallelMixed runs 200 downloads at once through three relays with
// the default transport (auto: the mux under 4 MiB, raw links from 4 MiB):
// 50 client processes of 4 files each (a client fetches up to 4 at once),
// sizes from 0 B to 8 MiB. Every file arrives with its checksum.
func TestParallelMixed(t *testing.T) {
	t.Parallel()
	sizes := []int64{0, 1, 1000, 64<<10 - 1, 256<<10 + 7, 1 << 20, 4<<20 - 1, 4 << 20, 5<<20 + 3, 8 << 20}
	var specs []fileSpec
	for i, s := range sizes {
		specs = append(specs, fileSpec{name: fmt.Sprintf("mixed-%02d-%d.bin", i, s), size: s})
	}
	c := newChain(t, chainSpec{relays: 3, files: specs})
	const procs, perProc = 50, 4
	type run struct {
		r     *clientRun
		dir   string
		names []string
	}
	var runs []run
	start := time.Now()
	var total int64
	for p := 0; p < procs; p++ {
		var names []string
		for k := 0; k < perProc; k++ {
			s := specs[(p*perProc+k)%len(specs)]
			names = append(names, s.name)
			total += s.size
		}
		dir := t.TempDir()
		runs = append(runs, run{startClient(t, nil, c.args(nil, append([]string{"get", "-o", dir}, names...)...)...), dir, names})
	}
	for _, r := range runs {
		r.r.wait(t, 2*clientTimeout).ok(t)
		checkOutDir(t, r.dir, c.want(r.names...), false)
	}
	d := time.Since(start)
	t.Logf("%d downloads, %d MiB, in %s (%.0f MiB/s)", procs*perProc, total>>20, d.Round(time.Millisecond), float64(total)/(1<<20)/d.Seconds())
	// The raw links of the large files stay pooled for reuse: up to 32
	// idle per next hop on the dialing side, held open on the accepting
	// side.
	c.poolSlack = 2 * 32
	c.after(t)
}
