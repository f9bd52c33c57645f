package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH; the end-to-end tests build the binaries with it")
	}
	buildOnce.Do(func() { buildErr = build(gobin) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	return filepath.Join(binDir, "node"+exe), filepath.Join(binDir, "client"+exe)
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
	if binDir, err = os.MkdirTemp("", "relaychain-e2e-bin-"); err != nil {
		return err
	}
	args := []string{"build"}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "-o", binDir+string(filepath.Separator), "./cmd/...")
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// readSources reads every directory, Go file, go.mod and go.sum of the
// module. This package imports none of the code it tests, so without this
// `go test` would replay a cached result after that code changed; the go
// command invalidates a cached test result when a file or directory that
// the test opened has changed.
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
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYCHAIN_") {
			env = append(env, kv)
		}
	}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		env = append(env, "GORACE=atexit_sleep_ms=100")
	}
	return append(env, extra...)
}

// node is a node process.
type node struct {
	name string
	addr string // from its "listening on" line
	cmd  *exec.Cmd
	log  *logBuf
	done chan struct{} // closed once it has exited and err is set
	err  error         // from cmd.Wait
}

// startNode starts the node binary with args (and env added to a clean
// environment) and waits for its "listening on HOST:PORT" line. The node
// is killed, if still running, when the test ends.
func startNode(t *testing.T, bin, name string, env []string, args ...string) *node {
	t.Helper()
	n := &node{name: name, log: newLogBuf(), done: make(chan struct{})}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Env = cleanEnv(env...)
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			n.cmd.Process.Kill()
			select {
			case <-n.done:
			case <-time.After(stopTimeout):
				t.Errorf("%s (pid %d) did not exit after SIGKILL", name, n.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, n.log)
		}
	})
	select {
	case <-n.log.ready:
		n.addr = n.log.addr()
	case <-n.done:
		t.Fatalf("%s exited before listening: %v\n%s", name, n.err, n.log)
	case <-time.After(listenTimeout):
		t.Fatalf("%s printed no \"listening on\" line within %s:\n%s", name, listenTimeout, n.log)
	}
	return n
}

// stop sends SIGTERM and checks that the node exits with status 0.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", n.name, err)
	}
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s still running %s after SIGTERM", n.name, stopTimeout)
	}
	if n.err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0\n%s", n.name, n.err, n.log)
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
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, client, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("client %s: no exit within %s\nstderr: %s", strings.Join(args, " "), clientTimeout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("client %s: %v", strings.Join(args, " "), err)
	}
	return r
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
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
	for line := range strings.Lines(n.log.String()) {
		var rec struct{ Msg, Level string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %q is not JSON: %v", line, err)
		}
		listening = listening || rec.Msg == "listening on "+n.addr && rec.Level == "INFO"
	}
	if !listening {
		t.Errorf("log:\n%s\nwant a JSON record with msg \"listening on %s\"", n.log, n.addr)
	}
	out := t.TempDir()
	ok(t, clientBin, out, "--hop", n.addr, "get", "a.txt")
	sameBytes(t, filepath.Join(out, "a.txt"), []byte("a\n"))
	n.stop(t)

	for _, args := range [][]string{
		{"--listen", "127.0.0.1:0", "--log-format", "xml"},
		{"--listen", "127.0.0.1:0", "--cache-size", "lots"},
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

// logBuf collects a node's output and notices its "listening on" line.
// It is safe for concurrent use.
type logBuf struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	laddr string
	ready chan struct{} // closed once laddr is set
}

// listeningRE matches the line a node logs once it listens, in text
// (msg="listening on 127.0.0.1:7000") or JSON format.
var listeningRE = regexp.MustCompile(`listening on ([^\s"]+)`)

func newLogBuf() *logBuf { return &logBuf{ready: make(chan struct{})} }

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.laddr == "" {
		data := b.buf.Bytes()
		data = data[:bytes.LastIndexByte(data, '\n')+1] // whole lines only
		if m := listeningRE.FindSubmatch(data); m != nil {
			b.laddr = string(m[1])
			close(b.ready)
		}
	}
	return len(p), nil
}

func (b *logBuf) addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.laddr
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
