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

	"github.com/relaychain/relaychain/cache"
	"github.com/relaychain/relaychain/route"
)

// serveTerminal answers a request whose route ends at this node.
func (n *Node) serveTerminal(s net.Conn, req *route.Request) outcome {
	out := outcome{role: "terminal"}
	fail := func(st route.Status, err error) outcome {
		out.status, out.err = st, err
		msg := fmt.Sprintf("%s: %v", st, err)
		if st == route.StatusNotFound || st == route.StatusNotRegular {
			// The user needs the name, not the node's syscall detail (logged).
			msg = fmt.Sprintf("%s: %s", st, req.Name)
		}
		n.respond(s, &route.Response{Status: st, HopIndex: req.Depth, Hop: req.Route[0], Message: msg})
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
		out.cache = "stream"
	} else if obj.Hit {
		out.cache = "hit"
	}
	resp := route.Response{Status: route.StatusOK, HopIndex: req.Depth, Hop: req.Route[0],
		Size: obj.Size, ModTime: obj.ModTime.UnixNano(), Cached: obj.Data != nil}
	if err := n.respond(s, &resp); err != nil {
		out.err = err
		return out
	}
	s.SetReadDeadline(time.Now().Add(n.cfg.HeaderTimeout))
	off, err := route.ReadStart(s)
	s.SetReadDeadline(time.Time{})
	if err != nil {
		out.err = fmt.Errorf("read start: %w", err)
		return out
	}
	if off > obj.Size {
		out.err = fmt.Errorf("start offset %d beyond size %d", off, obj.Size)
		return out
	}
	// The client sends nothing more until it has the trailer, so anything
	// it sends now, EOF included, means it gave up: stop sending.
	stop := watchCancel(s)
	out.bytes, out.err = sendBody(s, &obj, off)
	stop()
	return out
}

// watchCancel reads from s until the client goes away, then aborts writes
// to s. The returned func stops the watch and waits for it.
func watchCancel(s net.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		if _, err := s.Read(b[:]); !isTimeout(err) {
			s.SetWriteDeadline(time.Now())
		}
	}()
	return func() {
		s.SetReadDeadline(time.Now())
		<-done
	}
}

// trailerBufs pools trailer frames, so a hit allocates nothing.
var trailerBufs = newBufPool(route.FrameHeaderLen + 2 + sha256.Size)

// sendBody writes the object's bytes from off on, then the trailer. A hit
// is written from the cached slice itself, with the digest computed when it
// was loaded: no copy, no hashing and no allocation per hit. It returns the
// bytes of file data sent; a trailer is sent only after all of them.
func sendBody(w io.Writer, obj *cache.Object, off int64) (int64, error) {
	var sum [sha256.Size]byte
	var sent int64
	if obj.Data != nil {
		n, err := w.Write(obj.Data[off:])
		sent = int64(n)
		if err != nil {
			return sent, fmt.Errorf("send %s: %w", obj.Name, err)
		}
		sum = obj.SHA256
		if off != 0 {
			sum = sha256.Sum256(obj.Data[off:])
		}
	} else {
		h := sha256.New()
		n, err := copyBuffered(io.MultiWriter(w, h), io.NewSectionReader(obj.File, off, obj.Size-off))
		sent = n
		if err == nil && n != obj.Size-off {
			err = fmt.Errorf("file shrank: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return sent, fmt.Errorf("send %s: %w", obj.Name, err)
		}
		h.Sum(sum[:0])
	}
	bp := trailerBufs.get()
	defer trailerBufs.put(bp)
	*bp = route.AppendTrailer((*bp)[:0], route.DigestSHA256, sum[:])
	if _, err := w.Write(*bp); err != nil {
		return sent, fmt.Errorf("send trailer: %w", err)
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
	lw := route.NewListWriter(s)
	for _, e := range entries {
		if out.err = lw.Add(e); out.err != nil {
			return out
		}
	}
	out.err = lw.Close()
	return out
}
