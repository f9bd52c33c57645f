package faults

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientRun is one client process.
type clientRun struct {
	argv           []string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	start          time.Time
	done           chan struct{}
	code           int           // exit code, -1 when killed by a signal
	dur            time.Duration // from start to exit
}

// startClient starts the client with args, prefixed by wrap (for instance
// "ip netns exec NS", or a shell that sets a ulimit).
func startClient(t testing.TB, wrap []string, args ...string) *clientRun {
	t.Helper()
	binaries(t)
	r := &clientRun{argv: append(append(append([]string{}, wrap...), bins.client), args...), done: make(chan struct{})}
	r.cmd = exec.Command(r.argv[0], r.argv[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	go func() {
		err := r.cmd.Wait()
		r.dur = time.Since(r.start)
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			r.code = ee.ExitCode()
		default:
			r.code = -2
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// runClient runs the client to its end.
func runClient(t testing.TB, args ...string) *clientRun {
	t.Helper()
	return startClient(t, nil, args...).wait(t, clientTimeout)
}

// wait waits for the client to exit, failing the test (and killing it)
// when it has not within d.
func (r *clientRun) wait(t testing.TB, d time.Duration) *clientRun {
	t.Helper()
	select {
	case <-r.done:
		return r
	case <-time.After(d):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("client did not exit within %s: %s\nstderr: %s", d, r, tail(r.stderr.String(), 2000))
		return r
	}
}

// exited reports whether the client has exited.
func (r *clientRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *clientRun) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to client: %v", sig, err)
	}
}

func (r *clientRun) String() string {
	return fmt.Sprintf("client %s", strings.Join(r.argv[len(r.argv)-min(len(r.argv), 12):], " "))
}

// ok fails the test unless the client exited 0.
func (r *clientRun) ok(t testing.TB) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, want 0\nstdout: %s\nstderr: %s", r, r.code, r.stdout.String(), r.stderr.String())
	}
}

// failed checks that the client failed: a non-zero exit, no success line
// on stdout, and stderr matching want (a case-insensitive regexp).
func (r *clientRun) failed(t testing.TB, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("%s: exit 0, want a failure (%s)\nstdout: %s", r, want, r.stdout.String())
	}
	if s := r.stdout.String(); s != "" {
		t.Errorf("%s failed but printed on stdout (a success line?): %q", r, s)
	}
	if !matches(want, r.stderr.String()) {
		t.Errorf("%s: stderr %q, want it to match %s", r, strings.TrimSpace(r.stderr.String()), want)
	}
}

// waitProgress waits until a file in dir holds at least n bytes: the
// transfer is under way. It fails the test when the client ends first.
func waitProgress(t testing.TB, r *clientRun, dir string, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() >= n {
				return
			}
		}
		if r.exited() {
			t.Fatalf("%s ended (exit %d) before %d bytes arrived: %s", r, r.code, n, r.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d bytes in %s after %s", r, n, dir, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileSpec is a file to generate under a terminal's root.
type fileSpec struct {
	name   string
	size   int64
	sparse bool // a hole of zeros: fast to make, its checksum not computed
}

// genFile is a generated file and its SHA-256.
type genFile struct {
	name string
	size int64
	sum  [32]byte
}

// writeFiles writes pseudo-random files (seeded by their names) under root.
func writeFiles(t testing.TB, root string, specs []fileSpec) map[string]genFile {
	t.Helper()
	out := map[string]genFile{}
	for _, s := range specs {
		p := filepath.Join(root, s.name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		g := genFile{name: s.name, size: s.size}
		if s.sparse {
			err = f.Truncate(s.size)
		} else {
			h := sha256.New()
			_, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8(sha256.Sum256([]byte(s.name))), s.size))
			h.Sum(g.sum[:0])
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		out[s.name] = g
	}
	return out
}

// checkOutDir checks a client's output directory: the files of want are
// there, complete and with their checksums; nothing else is, except, when
// partialOK, NAME.partial and NAME.partial.json of a resumable download.
func checkOutDir(t testing.TB, dir string, want map[string]genFile, partialOK bool) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		fi, _ := e.Info()
		g, ok := want[name]
		switch {
		case ok:
			seen[name] = true
			if sum, size, err := sha256File(filepath.Join(dir, name)); err != nil {
				t.Errorf("%s: %v", name, err)
			} else if size != g.size || sum != g.sum {
				t.Errorf("%s: %d bytes, SHA-256 %x; want %d bytes, %x", name, size, sum[:8], g.size, g.sum[:8])
			}
		case partialOK && (strings.HasSuffix(name, ".partial") || strings.HasSuffix(name, ".partial.json")):
		default:
			size := int64(-1)
			if fi != nil {
				size = fi.Size()
			}
			t.Errorf("%s: unexpected %s left behind (%d bytes)", dir, name, size)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: %s missing", dir, name)
		}
	}
}

func sha256File(p string) (sum [32]byte, size int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	h.Sum(sum[:0])
	return sum, size, err
}
