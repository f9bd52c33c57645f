package relay

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/relaychain/relaychain/third_party/yamux"

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// serveTerminal answers a request whose route ends at this node.
func (n *Node) serveTerminal(s net.Conn, req *route.Request) outcome {
	out := outcome{role: "terminal"}
	fail := func(st route.Status, err error) outcome {
		out.status, out.err = st, err
		out.broken = true // until the response is out
		msg := fmt.Sprintf("%s: %v", st, err)
		if st == route.StatusNotFound || st == route.StatusNotRegular {
			// The user needs the name, not the node's syscall detail (logged).
			msg = fmt.Sprintf("%s: %s", st, req.Name)
		}
		out.broken = n.respond(s, &route.Response{Status: st, HopIndex: req.Depth, Hop: req.Route[0], Message: msg}) != nil
		return out
	}
	if n.cache == nil {
		return fail(route.StatusNoFiles, errors.New("this node only relays (started without --root)"))
	}
	switch req.Op {
	case route.OpGet, route.OpStat:
		name, err := CleanName(req.Name)
		if err != nil {
			return fail(route.StatusBadRequest, err)
		}
		if req.Op == route.OpStat {
			return n.serveStat(s, req, name, fail)
		}
		return n.serveGet(s, req, name, fail)
	case route.OpLs:
		entries, err := n.walk()
		if err != nil {
			return fail(route.StatusInternal, err)
		}
		return n.serveList(s, req, entries)
	case route.OpList:
		var entries []route.Entry
		for _, e := range n.cache.List() {
			entries = append(entries, route.Entry{Name: e.Name, Size: e.Size, Cached: true})
		}
		return n.serveList(s, req, entries)
	}
	return fail(route.StatusBadOp, fmt.Errorf("op %d", req.Op))
}

// fileStatus maps an error opening a file to a status.
func fileStatus(err error) route.Status {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return route.StatusNotFound
	case errors.Is(err, cache.ErrNotRegular):
		return route.StatusNotRegular
	case errors.Is(err, cache.ErrInvalidName), strings.Contains(err.Error(), "escapes"):
		// os.Root refuses symlinks and paths that leave the root.
		return route.StatusBadRequest
	}
	return route.StatusInternal
}

type failFunc func(route.Status, error) outcome

func (n *Node) serveStat(s net.Conn, req *route.Request, name string, fail failFunc) outcome {
	fi, err := n.src.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%q: %w", name, cache.ErrNotRegular)
	}
	if err != nil {
		return fail(fileStatus(err), fmt.Errorf("%q: %w", name, err))
	}
	n.respond(s, &route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0],
		Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Cached: n.cache.Contains(name)})
	return outcome{role: "terminal"}
}

// serveGet sends a file: the size first, then, after the client's START,
// the bytes from its offset on, then a trailer with their SHA-256.
func (n *Node) serveGet(s net.Conn, req *route.Request, name string, fail failFunc) outcome {
	obj, err := n.cache.Get(n.ctx, name)
	if err != nil {
		return fail(fileStatus(err), fmt.Errorf("%q: %w", name, err))
	}
	out := outcome{role: "terminal", cache: "miss"}
	if obj.File != nil {
		defer obj.File.Close()
		out.streamed = true
	} else if obj.Hit {
		out.cache = "hit"
	}
	resp := route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0],
		Size: obj.Size, ModTime: obj.ModTime.UnixNano(), Cached: obj.Data != nil}
	resp.Digest, resp.HasDigest = n.knownDigest(&obj)
	// The client pipelines START with its request and relays carry the
	// two on together, so START is usually here already: then a small hit
	// goes out as one write, response, bytes and trailer.
	early := startQueued(s)
	if !early {
		if err := n.respond(s, &resp); err != nil {
			out.err = err
			return out
		}
	}
	s.SetReadDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	off, below, err := route.ReadStartBelow(s)
	s.SetReadDeadline(time.Time{})
	if early {
		if err == nil && obj.Data != nil && off <= obj.Size && obj.Size-off <= maxOneWrite &&
			(below == 0 || obj.Size < below) {
			out.bytes, out.err = n.sendSmall(s, &resp, &obj, off)
			return out
		}
		if err := n.respond(s, &resp); err != nil {
			out.err = err
			return out
		}
	}
	if err == nil && below > 0 && obj.Size >= below {
		// A conditional START for a file too large for it: send nothing.
		// The client fetches the file another way (over a raw link).
		out.abandoned = true
		return out
	}
	if errors.Is(err, io.EOF) {
		// The client closed before START: it changed its mind (for
		// instance to fetch a large file over a raw link instead).
		out.abandoned = true
		return out
	}
	if err != nil {
		out.err = fmt.Errorf("read start: %w", err)
		return out
	}
	if off > obj.Size {
		out.err = fmt.Errorf("start offset %d beyond size %d", off, obj.Size)
		return out
	}
	// On a raw link the client sends nothing more until it has the
	// trailer, so anything it sends now, EOF included, means it gave up:
	// stop sending. The abort closes s: a deadline alone would be undone
	// by writeIdle and copyIdle, which renew them before every chunk or
	// clear them on return. A
	// mux client cancels by resetting its stream, which fails the writes
	// below at once, and may have sent its FIN with the request.
	var watch *cancelWatch
	if _, mux := s.(*yamux.Stream); !mux {
		watch = watchCancel(s, func() { s.Close() })
	}
	// sendBody stops the watch before the trailer: once the client has the
	// trailer it may send its next request on a raw link, and the watch
	// must not eat that request's first byte.
	canceled := false
	out.bytes, out.err = n.sendBody(s, &obj, off, func(failed bool) {
		if watch != nil {
			canceled = watch.stop(failed)
		}
	})
	if out.err != nil && canceled {
		out.err = fmt.Errorf("%w: %w", errCanceled, out.err)
	}
	return out
}

// maxOneWrite is the largest hit sendSmall sends.
const maxOneWrite = 64 << 10

// oneWriteBufs pools sendSmall's buffers.
var oneWriteBufs = newBufPool(maxOneWrite + 1024)

// startQueued reports whether a whole START frame (offset only, the
// shortest) has arrived on s, so that reading it will not wait.
func startQueued(s net.Conn) bool {
	ys, ok := s.(*yamux.Stream)
	return ok && ys.Buffered() >= route.FrameHeaderLen+8
}

// hitTrailer returns the trailer of a cached file sent from off: the
// digests the cache computed at load, and the CRC of the bytes from off
// when that is not the whole file.
func hitTrailer(obj *cache.Object, off int64) route.Trailer {
	tr := route.Trailer{HasCRC64: true, HasSHA256: true, SHA256: obj.SHA256, CRC64: obj.CRC64}
	if off > 0 {
		tr.CRC64 = cache.CRC(obj.Data[off:])
	}
	return tr
}

// sendSmall answers a get for a cached file of at most maxOneWrite bytes
// from off, whose START has been read, with one write that also half-closes
// s: the response, the bytes and the trailer. It returns the file bytes
// sent.
func (n *Node) sendSmall(s net.Conn, resp *route.Response, obj *cache.Object, off int64) (int64, error) {
	body := obj.Data[off:]
	tr := hitTrailer(obj, off)
	bp := oneWriteBufs.get()
	defer oneWriteBufs.put(bp)
	b := append(resp.Append((*bp)[:0]), body...)
	*bp = tr.Append(b)
	s.SetWriteDeadline(time.Now().Add(n.cfg.IdleTimeout))
	defer s.SetWriteDeadline(time.Time{})
	// The FIN rides with the answer: nothing follows it on this stream.
	if k, err := writeClose(s, *bp); err != nil {
		return int64(max(0, min(k-(len(b)-len(body)), len(body)))), fmt.Errorf("send %s: %w", obj.Name, err)
	}
	return int64(len(body)), nil
}

// knownDigest returns the whole-file SHA-256 of obj when it is known
// without reading the file: a cached copy's, or one remembered for the
// version of the file being streamed.
func (n *Node) knownDigest(obj *cache.Object) ([32]byte, bool) {
	if obj.Data != nil {
		return obj.SHA256, true
	}
	if fi, err := obj.File.Stat(); err == nil {
		if sums, ok := n.digests.Get(fi); ok {
			return sums.SHA256, true
		}
	}
	return [32]byte{}, false
}

// cancelWatch watches a raw link whose peer must send nothing while an
// answer goes out to it: the peer's close, or anything it sends, is the
// client's cancel.
type cancelWatch struct {
	s        net.Conn
	done     chan struct{}
	canceled bool // set before done is closed
}

// cancelGrace is how long stop waits, once the answer failed, for the
// watch to see the peer's close for itself. The failed write and the
// watch's read see the same close; without the wait the deadline stop
// sets may win, and the client's cancel would be logged as a failure.
const cancelGrace = 50 * time.Millisecond

// watchCancel reads from s, whose peer must send nothing meanwhile, and
// calls abort if the peer closes (or breaks the rule), until stop.
func watchCancel(s net.Conn, abort func()) *cancelWatch {
	w := &cancelWatch{s: s, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var b [1]byte
		if _, err := s.Read(b[:]); !isTimeout(err) {
			w.canceled = true
			abort()
		}
	}()
	return w
}

// stop ends the watch and waits for it, after up to cancelGrace for the
// peer's close when the answer failed. It reports whether the peer
// canceled.
func (w *cancelWatch) stop(failed bool) bool {
	if failed {
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-w.done:
			return w.canceled
		case <-t.C:
		}
	}
	w.s.SetReadDeadline(time.Now())
	<-w.done
	return w.canceled
}

// trailerBufs pools trailer frames, so a hit allocates nothing.
var trailerBufs = newBufPool(route.FrameHeaderLen + 2*(2+route.MaxDigest))

// sendBody writes the object's bytes from off on, then the trailer: a
// CRC-64 of the bytes sent and the SHA-256 of the whole file. A hit is
// written from the cached slice itself, with the SHA-256 computed when it
// was loaded: no copy and no allocation per hit. A file streamed from disk
// whose digests are remembered for its version goes out with io.Copy from
// the *os.File, which is sendfile(2) on a TCP connection; otherwise it is
// hashed on the way out, once per version. It returns the file bytes sent;
// the trailer is sent only after all of them.
//
// beforeTrailer, if not nil, is called once, after the bytes and before the
// trailer, with whether sending the bytes failed.
func (n *Node) sendBody(w io.Writer, obj *cache.Object, off int64, beforeTrailer func(failed bool)) (int64, error) {
	tr := route.Trailer{HasCRC64: true, HasSHA256: true}
	var sent int64
	var err error
	if obj.Data != nil {
		tr = hitTrailer(obj, off)
		if sent, err = n.sendHitFile(w, obj, off); sent == 0 && err == nil {
			var k int
			if c, ok := w.(net.Conn); ok {
				k, err = writeIdle(c, obj.Data[off:], n.cfg.IdleTimeout)
			} else {
				k, err = w.Write(obj.Data[off:])
			}
			sent = int64(k)
		}
	} else {
		sent, err = n.sendFile(w, obj, off, &tr)
	}
	if beforeTrailer != nil {
		beforeTrailer(err != nil)
	}
	if err != nil {
		return sent, fmt.Errorf("send %s: %w", obj.Name, err)
	}
	bp := trailerBufs.get()
	defer trailerBufs.put(bp)
	*bp = tr.Append((*bp)[:0])
	if _, err := w.Write(*bp); err != nil {
		return sent, fmt.Errorf("send trailer: %w", err)
	}
	return sent, nil
}

// minHitSendfile is the size from which a hit on a raw TCP link is sent
// with sendfile(2) from the file rather than written from the cache.
const minHitSendfile = 1 << 20

// sendHitFile sends a large hit on a raw TCP link from the file, with
// sendfile(2), which saves the copy of every byte from the cache into the
// kernel; the cache still supplies the digests, so nothing is read in user
// space. It sends nothing, and returns 0 and nil, when that does not apply
// or the file is not the cached version (the cache's identity: size,
// mtime, ctime, device, inode); the caller then writes from the cache. A
// file that changes during the send fails it, as in sendFile (and the
// trailer's CRC, taken from the cached bytes, would not match).
func (n *Node) sendHitFile(w io.Writer, obj *cache.Object, off int64) (int64, error) {
	conn, ok := w.(*net.TCPConn)
	if !ok || obj.Size-off < minHitSendfile || n.src == nil {
		return 0, nil
	}
	f, err := n.src.Open(obj.Name)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !obj.Current(fi) {
		return 0, nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, nil
	}
	sent, err := copyIdle(conn, f, obj.Size-off, n.cfg.IdleTimeout)
	if err != nil {
		return sent, err
	}
	if after, err := f.Stat(); err != nil || !obj.Current(after) {
		return sent, fmt.Errorf("%s changed while it was sent", obj.Name)
	}
	return sent, nil
}

// sendFile streams obj.File from off to its end and fills in tr. The file
// must be the same version (size, mtime, inode) after the send as before,
// or the send fails: a file rewritten mid-send is never passed off as whole.
func (n *Node) sendFile(w io.Writer, obj *cache.Object, off int64, tr *route.Trailer) (int64, error) {
	f, want := obj.File, obj.Size-off
	before, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	sums, known := n.digests.Get(before)
	var sent int64
	conn, isConn := w.(net.Conn)
	if known && off == 0 && isConn {
		// io.Copy from the file to the bare connection: sendfile(2) on TCP.
		sent, err = copyIdle(conn, f, want, n.cfg.IdleTimeout)
		tr.SHA256, tr.CRC64 = sums.SHA256, sums.CRC64
	} else {
		cp := copyBuffered
		if isConn {
			// Its deadlines stay set for the trailer.
			iw := newIdleWriter(conn, n.cfg.IdleTimeout)
			w = iw
			if iw.mux != nil && want >= muxCopyBufSize {
				cp = copyToMux
			}
		}
		sha, crc := sha256.New(), cache.NewCRC()
		if off > 0 { // the SHA-256 covers the whole file
			if _, err := io.Copy(sha, io.NewSectionReader(f, 0, off)); err != nil {
				return 0, fmt.Errorf("hash first %d bytes: %w", off, err)
			}
		}
		sent, err = cp(io.MultiWriter(w, sha, crc), io.NewSectionReader(f, off, want))
		sha.Sum(tr.SHA256[:0])
		tr.CRC64 = crc.Sum64()
	}
	if err == nil && sent != want {
		err = fmt.Errorf("file shrank: %w", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return sent, err
	}
	after, err := f.Stat()
	if err != nil || !cache.SameVersion(before, after) {
		return sent, fmt.Errorf("file changed while it was sent")
	}
	if !known && off == 0 {
		n.digests.Put(after, cache.Sums{SHA256: tr.SHA256, CRC64: tr.CRC64})
	}
	return sent, nil
}

// serveList sends a listing: an OK response, then LIST frames.
func (n *Node) serveList(s net.Conn, req *route.Request, entries []route.Entry) outcome {
	out := outcome{role: "terminal"}
	if out.err = n.respond(s, &route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0],
		Size: int64(len(entries))}); out.err != nil {
		return out
	}
	lw := route.NewListWriter(newIdleWriter(s, n.cfg.IdleTimeout))
	for _, e := range entries {
		if out.err = lw.Add(e); out.err != nil {
			return out
		}
	}
	out.err = lw.Close()
	return out
}
