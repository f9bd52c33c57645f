package yamux

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// rcFailWrites is a connection whose writes fail once fail is set: the
// peer has gone after sending all it had.
type rcFailWrites struct {
	io.ReadWriteCloser
	fail atomic.Bool
}

var errRCWriteFailed = errors.New("write failed: the peer is gone")

func (c *rcFailWrites) Write(b []byte) (int, error) {
	if c.fail.Load() {
		return 0, errRCWriteFailed
	}
	return c.ReadWriteCloser.Write(b)
}

// rcAnsweredStream opens a stream from a session over a connection whose
// writes can be made to fail, has the peer answer the request with data
// and its FIN, and waits until all of it is queued on the stream.
func rcAnsweredStream(t *testing.T, data []byte) (*Stream, *rcFailWrites, *Session) {
	t.Helper()
	a, b := testConnTCP(t)
	fw := &rcFailWrites{ReadWriteCloser: a}
	conf := testConfNoKeepAlive()
	conf.MaxStreamWindowSize = uint32(2 * len(data)) // the whole answer fits
	client, server := testClientServerConfig(t, fw, b, conf, conf.Clone())
	cs, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.WriteClose([]byte("request")); err != nil {
		t.Fatal(err)
	}
	ss, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(ss); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.WriteClose(data); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	finned := func() bool {
		cs.stateLock.Lock()
		defer cs.stateLock.Unlock()
		return cs.state == streamRemoteClose || cs.state == streamClosed
	}
	for cs.Buffered() < len(data) || !finned() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes queued after 5s", cs.Buffered(), len(data))
		}
		time.Sleep(time.Millisecond)
	}
	return cs, fw, server
}

// TestRelaychain_ReadAfterUpdateFails checks that a stream whose answer
// and FIN are all queued gives all of it to its reader, with EOF, when the
// window updates its reads cause can no longer be sent (the peer closed
// the link once it had sent everything, as a node does at shutdown).
// Upstream returned the write error from the Read that sent the update,
// and the rest of the answer was lost.
func TestRelaychain_ReadAfterUpdateFails(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	for _, tc := range []struct {
		name string
		read func(*Stream) ([]byte, error)
	}{
		{"Read", func(s *Stream) ([]byte, error) {
			var out []byte
			b := make([]byte, 4<<10) // many reads, many updates due
			for {
				n, err := s.Read(b)
				out = append(out, b[:n]...)
				if err == io.EOF {
					return out, nil
				}
				if err != nil {
					return out, err
				}
			}
		}},
		{"WriteTo", func(s *Stream) ([]byte, error) {
			var buf bytes.Buffer
			_, err := s.WriteTo(&buf)
			return buf.Bytes(), err
		}},
		{"Relay", func(s *Stream) ([]byte, error) {
			// Relayed on to a third session that works.
			x, y := testConnTCP(t)
			conf := testConfNoKeepAlive()
			out, in := testClientServerConfig(t, x, y, conf, conf.Clone())
			dst, err := out.OpenStream()
			if err != nil {
				return nil, err
			}
			got := make(chan []byte, 1)
			go func() {
				far, err := in.AcceptStream()
				if err != nil {
					got <- nil
					return
				}
				b, _ := io.ReadAll(far)
				got <- b
			}()
			ended := make(chan error, 1)
			s.Relay(dst, 5*time.Second, func(_ int64, err error) { ended <- err })
			if err := <-ended; err != nil {
				return nil, err
			}
			return <-got, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, fw, _ := rcAnsweredStream(t, data)
			fw.fail.Store(true)
			got, err := tc.read(cs)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d of %d bytes, %v; want all and the end", len(got), len(data), err)
			}
		})
	}
}
