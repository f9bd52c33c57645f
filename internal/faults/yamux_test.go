package faults

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/relaychain/relaychain/route"
)

// A hand-made yamux client: the attacks need streams whose data is never
// read, without the memory a real yamux client would spend buffering it
// (hashicorp/yamux reads every frame off the connection into the stream's
// buffer). This one reads the connection and throws data away, answers
// pings, and never grants a stream more window than the initial 256 KiB,
// which to the node is exactly a peer that never reads the stream.

// yamux frame types and flags (hashicorp/yamux spec.md).
const (
	yData         = 0
	yWindowUpdate = 1
	yPing         = 2
	yGoAway       = 3

	fSYN = 1
	fACK = 2
	fFIN = 4
	fRST = 8
)

const yHeaderLen = 12

// yFrame is a yamux frame header.
type yFrame struct {
	typ    byte
	flags  uint16
	id     uint32
	length uint32
}

func (f yFrame) append(b []byte) []byte {
	b = append(b, 0, f.typ)
	b = binary.BigEndian.AppendUint16(b, f.flags)
	b = binary.BigEndian.AppendUint32(b, f.id)
	return binary.BigEndian.AppendUint32(b, f.length)
}

// muxConn is a link to a node in mux mode, driven by hand.
type muxConn struct {
	c  net.Conn
	wm sync.Mutex // serializes writes
	// onFrame, if set, sees every frame the node sends (from the reader
	// goroutine).
	onFrame func(yFrame)
	done    chan struct{} // closed when the reader ends
	read    int64         // bytes read, when done is closed
}

// dialPreface connects to addr and exchanges the link preface for mode.
func dialPreface(addr string, mode route.Mode) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append([]byte(route.Magic), route.Version, byte(mode))); err != nil {
		c.Close()
		return nil, err
	}
	var ans [route.PrefaceLen]byte
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("read preface answer: %w", err)
	}
	if want := append([]byte(route.Magic), route.Version, byte(route.StatusOK)); string(ans[:]) != string(want) {
		c.Close()
		return nil, fmt.Errorf("preface answer %q, want %q", ans[:], want)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// dialMux opens a mux link to addr and starts reading it.
func dialMux(addr string, onFrame func(yFrame)) (*muxConn, error) {
	c, err := dialPreface(addr, route.ModeMux)
	if err != nil {
		return nil, err
	}
	m := &muxConn{c: c, onFrame: onFrame, done: make(chan struct{})}
	go m.readLoop()
	return m, nil
}

// readLoop reads frames until the connection ends: data is discarded,
// pings are answered.
func (m *muxConn) readLoop() {
	defer close(m.done)
	r := bufio.NewReaderSize(m.c, 64<<10)
	var h [yHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return
		}
		f := yFrame{typ: h[1], flags: binary.BigEndian.Uint16(h[2:]), id: binary.BigEndian.Uint32(h[4:]), length: binary.BigEndian.Uint32(h[8:])}
		m.read += yHeaderLen
		if f.typ == yData && f.length > 0 {
			k, err := io.CopyN(io.Discard, r, int64(f.length))
			m.read += k
			if err != nil {
				return
			}
		}
		if f.typ == yPing && f.flags&fSYN != 0 {
			m.write(yFrame{typ: yPing, flags: fACK, length: f.length}.append(nil))
		}
		if m.onFrame != nil {
			m.onFrame(f)
		}
	}
}

func (m *muxConn) write(b []byte) error {
	m.wm.Lock()
	defer m.wm.Unlock()
	m.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := m.c.Write(b)
	return err
}

// open opens stream id (odd: we are the yamux client) with payload as its
// first data, appending the frames to b.
func appendOpen(b []byte, id uint32, payload []byte) []byte {
	b = yFrame{typ: yWindowUpdate, flags: fSYN, id: id}.append(b)
	if len(payload) > 0 {
		b = yFrame{typ: yData, id: id, length: uint32(len(payload))}.append(b)
		b = append(b, payload...)
	}
	return b
}

// close closes the link and waits for the reader.
func (m *muxConn) close() {
	m.c.Close()
	<-m.done
}
