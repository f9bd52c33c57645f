package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process the bench started. Its output goes to a log
// file (not a pipe, so that a busy node never waits on the bench to read
// its per-request log lines).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	addr string // host:port it listens on, once known

	done    chan struct{} // closed when the process has exited
	exitErr error
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last few lines of the process's log, for error messages.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// procs starts and tracks child processes; kill ends them all. It is safe
// for concurrent use.
type procs struct {
	dir string

	mu     sync.Mutex
	n      int
	live   []*proc
	all    []*proc // every process started, for checks
	closed bool
}

// start runs argv with its output in a log file under the work directory.
// Each child gets its own process group (so that socat's and nginx's own
// children are ended with it) and SIGKILL when the bench dies.
func (ps *procs) start(name string, argv []string, env []string) (*proc, error) {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return nil, errors.New("bench: shutting down")
	}
	ps.n++
	logPath := filepath.Join(ps.dir, fmt.Sprintf("%03d-%s.log", ps.n, sanitize(name)))
	ps.mu.Unlock()

	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, errors.New("bench: shutting down")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	ps.live = append(ps.live, p)
	ps.all = append(ps.all, p)
	return p, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func sanitize(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// stop ends one process (and its process group) and waits for it.
func (ps *procs) stop(p *proc) {
	killGroup(p)
	<-p.done
	ps.mu.Lock()
	for i, q := range ps.live {
		if q == p {
			ps.live = append(ps.live[:i], ps.live[i+1:]...)
			break
		}
	}
	ps.mu.Unlock()
}

// killAll ends every process still running and refuses new ones. It waits
// at most a few seconds for them to be reaped.
func (ps *procs) killAll() {
	ps.mu.Lock()
	ps.closed = true
	live := ps.live
	ps.live = nil
	ps.mu.Unlock()
	for _, p := range live {
		killGroup(p)
	}
	timeout := time.After(10 * time.Second)
	for _, p := range live {
		select {
		case <-p.done:
		case <-timeout:
			return
		}
	}
}

// killGroup sends SIGKILL to the process group the child leads (it was
// started with Setpgid, so the group id is its pid), and to the child.
func killGroup(p *proc) {
	if p.exited() {
		return
	}
	pid := p.pid()
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
}

var listenRE = regexp.MustCompile(`listening on ([0-9A-Za-z.:\[\]]+)`)

// waitListening waits until the process has logged "listening on ADDR"
// (as node and the bench's own roles do) and records ADDR.
func waitListening(ctx context.Context, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(p.log); err == nil {
			if m := listenRE.FindSubmatch(b); m != nil {
				p.addr = string(m[1])
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited before listening (%v): %s", p.name, p.exitErr, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen within %s: %s", p.name, timeout, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitDial waits until addr accepts TCP connections (for processes that do
// not log their address: socat, nginx).
func waitDial(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			p.addr = addr
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v): %s", p.name, p.exitErr, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not accepting within %s: %v: %s", p.name, addr, timeout, err, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// rss returns the resident set size of process pid in bytes, from
// /proc/PID/status (VmRSS).
func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) < 1 {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// buildNode builds ./cmd/node into dir and returns the binary's path.
func buildNode(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "node")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/relaychain/relaychain/cmd/node")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/node: %w\n%s", err, b)
	}
	return out, nil
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuTime returns the user + system CPU time of process pid, all its
// threads, from /proc/PID/stat (0 when it cannot be read).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime, stime are 14, 15
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * clockTick
}

// cpuTimes sums cpuTime over pids.
func cpuTimes(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		d += cpuTime(p)
	}
	return d
}

// selfCPU returns this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
