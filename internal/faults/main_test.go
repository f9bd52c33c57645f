package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

// Bounds on every wait.
const (
	buildTimeout   = 5 * time.Minute
	installTimeout = 6 * time.Minute  // go install of toxiproxy, downloads included
	listenTimeout  = 20 * time.Second // for "listening on"
	clientTimeout  = 90 * time.Second // for one client command
	settleTimeout  = 5 * time.Second  // for descriptors to come back to baseline
)

// defaultParallel is how many cases run at once unless -parallel is given:
// most cases wait on timers and slow links, not on the CPU.
const defaultParallel = 4

// helperEnv, when set, makes the test binary a helper process instead of
// running tests (see runHelper).
const helperEnv = "RELAYCHAIN_FAULTS_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", fmt.Sprint(defaultParallel))
	}
	code := m.Run()
	stopToxiproxy()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// bins holds the binaries, built once per test binary.
var bins struct {
	once                  sync.Once
	dir                   string
	node, client, mkcerts string
	err                   error
}

// binaries builds cmd/node, cmd/client and cmd/mkcerts once. It skips the
// test where the suite cannot run at all.
func binaries(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the fault suite reads /proc and runs Linux tools; it runs on Linux only")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH; the fault suite builds the binaries with it")
	}
	bins.once.Do(func() { bins.err = build() })
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

func build() error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var err error
	bins.dir, err = proctest.BuildTemp(ctx, "relaychain-faults-bin-", false, "./cmd/node", "./cmd/client", "./cmd/mkcerts")
	if err != nil {
		return err
	}
	bins.node = filepath.Join(bins.dir, "node")
	bins.client = filepath.Join(bins.dir, "client")
	bins.mkcerts = filepath.Join(bins.dir, "mkcerts")
	return nil
}
