package proctest

import (
	"bytes"
	"regexp"
	"sync"
)

// listeningRE matches the line a node logs once it listens, in text
// (msg="listening on 127.0.0.1:7000") or JSON format.
var listeningRE = regexp.MustCompile(`listening on ([^\s"]+)`)

// LogBuf collects a node's output (use it as the process's Stdout and
// Stderr) and notices its "listening on HOST:PORT" line. It is safe for
// concurrent use.
type LogBuf struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addr  string
	ready chan struct{} // closed once addr is set
}

// NewLogBuf returns an empty LogBuf.
func NewLogBuf() *LogBuf { return &LogBuf{ready: make(chan struct{})} }

// Write appends p to the log. The first complete line that says
// "listening on HOST:PORT" sets Addr and closes Ready.
func (b *LogBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.addr == "" {
		data := b.buf.Bytes()
		data = data[:bytes.LastIndexByte(data, '\n')+1] // whole lines only
		if m := listeningRE.FindSubmatch(data); m != nil {
			b.addr = string(m[1])
			close(b.ready)
		}
	}
	return len(p), nil
}

// Ready is closed once the log holds a "listening on" line.
func (b *LogBuf) Ready() <-chan struct{} { return b.ready }

// Addr returns the HOST:PORT of the "listening on" line, or "" before
// Ready is closed.
func (b *LogBuf) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// String returns everything written so far.
func (b *LogBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
