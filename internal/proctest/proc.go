package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// Proc is a child process started by Start, with its output in Log.
type Proc struct {
	Name string    // what messages call it
	Cmd  *exec.Cmd // the command, started
	Log  *LogBuf   // its standard output and error

	done chan struct{} // closed once it has exited and err is set
	err  error         // from Cmd.Wait
}

// Start points cmd's standard output and error at a new LogBuf, starts
// cmd, and waits for it in the background. name is what messages call it.
func Start(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, Cmd: cmd, Log: NewLogBuf(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns what Cmd.Wait returned. Call it only once Done is closed.
func (p *Proc) Err() error { return p.err }

// TB is the part of testing.TB that StartNode and Run use; *testing.T and
// *testing.B satisfy it. It is declared here so that this package does
// not import testing.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// StartNode is for tests. It starts a node's cmd as Start does and waits
// up to listenTimeout for its "listening on" line, failing the test if the
// node cannot start, exits first or prints no such line. When the test
// ends the node is killed if still running and waited for up to
// killTimeout, and its log is logged if the test failed.
func StartNode(t TB, name string, cmd *exec.Cmd, listenTimeout, killTimeout time.Duration) *Proc {
	t.Helper()
	p, err := Start(name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(killTimeout):
				t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.Cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.Log)
		}
	})
	select {
	case <-p.Log.Ready():
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", name, p.err, p.Log)
	case <-time.After(listenTimeout):
		t.Fatalf("%s printed no \"listening on\" line within %s:\n%s", name, listenTimeout, p.Log)
	}
	return p
}

// Result is what a command run by Run did.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status
}

// Run is for tests. It runs the command that newCmd makes with a context
// that is done after timeout, and returns its standard output and error
// and its exit status. It fails the test if the command cannot be run or
// has not exited within timeout; what names the command in those messages.
func Run(t TB, what string, timeout time.Duration, newCmd func(context.Context) *exec.Cmd) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := newCmd(ctx)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: no exit within %s\nstderr: %s", what, timeout, r.Stderr)
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", what, err)
	}
	return r
}
