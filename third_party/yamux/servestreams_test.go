package yamux

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeStreams: every stream reaches the handler, with LazyOpen (on
// the receive loop) and without (through AcceptStream), its data arrives,
// and ServeStreams returns after the session closes, with no handler call
// after it returned.
func TestServeStreams(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		name := "eager"
		if lazy {
			name = "lazy"
		}
		t.Run(name, func(t *testing.T) {
			conf := testConf()
			conf.LazyOpen = lazy
			cc, sc := testConnTCP(t)
			client, server := testClientServerConfig(t, cc, sc, conf, conf.Clone())
			const n = 50
			var handled, after atomic.Int64
			var returned atomic.Bool
			var wg sync.WaitGroup
			wg.Add(n)
			done := make(chan error, 1)
			go func() {
				done <- server.ServeStreams(func(st *Stream) {
					if returned.Load() {
						after.Add(1)
					}
					handled.Add(1)
					go func() {
						defer wg.Done()
						defer st.Close()
						b, err := io.ReadAll(st)
						if err != nil || string(b) != "ping" {
							t.Errorf("stream %d read %q, %v", st.StreamID(), b, err)
							return
						}
						st.Write([]byte("pong"))
					}()
				})
				returned.Store(true)
			}()
			for i := 0; i < n; i++ {
				st, err := client.OpenStream()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.WriteClose([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				st.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, err := io.ReadAll(st)
				if err != nil || string(b) != "pong" {
					t.Fatalf("stream %d answered %q, %v", i, b, err)
				}
				st.Close()
			}
			wg.Wait()
			if got := handled.Load(); got != n {
				t.Fatalf("handler saw %d streams, want %d", got, n)
			}
			server.Close()
			select {
			case err := <-done:
				if err != ErrSessionShutdown {
					t.Fatalf("ServeStreams returned %v, want %v", err, ErrSessionShutdown)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ServeStreams did not return after Close")
			}
			if after.Load() != 0 {
				t.Fatalf("%d handler calls after ServeStreams returned", after.Load())
			}
		})
	}
}
