package faults

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH; the fault suite builds the binaries with it")
	}
	bins.once.Do(func() { bins.err = build(gobin) })
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

func build(gobin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("go env GOMOD: not inside the module")
	}
	root := filepath.Dir(gomod)
	if err := readSources(root); err != nil {
		return err
	}
	if bins.dir, err = os.MkdirTemp("", "relaychain-faults-bin-"); err != nil {
		return err
	}
	args := []string{"build", "-o", bins.dir + string(filepath.Separator), "./cmd/node", "./cmd/client", "./cmd/mkcerts"}
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	bins.node = filepath.Join(bins.dir, "node")
	bins.client = filepath.Join(bins.dir, "client")
	bins.mkcerts = filepath.Join(bins.dir, "mkcerts")
	return nil
}

// readSources reads every Go file, go.mod and go.sum of the module. The
// suite runs binaries rather than importing most of what it tests, so
// without this `go test` would replay a cached result after that code
// changed; the go command keys a cached test result on the files the test
// opened.
func readSources(root string) error {
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		if e.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			_, err = os.ReadFile(path)
		}
		return err
	})
}
