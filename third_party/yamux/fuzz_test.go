package yamux

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// fuzzConn is a connection that reads the fuzz input and discards writes.
type fuzzConn struct{ r *bytes.Reader }

func (c fuzzConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c fuzzConn) Write(p []byte) (int, error) { return len(p), nil }
func (c fuzzConn) Close() error                { return nil }

// frame encodes one yamux frame header followed by body.
func frame(typ uint8, flags uint16, id, length uint32, body []byte) []byte {
	h := header(make([]byte, headerSize))
	h.encode(typ, flags, id, length)
	return append(h, body...)
}

// FuzzSessionRecv feeds arbitrary bytes to a session as what its peer
// sent (relaychain patch: the receive path is relaychain's code now). The
// session must neither panic nor hang: it ends at the input's end or at
// the first protocol error. The first byte picks the options.
func FuzzSessionRecv(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		fuzzSessionRecv(t, fuzzConn{bytes.NewReader(data[1:])}, data[0]&1 == 1)
	})
}

// fuzzSeeds adds the seed inputs of the session fuzz targets.
func fuzzSeeds(f *testing.F) {
	syn := frame(typeData, flagSYN, 1, 5, []byte("hello"))
	f.Add(append([]byte{0}, syn...))
	f.Add(append([]byte{1}, syn...))
	f.Add(append([]byte{1}, append(syn, frame(typeData, flagFIN, 1, 3, []byte("bye"))...)...))
	f.Add(append([]byte{1}, append(frame(typeWindowUpdate, flagSYN, 3, 1<<20, nil), frame(typeData, flagFIN, 3, 2, []byte("ok"))...)...))
	f.Add(append([]byte{0}, frame(typePing, flagSYN, 0, 7, nil)...))
	f.Add(append([]byte{0}, frame(typeGoAway, 0, 0, goAwayNormal, nil)...))
	f.Add(append([]byte{1}, frame(typeData, flagSYN|flagRST, 5, 1, []byte("x"))...))
	f.Add(append([]byte{0}, frame(typeData, flagSYN, 7, 300<<10, make([]byte, 300<<10))...))
}

// fuzzSessionRecv runs a server session over conn, which brings what its
// peer sent, until the session ends; it fails if the session hangs.
func fuzzSessionRecv(t *testing.T, conn io.ReadWriteCloser, lazy bool) {
	conf := DefaultConfig()
	conf.LogOutput = io.Discard
	conf.EnableKeepAlive = false
	conf.LazyOpen = lazy
	conf.StreamCloseTimeout = 0
	s, err := Server(conn, conf)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- s.ServeStreams(func(st *Stream) {
			go func() {
				io.Copy(io.Discard, st)
				st.Close()
			}()
		})
	}()
	select {
	case <-s.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end at the end of its input")
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStreams did not return after the session ended")
	}
}
