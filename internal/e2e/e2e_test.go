package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaychain/relaychain/internal/proctest"
)

// Bounds on every wait.
const (
	buildTimeout  = 5 * time.Minute
	listenTimeout = 20 * time.Second // for "listening on" (race builds start slowly)
	stopTimeout   = 20 * time.Second // for exit after SIGTERM
	clientTimeout = 60 * time.Second // for one client command
)

var (
	buildOnce sync.Once
	binDir    string // holds node and client once built
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/node and cmd/client once per test binary run (with
// -race when the tests run with -race) and returns their paths. It skips
// the test when the go command is not on PATH.
func binaries(t *testing.T) (node, client string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH; the end-to-end tests build the binaries with it")
	}
	buildOnce.Do(func() { buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	return filepath.Join(binDir, "node"+exe), filepath.Join(binDir, "client"+exe)
}

func build() error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var err error
	binDir, err = proctest.BuildTemp(ctx, "relaychain-e2e-bin-", raceEnabled(), "./cmd/...")
	return err
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// cleanEnv is the environment without RELAYCHAIN_* variables, plus extra.
// Unless GORACE is set, a race-enabled binary waits 100ms rather than the
// default 1s at exit for late race reports.
func cleanEnv(extra ...string) []string {
	if _, ok := os.LookupEnv("GORACE"); !ok {
		extra = append([]string{"GORACE=atexit_sleep_ms=100"}, extra...)
	}
	return proctest.CleanEnv(extra...)
}

// node is a node process.
type node struct {
	*proctest.Proc
	addr string // from its "listening on" line
}

// startNode starts the node binary with args (and env added to a clean
// environment) and waits for its "listening on HOST:PORT" line. The node
// is killed, if still running, when the test ends.
func startNode(t *testing.T, bin, name string, env []string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv(env...)
	p := proctest.StartNode(t, name, cmd, listenTimeout, stopTimeout)
	return &node{Proc: p, addr: p.Log.Addr()}
}

// stop sends SIGTERM and checks that the node exits with status 0.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", n.Name, err)
	}
	select {
	case <-n.Done():
	case <-time.After(stopTimeout):
		t.Fatalf("%s still running %s after SIGTERM", n.Name, stopTimeout)
	}
	if n.Err() != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0\n%s", n.Name, n.Err(), n.Log)
	}
}

// result is what a client command did.
type result struct {
	stdout, stderr string
	code           int // exit status
}

// run runs the client binary in dir with args and returns its output and
// exit status. It fails the test if the client cannot be run or hangs.
func run(t *testing.T, client, dir string, env []string, args ...string) result {
	t.Helper()
	r := proctest.Run(t, "client "+strings.Join(args, " "), clientTimeout, func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, client, args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv(env...)
		return cmd
	})
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

// ok runs the client and fails the test unless it exits 0.
func ok(t *testing.T, client, dir string, args ...string) result {
	t.Helper()
	r := run(t, client, dir, nil, args...)
	if r.code != 0 {
		t.Fatalf("client %s: exit status %d, want 0\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// fails runs the client, checks that it exits non-zero and that stderr
// contains every one of wants, and returns stderr.
func fails(t *testing.T, client, dir string, args []string, wants ...string) string {
	t.Helper()
	r := run(t, client, dir, nil, args...)
	if r.code == 0 {
		t.Errorf("client %s: exit status 0, want a failure\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("client %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	if r.code != 0 && !strings.HasPrefix(r.stderr, "client: ") {
		t.Errorf("client %s: stderr %q, want it to start with \"client: \"", strings.Join(args, " "), r.stderr)
	}
	return r.stderr
}

// closedAddr returns a loopback host:port that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}

// hostPort splits addr into "HOST PORT", the other form a route file takes.
func hostPort(t *testing.T, addr string) string {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h + " " + p
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameBytes checks that the file at path holds want.
func sameBytes(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("downloaded file: %v", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes, want %d bytes; contents differ", path, len(got), len(want))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'e', '2', 'e'})
	r.Read(b)
	return b
}

// TestChain runs an origin and two relays and uses every client command
// through them, then stops the nodes with SIGTERM.
func TestChain(t *testing.T) {
	t.Parallel()
	nodeBin, clientBin := binaries(t)

	files := map[string][]byte{
		"hello.txt":       []byte("hello, relaychain\n"),
		"sub/nested.txt":  []byte("nested file\n"),
		"big.bin":         randomBytes(3<<20 + 12345),
		"large.bin":       randomBytes(6<<20 + 7), // over the client's 4 MiB threshold for raw links
		"empty.txt":       {},
		"with space.txt":  []byte("a name with a space\n"),
		"sub/deeper/x.md": []byte("# x\n"),
	}
	root := t.TempDir()
	for name, data := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
	}

	origin := startNode(t, nodeBin, "origin", nil, "--listen", "127.0.0.1:0", "--root", root)
	relayA := startNode(t, nodeBin, "relay A", nil, "--listen", "127.0.0.1:0")
	relayB := startNode(t, nodeBin, "relay B", nil, "--listen", "127.0.0.1:0")
	nodes := []*node{origin, relayA, relayB}

	// A route file in every accepted style: comments, blank lines, CRLF,
	// HOST:PORT and HOST PORT.
	work := t.TempDir()
	routeFile := filepath.Join(work, "routes.txt")
	writeFile(t, routeFile, []byte("# two relays, then the origin\r\n\r\n"+
		relayA.addr+"   # relay A\r\n"+
		hostPort(t, relayB.addr)+"\r\n"+
		origin.addr+" # origin\r\n"))
	r := []string{"--route", routeFile, "--timeout", "20s"}

	t.Run("get", func(t *testing.T) {
		out := t.TempDir()
		res := ok(t, clientBin, work, append(r, "get", "-o", out, "hello.txt")...)
		sameBytes(t, filepath.Join(out, "hello.txt"), files["hello.txt"])
		if want := fmt.Sprintf("hello.txt\t%d bytes\t", len(files["hello.txt"])); !strings.HasPrefix(res.stdout, want) {
			t.Errorf("stdout %q, want it to start with %q", res.stdout, want)
		}
	})

	t.Run("get several", func(t *testing.T) {
		out := t.TempDir()
		res := ok(t, clientBin, work, append(r, "get", "-o", out, "big.bin", "sub/nested.txt", "empty.txt", "with space.txt")...)
		sameBytes(t, filepath.Join(out, "big.bin"), files["big.bin"])
		sameBytes(t, filepath.Join(out, "nested.txt"), files["sub/nested.txt"])
		sameBytes(t, filepath.Join(out, "empty.txt"), files["empty.txt"])
		sameBytes(t, filepath.Join(out, "with space.txt"), files["with space.txt"])
		if n := strings.Count(res.stdout, "\n"); n != 4 {
			t.Errorf("stdout has %d lines, want 4 (one per file):\n%s", n, res.stdout)
		}
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".part") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	})

	for _, transport := range []string{"auto", "mux", "raw"} {
		t.Run("get --transport "+transport, func(t *testing.T) {
			out := t.TempDir()
			ok(t, clientBin, work, append(r, "--transport", transport, "get", "-o", out, "large.bin", "hello.txt")...)
			sameBytes(t, filepath.Join(out, "large.bin"), files["large.bin"])
			sameBytes(t, filepath.Join(out, "hello.txt"), files["hello.txt"])
		})
	}

	t.Run("get quiet", func(t *testing.T) {
		out := t.TempDir()
		res := ok(t, clientBin, work, append(r, "get", "-o", out, "--quiet", "hello.txt")...)
		if res.stdout != "" || res.stderr != "" {
			t.Errorf("get --quiet printed stdout %q stderr %q, want nothing", res.stdout, res.stderr)
		}
		sameBytes(t, filepath.Join(out, "hello.txt"), files["hello.txt"])
	})

	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)

	t.Run("ls", func(t *testing.T) {
		res := ok(t, clientBin, work, append(r, "ls")...)
		var want strings.Builder
		for _, name := range names {
			fmt.Fprintf(&want, "%s\t%d\n", name, len(files[name]))
		}
		if res.stdout != want.String() {
			t.Errorf("ls:\ngot:\n%s\nwant:\n%s", res.stdout, want.String())
		}
	})

	type entry struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	t.Run("ls --json", func(t *testing.T) {
		res := ok(t, clientBin, work, append(r, "ls", "--json")...)
		var got []entry
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("ls --json: %v\n%s", err, res.stdout)
		}
		var want []entry
		for _, name := range names {
			want = append(want, entry{name, int64(len(files[name]))})
		}
		if !slices.Equal(got, want) {
			t.Errorf("ls --json:\ngot  %v\nwant %v", got, want)
		}
	})

	t.Run("list", func(t *testing.T) {
		// hello.txt has been fetched, and the cache is far from full.
		res := ok(t, clientBin, work, append(r, "list", "--json")...)
		var got []entry
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("list --json: %v\n%s", err, res.stdout)
		}
		if !slices.Contains(got, entry{"hello.txt", int64(len(files["hello.txt"]))}) {
			t.Errorf("list --json = %v, want it to hold hello.txt", got)
		}
		for _, e := range got {
			if data, ok := files[e.Name]; !ok || int64(len(data)) != e.Size {
				t.Errorf("list --json holds %v, which the origin does not serve", e)
			}
		}
		text := ok(t, clientBin, work, append(r, "list")...)
		if want := fmt.Sprintf("hello.txt\t%d\n", len(files["hello.txt"])); !strings.Contains(text.stdout, want) {
			t.Errorf("list = %q, want a line %q", text.stdout, want)
		}
	})

	t.Run("stat", func(t *testing.T) {
		res := ok(t, clientBin, work, append(r, "stat", "big.bin")...)
		fi, err := os.Stat(filepath.Join(root, "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if len(lines) != 4 || lines[0] != "name\tbig.bin" ||
			!strings.HasPrefix(lines[1], fmt.Sprintf("size\t%d (", fi.Size())) ||
			!strings.HasPrefix(lines[2], "mtime\t") || !strings.HasPrefix(lines[3], "cached\t") {
			t.Fatalf("stat big.bin:\n%s\nwant lines name, size, mtime, cached", res.stdout)
		}
		mtime, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(lines[2], "mtime\t"))
		if err != nil || !mtime.Equal(fi.ModTime()) {
			t.Errorf("stat mtime %q (%v), want %v", lines[2], err, fi.ModTime())
		}
	})

	t.Run("missing file", func(t *testing.T) {
		out := t.TempDir()
		fails(t, clientBin, work, append(r, "get", "-o", out, "missing.txt"), "not found", "missing.txt", "hop 2 ("+origin.addr+")")
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("a failed get left %d entries in the output directory", len(entries))
		}
		fails(t, clientBin, work, append(r, "stat", "missing.txt"), "not found", "missing.txt")
	})

	t.Run("one of several missing", func(t *testing.T) {
		out := t.TempDir()
		fails(t, clientBin, work, append(r, "get", "-o", out, "hello.txt", "missing.txt"), "missing.txt", "1 of 2 files failed")
		sameBytes(t, filepath.Join(out, "hello.txt"), files["hello.txt"])
	})

	t.Run("closed port", func(t *testing.T) {
		dead := closedAddr(t)
		mid := filepath.Join(work, "dead-middle.txt")
		writeFile(t, mid, []byte(relayA.addr+"\n"+dead+"\n"+origin.addr+"\n"))
		fails(t, clientBin, work, []string{"--route", mid, "get", "-o", t.TempDir(), "hello.txt"}, "hop 1 ("+dead+")", "refused")
		first := filepath.Join(work, "dead-first.txt")
		writeFile(t, first, []byte(dead+"\n"+origin.addr+"\n"))
		fails(t, clientBin, work, []string{"--route", first, "ls"}, "hop 0 ("+dead+")", "refused")
	})

	t.Run("classic input file", func(t *testing.T) {
		out := t.TempDir() // get saves into the working directory by default
		input := filepath.Join(work, "input.txt")
		writeFile(t, input, []byte("hello.txt\n"+hostPort(t, relayA.addr)+"\n"+hostPort(t, relayB.addr)+"\n"+hostPort(t, origin.addr)+"\n"))
		res := ok(t, clientBin, out, "--route", input, "get")
		sameBytes(t, filepath.Join(out, "hello.txt"), files["hello.txt"])
		if !strings.HasPrefix(res.stdout, "hello.txt\t") {
			t.Errorf("stdout %q, want it to start with hello.txt", res.stdout)
		}
		// Names on the command line win over the file's.
		ok(t, clientBin, out, "--route", input, "get", "sub/nested.txt")
		sameBytes(t, filepath.Join(out, "nested.txt"), files["sub/nested.txt"])
	})

	t.Run("hop flags and env", func(t *testing.T) {
		res := ok(t, clientBin, work, "--hop", relayA.addr, "--hop", relayB.addr, "--hop", origin.addr, "stat", "hello.txt")
		if !strings.HasPrefix(res.stdout, "name\thello.txt\n") {
			t.Errorf("stat via --hop: %q", res.stdout)
		}
		env := run(t, clientBin, work, []string{"RELAYCHAIN_ROUTE=" + routeFile}, "ls")
		if env.code != 0 || !strings.Contains(env.stdout, "hello.txt\t") {
			t.Errorf("ls with RELAYCHAIN_ROUTE: exit %d, stdout %q, stderr %q", env.code, env.stdout, env.stderr)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		fails(t, clientBin, work, append(r, "get", "-o", t.TempDir(), "../outside.txt"), "..")
		fails(t, clientBin, work, append(r, "stat", "sub"), "not a regular file")
		fails(t, clientBin, work, []string{"--hop", relayA.addr, "--hop", relayB.addr, "get", "-o", t.TempDir(), "hello.txt"},
			"hop 1 ("+relayB.addr+")", "serves no files")
		fails(t, clientBin, work, []string{"get", "hello.txt"}, "no route")
		fails(t, clientBin, work, append(r, "get", "-o", filepath.Join(work, "no-such-dir"), "hello.txt"), "not a directory")
		bad := filepath.Join(work, "bad.txt")
		writeFile(t, bad, []byte(relayA.addr+"\n127.0.0.1:70x0\n"))
		fails(t, clientBin, work, []string{"--route", bad, "ls"}, bad+":2:", "70x0")
	})

	// Every node exits 0 on SIGTERM, relays first.
	for _, n := range slices.Backward(nodes) {
		n.stop(t)
	}
}

// TestNodeSettings checks the node's environment variables, its JSON log
// and how it reports a bad setting.
func TestNodeSettings(t *testing.T) {
	t.Parallel()
	nodeBin, clientBin := binaries(t)

	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), []byte("a\n"))
	n := startNode(t, nodeBin, "origin", []string{
		"RELAYCHAIN_LISTEN=127.0.0.1:0",
		"RELAYCHAIN_ROOT=" + root,
		"RELAYCHAIN_LOG_FORMAT=json",
	})
	listening := false
	for line := range strings.Lines(n.Log.String()) {
		var rec struct{ Msg, Level string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
		}
		listening = listening || rec.Msg == "listening on "+n.addr && rec.Level == "INFO"
	}
	if !listening {
		t.Errorf("log:\n%s\nwant a JSON record with msg \"listening on %s\"", n.Log, n.addr)
	}
	out := t.TempDir()
	ok(t, clientBin, out, "--hop", n.addr, "get", "a.txt")
	sameBytes(t, filepath.Join(out, "a.txt"), []byte("a\n"))
	n.stop(t)

	for _, args := range [][]string{
		{"--listen", "127.0.0.1:0", "--log-format", "xml"},
		{"--listen", "127.0.0.1:0", "--cache-size", "lots"},
		{"--listen", "127.0.0.1:0", "--stream-window-max", "2GiB"},
		{"--listen", "127.0.0.1:0", "--window-budget", "lots"},
		{"--listen", "127.0.0.1:0", "extra-argument"},
		{"--listen", "not-an-address"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		cmd := exec.CommandContext(ctx, nodeBin, args...)
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.HasPrefix(stderr.String(), "node: ") {
			t.Errorf("node %s: %v, stderr %q; want exit status 1 and a \"node: \" message", strings.Join(args, " "), err, stderr.String())
		}
	}
}
