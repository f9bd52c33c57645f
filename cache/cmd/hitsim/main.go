// Command hitsim prints the hit-ratio tables of the file cache's eviction
// policy against FIFO, LRU and the ancestors' "larger first" policy, on
// synthetic Zipf traces of log-normally sized files.
//
//	go run ./cache/cmd/hitsim            # the full run (a few minutes on 2 cores)
//	go run ./cache/cmd/hitsim -short     # a seconds-long smoke run
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relaychain/relaychain/cache/internal/hitsim"
)

func main() {
	var (
		files    = flag.Int("files", 20000, "distinct files")
		median   = flag.Float64("median", 32<<10, "median file size, bytes")
		sigma    = flag.Float64("sigma", 1.5, "sigma of the log-normal file size")
		budget   = flag.Int64("budget", 64<<20, "cache budget, bytes")
		requests = flag.Int("requests", 2_000_000, "requests per trace")
		seeds    = flag.Int("seeds", 3, "seeds per configuration")
		sList    = flag.String("s", "0.9,1.0,1.2", "Zipf exponents")
		huge     = flag.Float64("huge", 0.01, "fraction of huge (4-256 MiB) files in the second variant; 0 skips it")
		short    = flag.Bool("short", false, "small smoke run: 2,000 files, 6.4 MiB budget, 100,000 requests, 1 seed")
	)
	flag.Parse()
	if *short {
		*files, *budget, *requests, *seeds = 2000, 64<<20/10, 100_000, 1
	}
	var ss []float64
	for f := range strings.SplitSeq(*sList, ",") {
		s, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			log.Fatalf("hitsim: -s: %v", err)
		}
		ss = append(ss, s)
	}
	seedList := make([]uint64, *seeds)
	for i := range seedList {
		seedList[i] = uint64(i + 1)
	}
	variants := []struct {
		name string
		frac float64
	}{{"log-normal sizes", 0}}
	if *huge > 0 {
		variants = append(variants, struct {
			name string
			frac float64
		}{fmt.Sprintf("log-normal sizes, %.3g%% huge files (4-256 MiB)", 100**huge), *huge})
	}

	fmt.Printf("%d files, median %.0f B, sigma %.2f, budget %d B, %d requests (first 10%% warm-up), seeds %v\n",
		*files, *median, *sigma, *budget, *requests, seedList)
	for _, v := range variants {
		fmt.Printf("\n### %s\n\n", v.name)
		fmt.Println("| s | policy | object hit % (min-max) | byte hit % (min-max) | object Δ vs LRU | byte Δ vs LRU |")
		fmt.Println("|---|---|---|---|---|---|")
		for _, s := range ss {
			start := time.Now()
			cells, err := hitsim.Simulate(hitsim.Config{
				Workload: hitsim.Workload{
					Files: *files, Median: *median, Sigma: *sigma,
					HugeFrac: v.frac, HugeMin: 4 << 20, HugeMax: 256 << 20,
					S: s, Requests: *requests,
				},
				Capacity: *budget,
				Seeds:    seedList,
				Policies: hitsim.Policies,
				WarmFrac: 0.1,
			})
			if err != nil {
				log.Fatal(err)
			}
			var lru hitsim.Cell
			for _, c := range cells {
				if c.Policy == "LRU" {
					lru = c
				}
			}
			for _, c := range cells {
				fmt.Printf("| %.1f | %s | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %+.2f | %+.2f |\n", s, c.Policy,
					100*c.ObjectHit, 100*c.ObjectMin, 100*c.ObjectMax,
					100*c.ByteHit, 100*c.ByteMin, 100*c.ByteMax,
					100*(c.ObjectHit-lru.ObjectHit), 100*(c.ByteHit-lru.ByteHit))
			}
			fmt.Fprintf(os.Stderr, "s=%.1f %s: %v\n", s, v.name, time.Since(start).Round(time.Millisecond))
		}
	}
}
