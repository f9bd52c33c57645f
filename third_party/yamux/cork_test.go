//go:build linux || darwin || openbsd

package yamux

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// rcCorkDst returns a client session over TCP whose peer is the bare
// connection returned with it, for reading what the session writes frame
// by frame.
func rcCorkDst(t *testing.T) (*Session, net.Conn) {
	c, p := testConnTCP(t)
	s, err := Client(c, rcConf())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, p.(net.Conn)
}

// rcCorkFrom returns a stand-in for the session whose receive loop passes
// frames on: its reader holds buffered, as if read already.
func rcCorkFrom(t *testing.T, buffered []byte) *Session {
	from := &Session{bufRead: bufio.NewReader(bytes.NewReader(buffered))}
	if len(buffered) > 0 {
		if _, err := from.bufRead.Peek(len(buffered)); err != nil {
			t.Fatal(err)
		}
	}
	return from
}

// rcWireFrame is a frame as read from the wire.
type rcWireFrame struct {
	typ   uint8
	flags uint16
	id    uint32
	body  string
}

// rcReadFrames reads frames from the bare peer p until none comes for
// quiet.
func rcReadFrames(t *testing.T, p net.Conn, quiet time.Duration) []rcWireFrame {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		p.SetReadDeadline(time.Now().Add(quiet))
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			t.Fatalf("reading the peer: %v", err)
		}
	}
	var frames []rcWireFrame
	for len(got) > 0 {
		if len(got) < headerSize {
			t.Fatalf("%d bytes left, less than a header", len(got))
		}
		h := header(got[:headerSize])
		f := rcWireFrame{typ: h.MsgType(), flags: h.Flags(), id: h.StreamID()}
		got = got[headerSize:]
		if f.typ == typeData {
			f.body, got = string(got[:h.Length()]), got[h.Length():]
		}
		frames = append(frames, f)
	}
	return frames
}

// rcDataFrames keeps the data frames of frames.
func rcDataFrames(frames []rcWireFrame) []rcWireFrame {
	var out []rcWireFrame
	for _, f := range frames {
		if f.typ == typeData {
			out = append(out, f)
		}
	}
	return out
}

// TestRelaychain_Cork_JoinsAndFlushes passes three frames on while the
// receive loop's next frame is read already: none is written until the
// flush, which writes them in one go, in order; another stream's writer
// of the same session waits meanwhile and goes after them.
func TestRelaychain_Cork_JoinsAndFlushes(t *testing.T) {
	dst, peer := rcCorkDst(t)
	st1, st2 := rcOpen(t, dst), rcOpen(t, dst)
	if f := rcReadFrames(t, peer, 100*time.Millisecond); len(f) != 2 {
		t.Fatalf("got %d frames for the two opens, want their 2 SYNs", len(f))
	}
	from := rcCorkFrom(t, frame(typeWindowUpdate, 0, 9, 0, nil))

	for i, part := range []string{"abc", "def"} {
		if err := st1.sendNoWait([]byte(part), false, from); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if dst.cork.by.Load() != from || len(from.cork.corked) != 1 || len(dst.writeSem) != 1 {
		t.Fatalf("not corked: by %p (want %p), %d corked, writeSem %d",
			dst.cork.by.Load(), from, len(from.cork.corked), len(dst.writeSem))
	}
	other := rcAsync(func() error {
		_, err := st2.Write([]byte("zzz"))
		return err
	})
	if err := st1.sendNoWait([]byte("ghi"), true, from); err != nil {
		t.Fatalf("last frame: %v", err)
	}
	rcNotDone(t, other, 100*time.Millisecond, "the other stream's write, while corked")
	if f := rcReadFrames(t, peer, 100*time.Millisecond); len(f) != 0 {
		t.Fatalf("%d frames written before the flush", len(f))
	}

	from.flushCorks()
	if err := rcAwait(t, other, 10*time.Second, "the other stream's write"); err != nil {
		t.Fatal(err)
	}
	if dst.cork.by.Load() != nil || len(from.cork.corked) != 0 {
		t.Fatal("a cork is left after the flush")
	}
	got := rcDataFrames(rcReadFrames(t, peer, 200*time.Millisecond))
	want := []rcWireFrame{
		{typeData, 0, st1.id, "abc"},
		{typeData, 0, st1.id, "def"},
		{typeData, flagFIN, st1.id, "ghi"},
		{typeData, 0, st2.id, "zzz"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames on the wire:\n%v\nwant\n%v", got, want)
	}
}

// TestRelaychain_Cork_AloneGoesAtOnce passes a frame on with nothing, or
// only part of a frame, read after it: it is written at once, as the
// receive loop would read (and maybe wait) next.
func TestRelaychain_Cork_AloneGoesAtOnce(t *testing.T) {
	partial := frame(typeData, 0, 9, 100, make([]byte, 10))
	for name, buffered := range map[string][]byte{"nothing": nil, "part of a frame": partial} {
		t.Run(name, func(t *testing.T) {
			dst, peer := rcCorkDst(t)
			st := rcOpen(t, dst)
			from := rcCorkFrom(t, buffered)
			if err := st.sendNoWait([]byte("solo"), false, from); err != nil {
				t.Fatal(err)
			}
			if dst.cork.by.Load() != nil || len(from.cork.corked) != 0 {
				t.Fatal("corked with no whole frame read after it")
			}
			got := rcDataFrames(rcReadFrames(t, peer, 200*time.Millisecond))
			if len(got) != 1 || got[0].body != "solo" {
				t.Fatalf("data frames on the wire: %v, want the one sent", got)
			}
		})
	}
}

// TestRelaychain_Cork_Bounded joins frames to a cork until it holds
// corkMax bytes: it is written out then, without a flush.
func TestRelaychain_Cork_Bounded(t *testing.T) {
	dst, peer := rcCorkDst(t)
	st := rcOpen(t, dst)
	from := rcCorkFrom(t, frame(typeWindowUpdate, 0, 9, 0, nil))
	body := bytes.Repeat([]byte("x"), 8<<10)
	n := 0
	for ; dst.cork.by.Load() == from || n == 0; n++ {
		if n > corkMax/len(body)+1 {
			t.Fatalf("still corked after %d frames of %d bytes", n, len(body))
		}
		if err := st.sendNoWait(body, false, from); err != nil {
			t.Fatal(err)
		}
	}
	if want := corkMax / (len(body) + headerSize); n != want+1 {
		t.Fatalf("written out after %d frames, want %d", n, want+1)
	}
	if got := rcDataFrames(rcReadFrames(t, peer, 200*time.Millisecond)); len(got) != n {
		t.Fatalf("%d data frames on the wire, want %d", len(got), n)
	}
}

// TestRelaychain_Cork_RelayBurst relays 32 streams through a hop whose
// receive loop gets their second frames in one read: the frames it passes
// on (corked, as whole frames follow them) reach the far end whole and
// in order, with each stream's end.
func TestRelaychain_Cork_RelayBurst(t *testing.T) {
	const streams = 32
	c, raw := testConnTCP(t)
	ra, err := Server(c, rcConf(rcLazy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ra.Close() })
	c2, s2 := testConnTCP(t)
	rb, b := testClientServerConfig(t, c2, s2, rcConf(rcLazy), rcConf(rcLazy))

	relays := make(chan error, streams)
	go ra.ServeStreams(func(x *Stream) {
		y, err := rb.OpenStream()
		if err != nil {
			relays <- err
			return
		}
		x.Relay(y, 0, func(_ int64, err error) { relays <- err })
	})
	// The peer in front of the hop is the bare connection: the first
	// frames open the streams, then one write brings every second frame.
	peer := raw.(net.Conn)
	var first, second []byte
	for i := 0; i < streams; i++ {
		id := uint32(2*i + 1)
		first = append(first, frame(typeData, flagSYN, id, 4, []byte(fmt.Sprintf("%04d", i)))...)
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		second = append(second, frame(typeData, flagFIN, id, uint32(len(body)), body)...)
	}
	if _, err := peer.Write(first); err != nil {
		t.Fatal(err)
	}
	far := make([]*Stream, streams)
	for range far {
		// The first frame is through: the stream's Relay has begun.
		z := rcAccept(t, b)
		var i int
		if _, err := fmt.Sscanf(string(rcReadN(t, z, 4)), "%04d", &i); err != nil || i < 0 || i >= streams || far[i] != nil {
			t.Fatalf("a stream starts with no stream's number (%d, %v)", i, err)
		}
		far[i] = z
	}
	if _, err := peer.Write(second); err != nil {
		t.Fatal(err)
	}
	for i, z := range far {
		want := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		if got := rcReadAll(t, z, 10*time.Second); !bytes.Equal(got, want) {
			t.Fatalf("stream %d: got %d bytes %.8q..., want %d of %q", i, len(got), got, len(want), want[:1])
		}
	}
	for i := 0; i < streams; i++ {
		if err := rcAwait(t, relays, 10*time.Second, "Relay"); err != nil {
			t.Fatalf("Relay: %v", err)
		}
	}
}

// TestRelaychain_Cork_HandlerJoins opens 16 streams on a hop in one read,
// whose ServeStreams handler forwards each stream's first frame with
// SendNoWaitFor: with HandlerNeverWaits a handler call finds the frames
// of the calls before it still held back (they go out together), and all
// arrive; without it every handler call finds nothing held (the loop
// wrote it out first), and all arrive too.
func TestRelaychain_Cork_HandlerJoins(t *testing.T) {
	const streams = 16
	for _, neverWaits := range []bool{true, false} {
		t.Run(fmt.Sprintf("HandlerNeverWaits=%v", neverWaits), func(t *testing.T) {
			c, raw := testConnTCP(t)
			conf := rcConf(rcLazy)
			conf.HandlerNeverWaits = neverWaits
			ra, err := Server(c, conf)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ra.Close() })
			c2, s2 := testConnTCP(t)
			rb, b := testClientServerConfig(t, c2, s2, rcConf(rcLazy), rcConf(rcLazy))

			var held atomic.Int32 // handler calls that found earlier calls' frames held
			errs := make(chan error, streams)
			go ra.ServeStreams(func(x *Stream) {
				if rb.cork.by.Load() == ra {
					held.Add(1)
				}
				buf := make([]byte, x.Buffered())
				x.Peek(buf)
				y, err := rb.TryOpenStream()
				if err != nil {
					errs <- err
					return
				}
				if err := y.SendNoWaitFor(x, buf, true); err != nil {
					// The link is busy (without a cork to join): a
					// goroutine sends it, as a relay does.
					go func() {
						_, err := y.WriteClose(buf)
						errs <- err
					}()
					return
				}
				errs <- nil
			})
			// The handler set first: streams that come before it are
			// handed over by ServeStreams' goroutine, not the receive loop.
			rcEventually(t, 5*time.Second, "the handler set", func() bool { return ra.acceptFn.Load() != nil })
			var burst []byte
			for i := 0; i < streams; i++ {
				body := []byte(fmt.Sprintf("stream %02d", i))
				burst = append(burst, frame(typeData, flagSYN|flagFIN, uint32(2*i+1), uint32(len(body)), body)...)
			}
			if _, err := raw.(net.Conn).Write(burst); err != nil {
				t.Fatal(err)
			}
			seen := make(map[string]bool)
			for i := 0; i < streams; i++ {
				if err := rcAwait(t, errs, 10*time.Second, "handler"); err != nil {
					t.Fatalf("forwarding: %v", err)
				}
				seen[string(rcReadAll(t, rcAccept(t, b), 10*time.Second))] = true
			}
			if len(seen) != streams {
				t.Fatalf("%d distinct streams arrived, want %d", len(seen), streams)
			}
			if n := held.Load(); neverWaits && n == 0 {
				t.Fatal("no handler call found the forwarded frames held back")
			} else if !neverWaits && n != 0 {
				t.Fatalf("%d handler calls found frames held back without HandlerNeverWaits", n)
			}
		})
	}
}

// TestRelaychain_Cork_OnlyServingHandlerJoins holds a cork of a receive
// loop on a connection and sends on it with SendNoWaitFor for two source
// streams of that loop's session: the one whose handler the loop is
// running joins the cork; any other (a handler call from ServeStreams' own
// goroutine, for a stream that came before the handler was set) must not
// touch the loop's cork, which is the loop's alone, and finds the
// connection busy.
func TestRelaychain_Cork_OnlyServingHandlerJoins(t *testing.T) {
	dst, peer := rcCorkDst(t)
	st := rcOpen(t, dst)
	if f := rcReadFrames(t, peer, 100*time.Millisecond); len(f) != 1 {
		t.Fatalf("got %d frames for the open, want its SYN", len(f))
	}
	from := rcCorkFrom(t, frame(typeWindowUpdate, 0, 9, 0, nil))
	from.config = &Config{HandlerNeverWaits: true}
	served, other := &Stream{session: from}, &Stream{session: from}
	if err := st.sendNoWait([]byte("abc"), false, from); err != nil {
		t.Fatal(err)
	}
	if dst.cork.by.Load() != from {
		t.Fatal("the first frame started no cork")
	}
	from.cork.serving.Store(served)
	if err := st.SendNoWaitFor(served, []byte("def"), false); err != nil {
		t.Fatalf("the served stream's frame: %v", err)
	}
	held := len(*dst.cork.buf)
	if err := st.SendNoWaitFor(other, []byte("xyz"), false); err != ErrWouldBlock {
		t.Fatalf("another stream's frame, while the cork is held: got %v, want ErrWouldBlock", err)
	}
	if len(*dst.cork.buf) != held {
		t.Fatal("another stream's frame joined the receive loop's cork")
	}
	from.cork.serving.Store(nil)
	from.flushCorks()
	got := rcDataFrames(rcReadFrames(t, peer, 200*time.Millisecond))
	want := []rcWireFrame{{typeData, 0, st.id, "abc"}, {typeData, 0, st.id, "def"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames on the wire:\n%v\nwant\n%v", got, want)
	}
}
