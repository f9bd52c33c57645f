package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relaychain/relaychain/route"
)

// TestMiddleRelayKilled closes the middle relay of three while a large
// download is in progress: the client fails within seconds and leaves
// neither the file nor a temporary file behind.
func TestMiddleRelayKilled(t *testing.T) {
	t.Parallel()
	root, _ := sharedFiles(t)
	big := bigFile(t)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			nodes, rt := chain(t, 3, terminalConfig(root))
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			dir := t.TempDir()
			gate := newGate(nil, 4<<20)
			type result struct {
				path string
				err  error
			}
			done := make(chan result, 1)
			go func() {
				path, _, err := c.Download(testCtx(t, 2*time.Minute), big.Name, dir, func(_ FileInfo, w io.Writer) io.Writer {
					gate.w = w
					return gate
				})
				done <- result{path, err}
			}()
			select {
			case <-gate.reached:
			case r := <-done:
				t.Fatalf("Download ended before 4 MiB: %v", r.err)
			case <-time.After(time.Minute):
				t.Fatal("Download did not reach 4 MiB within a minute")
			}

			killed := time.Now()
			closed := make(chan error, 1)
			go func() { closed <- nodes[1].Close() }()
			close(gate.release)

			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Download still running 30s after the middle relay was closed")
			}
			if d := time.Since(killed); d > 5*time.Second {
				t.Errorf("Download failed %v after the kill, want < 5s", d)
			}
			if r.err == nil {
				t.Fatalf("Download: got success (%s), want an error", r.path)
			}
			t.Logf("Download error: %v", r.err)
			if errors.Is(r.err, ErrDigest) {
				t.Errorf("got a digest error, want a truncation or hop error: %v", r.err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after the failed Download: got %q in the directory, want nothing", names)
			}
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("Close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("closing the middle relay took more than 5s")
			}
		})
	}
}

// TestClientIdleTimeout stalls a request after a relay (its next hop is a
// fake node that completes the preface and then says nothing) and at the
// terminal (whose file source blocks): the client gives up after its idle
// timeout.
func TestClientIdleTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	mute := func(c net.Conn, rec io.Writer) {
		c.SetDeadline(time.Now().Add(time.Minute))
		var in [prefaceSize]byte
		if _, err := io.ReadFull(c, in[:]); err == nil {
			rec.Write(in[:])
			c.Write([]byte(acceptorOK))
		}
		recordAll(c, rec)
	}
	for _, tp := range transports {
		t.Run(tp.name+"/mute-next-hop", func(t *testing.T) {
			t.Parallel()
			a := startNode(t, Config{})
			fake := startFake(t, mute)
			c := newClient(t, ClientConfig{Route: route.Route{a.Addr, fake.Addr}, Transport: tp.tr, Timeout: timeout})
			start := time.Now()
			err := getErr(t, c, "hello.txt")
			wantTimeout(t, err, time.Since(start), timeout)
		})
		t.Run(tp.name+"/stalled-terminal", func(t *testing.T) {
			t.Parallel()
			root, err := os.OpenRoot("testdata/root")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { root.Close() })
			src := &blockingSource{Root: root, gate: make(chan struct{})}
			term := startNode(t, Config{Source: src, CacheSize: -1})
			t.Cleanup(func() { close(src.gate) }) // runs before the node closes
			c := newClient(t, ClientConfig{Route: route.Route{term.Addr}, Transport: tp.tr, Timeout: timeout})
			start := time.Now()
			err = getErr(t, c, "hello.txt")
			wantTimeout(t, err, time.Since(start), timeout)
		})
	}
}

func wantTimeout(t *testing.T, err error, took, timeout time.Duration) {
	t.Helper()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "no data for "+timeout.String()) {
		t.Errorf("got message %q, want it to say %q", err, "no data for "+timeout.String())
	}
	if took < timeout*3/4 || took > timeout+time.Second {
		t.Errorf("failed after %v, want about the %v idle timeout (at most +1s)", took, timeout)
	}
}

// blockingSource is a file source whose Open blocks until gate is closed.
type blockingSource struct {
	*os.Root
	gate chan struct{}
}

func (s *blockingSource) Open(name string) (*os.File, error) {
	<-s.gate
	return s.Root.Open(name)
}

func (s *blockingSource) Stat(name string) (fs.FileInfo, error) { return s.Root.Stat(name) }

// TestCancelGet cancels the context of a Get mid-transfer: Get returns at
// once and, once the nodes are closed, no goroutine is left. It is not
// parallel, so that goleak sees this test alone.
func TestCancelGet(t *testing.T) {
	root, files := sharedFiles(t)
	f := files[sizeName(mediumSize)]
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			nodes, rt := chain(t, 1, terminalConfig(root))
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var canceled time.Time
			w := &cancelWriter{after: 1 << 20, cancel: func() { canceled = time.Now(); cancel() }}
			_, err := c.Get(ctx, f.Name, w, nil)
			took := time.Since(canceled)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if canceled.IsZero() {
				t.Fatalf("Get returned before 1 MiB was written: %v", err)
			}
			if took > 2*time.Second {
				t.Errorf("Get returned %v after the cancel, want promptly", took)
			}
			if w.n >= f.Size {
				t.Errorf("got all %d bytes written, want the transfer cut short", w.n)
			}
			// The nodes go on serving.
			checkGet(t, testCtx(t, time.Minute), c, files[sizeName(64<<10)])

			c.Close()
			for _, n := range nodes {
				n.Close()
			}
			goleak.VerifyNone(t)
		})
	}
}

// chanOf returns a channel closed once ch yields a value.
func chanOf[T any](ch <-chan T) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

type cancelWriter struct {
	after  int64
	n      int64
	cancel func()
	once   sync.Once
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n >= w.after {
		w.once.Do(w.cancel)
	}
	return len(p), nil
}

// TestShutdownDrains shuts a relay down while a transfer goes through it:
// the transfer completes, and new links are refused from the start of the
// shutdown on.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	f := files[sizeName(mediumSize)]
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			nodes, rt := chain(t, 1, terminalConfig(root))
			a := nodes[0]
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})

			h := sha256.New()
			gate := newGate(h, 1<<20)
			got := make(chan error, 1)
			go func() {
				_, err := c.Get(testCtx(t, 2*time.Minute), f.Name, gate, nil)
				got <- err
			}()
			waitFor(t, gate.reached, time.Minute, "1 MiB received")

			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				shut <- a.Shutdown(ctx)
			}()
			// New links are refused once the listener is closed.
			deadline := time.Now().Add(5 * time.Second)
			for {
				conn, err := net.DialTimeout("tcp", a.Addr, time.Second)
				if err != nil {
					break
				}
				conn.Close()
				if time.Now().After(deadline) {
					t.Fatal("the draining relay still accepts connections after 5s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			late := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			err := getErr(t, late, "hello.txt")
			wantHopError(t, err, ErrUnreachable, 0, a.Addr, "refused")
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned %v with a transfer in flight", err)
			default:
			}

			close(gate.release)
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("in-flight Get: %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("in-flight Get did not finish within a minute")
			}
			if sum := h.Sum(nil); string(sum) != string(f.Sum[:]) {
				t.Errorf("in-flight Get: got sha256 %x, want %x", sum, f.Sum)
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return after the transfer")
			}
			err = getErr(t, newClient(t, ClientConfig{Route: rt, Transport: tp.tr}), "hello.txt")
			wantHopError(t, err, ErrUnreachable, 0, a.Addr, "refused")
		})
	}
}

// TestCloseStopsStalledRelay closes a relay while a request waits on a
// next hop that completed the preface and then says nothing: Close must
// not wait for the relay's idle timeout.
func TestCloseStopsStalledRelay(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			// Started first so that its cleanup runs after the relay's.
			fake := startFake(t, func(c net.Conn, rec io.Writer) {
				c.SetDeadline(time.Now().Add(time.Minute))
				var in [prefaceSize]byte
				if _, err := io.ReadFull(c, in[:]); err == nil {
					rec.Write(in[:])
					c.Write([]byte(acceptorOK))
				}
				recordAll(c, rec)
			})
			a := startNode(t, Config{})
			c := newClient(t, ClientConfig{Route: route.Route{a.Addr, fake.Addr}, Transport: tp.tr})
			done := make(chan error, 1)
			go func() { done <- getErr(t, c, "hello.txt") }()
			// Wait until the request reached the fake.
			deadline := time.Now().Add(10 * time.Second)
			for len(fake.received()) <= prefaceSize+len("hello.txt") {
				if time.Now().After(deadline) {
					t.Fatalf("the request did not reach the next hop: got %q", fake.received())
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			closed := make(chan error, 1)
			go func() { closed <- a.Close() }()
			select {
			case <-closed:
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Close took %v, want < 2s", d)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Close still blocked after 5s by a request waiting on a silent next hop, want < 2s")
				fake.closeConns() // unblock it, so that the test ends
				waitFor(t, chanOf(closed), 10*time.Second, "Close after the next hop hung up")
			}
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("Get: got success, want an error")
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Get still running 5s after the relay closed")
			}
		})
	}
}

// TestClientCloseFailsInFlight closes a client while a Get is in flight:
// the Get fails promptly, as Close documents.
func TestClientCloseFailsInFlight(t *testing.T) {
	t.Parallel()
	root, files := sharedFiles(t)
	f := files[sizeName(mediumSize)]
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			_, rt := chain(t, 1, terminalConfig(root))
			c := newClient(t, ClientConfig{Route: rt, Transport: tp.tr})
			gate, done := getHeld(t, c, f.Name, 1<<20)
			c.Close()
			start := time.Now()
			close(gate.release)
			wantGetFailed(t, done, 10*time.Second, "Close")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Get failed %v after Close, want promptly", d)
			}
		})
	}
}
