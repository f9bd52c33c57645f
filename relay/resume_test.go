package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaychain/relaychain/route"
)

const (
	resumeSize  = 6 << 20 // above DefaultRawThreshold: auto goes raw
	resumeAfter = 2 << 20 // where the first attempt is interrupted
	resumeName  = "data.bin"
)

// resumeSetup is a chain of 3 relays to a terminal serving its own
// directory, so that a test can rewrite the file, with the request lines
// of the terminal recorded.
type resumeSetup struct {
	root string // the terminal's directory
	path string // root/resumeName
	file testFile
	term *logRecorder
	rt   route.Route
}

// resumeTransports are the transports a resumed GET can travel on.
var resumeTransports = append(transports[:len(transports):len(transports)], struct {
	name string
	tr   Transport
}{"auto", TransportAuto})

func newResumeSetup(t *testing.T, cacheSize int64) *resumeSetup {
	t.Helper()
	s := &resumeSetup{root: t.TempDir()}
	s.path = filepath.Join(s.root, resumeName)
	f, err := genFile(s.root, resumeName, resumeSize)
	if err != nil {
		t.Fatal(err)
	}
	s.file = f
	logs, rt := recordedChain(t, 3, Config{}, Config{Root: s.root, CacheSize: cacheSize})
	s.term, s.rt = logs[len(logs)-1], rt
	return s
}

// lastSent returns the bytes the terminal logged for the latest request
// that succeeded: the one after the interrupted one, whose log line (an
// error, the client's cancel) may come after it on a loaded machine.
func (s *resumeSetup) lastSent(t *testing.T) int64 {
	t.Helper()
	// The terminal logs a request once its handler returns, a moment
	// after the client has the trailer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := s.term.requests(resumeName)
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i]["err"] == "" {
				return loggedBytes(t, recs[i])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal logged no request for %s that succeeded (%d logged)", resumeName, len(recs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cancelAfter writes to w and, once at least after bytes went through,
// cancels ctx and fails the write with its error. (The client notices a
// cancel in a goroutine of its own, and might otherwise read the rest of
// a fast transfer first and succeed.)
type cancelAfter struct {
	w      io.Writer
	n      int64
	after  int64
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err == nil && c.n >= c.after {
		c.cancel()
		err = c.ctx.Err()
	}
	return n, err
}

// interrupt runs a Resume that is canceled once after bytes have reached
// the partial file. It checks that the Resume failed, left the partial
// and its record and no final file, and returns the partial's length.
func interrupt(t *testing.T, c *Client, dir string, after int64) int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wrote *cancelAfter
	_, _, err := c.Resume(ctx, resumeName, dir, func(_ FileInfo, w io.Writer) io.Writer {
		wrote = &cancelAfter{w: w, after: after, ctx: ctx, cancel: cancel}
		return wrote
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Resume: got %v, want context.Canceled", err)
	}
	names := dirNames(t, dir)
	if want := []string{resumeName + PartialSuffix, resumeName + PartialSuffix + ".json"}; !slices.Equal(names, want) {
		t.Fatalf("after the interrupted Resume: got %q in the directory, want %q", names, want)
	}
	fi, err := os.Stat(filepath.Join(dir, resumeName+PartialSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != wrote.n || fi.Size() < after {
		t.Fatalf("partial holds %d bytes, want the %d written (>= %d)", fi.Size(), wrote.n, after)
	}
	return fi.Size()
}

// resumed is what one completed Resume did.
type resumed struct {
	info    FileInfo
	offset  int64 // FileInfo.Offset seen by the progress hook
	written int64 // bytes written to the partial by this call
}

// resume runs a Resume that must succeed, and checks that dir holds only
// the final file, with content want.
func resume(t *testing.T, c *Client, dir string, want [32]byte, size int64) resumed {
	t.Helper()
	var r resumed
	r.offset = -1
	path, info, err := c.Resume(testCtx(t, time.Minute), resumeName, dir, func(fi FileInfo, w io.Writer) io.Writer {
		r.offset = fi.Offset
		return writerFunc(func(p []byte) (int, error) {
			n, err := w.Write(p)
			r.written += int64(n)
			return n, err
		})
	})
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	r.info = info
	if path != filepath.Join(dir, resumeName) {
		t.Errorf("Resume: got path %s, want %s", path, filepath.Join(dir, resumeName))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{resumeName}) {
		t.Errorf("after Resume: got %q in the directory, want only %q", names, resumeName)
	}
	sum, n := fileSum(t, filepath.Join(dir, resumeName))
	if sum != want || n != size || info.SHA256 != want {
		t.Errorf("Resume: got %d bytes, sha256 %x (info %x); want %d, %x", n, sum, info.SHA256, size, want)
	}
	if r.offset+r.written != size {
		t.Errorf("Resume: offset %d + %d bytes written, want %d", r.offset, r.written, size)
	}
	return r
}

// TestResumeContinues interrupts a download and resumes it: the second
// call starts at the partial's length, the terminal sends only the rest,
// and the file is whole. Over every transport, from the cache and
// streamed from disk.
func TestResumeContinues(t *testing.T) {
	t.Parallel()
	for _, cache := range []struct {
		name string
		size int64
	}{{"cached", 64 << 20}, {"streamed", 0}} {
		for _, tp := range resumeTransports {
			t.Run(cache.name+"/"+tp.name, func(t *testing.T) {
				t.Parallel()
				s := newResumeSetup(t, cache.size)
				c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
				dir := t.TempDir()
				kept := interrupt(t, c, dir, resumeAfter)
				r := resume(t, c, dir, s.file.Sum, s.file.Size)
				if r.offset != kept {
					t.Errorf("resumed at offset %d, want the partial's %d", r.offset, kept)
				}
				if sent := s.lastSent(t); sent != s.file.Size-kept {
					t.Errorf("the terminal sent %d bytes, want the %d after the partial", sent, s.file.Size-kept)
				}
			})
		}
	}
}

// TestResumeFileChanged rewrites the file between the interrupted call
// and the next: same size, other bytes, later mtime. The next Resume
// starts over and gets the new file, never old bytes with new ones.
func TestResumeFileChanged(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			s := newResumeSetup(t, 64<<20)
			c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
			dir := t.TempDir()
			interrupt(t, c, dir, resumeAfter)

			fresh := rewrite(t, s.path, time.Hour)
			r := resume(t, c, dir, fresh, s.file.Size)
			if r.offset != 0 {
				t.Errorf("resumed at offset %d of a changed file, want 0", r.offset)
			}
			if sent := s.lastSent(t); sent != s.file.Size {
				t.Errorf("the terminal sent %d bytes, want all %d", sent, s.file.Size)
			}
		})
	}
}

// rewrite replaces the file at path with other bytes of the same size
// and moves its mtime by shift (0 keeps it), and returns the new digest.
func rewrite(t *testing.T, path string, shift time.Duration) [32]byte {
	t.Helper()
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := old.ModTime().Add(shift)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestResumeChangedSameStamp rewrites the file with its size and mtime
// kept, on a terminal that streams it from disk and so may announce no
// digest: the resumed bytes would splice two versions, and the whole-file
// digest must catch it. Then the next Resume gets the new file.
func TestResumeChangedSameStamp(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			s := newResumeSetup(t, 0)
			c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
			dir := t.TempDir()
			interrupt(t, c, dir, resumeAfter)

			fresh := rewrite(t, s.path, 0)
			_, _, err := c.Resume(testCtx(t, time.Minute), resumeName, dir, nil)
			if err == nil {
				// Acceptable only if it started over.
				if sum, _ := fileSum(t, filepath.Join(dir, resumeName)); sum != fresh {
					t.Fatalf("Resume succeeded with spliced bytes: sha256 %x, want %x", sum, fresh)
				}
				return
			}
			if !errors.Is(err, ErrDigest) {
				t.Fatalf("Resume over a changed file: got %v, want ErrDigest", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after the digest failure: got %q in the directory, want nothing", names)
			}
			skipIfStaleMemo(t, c, dir)
			r := resume(t, c, dir, fresh, s.file.Size)
			if r.offset != 0 {
				t.Errorf("resumed at %d after a digest failure, want 0", r.offset)
			}
		})
	}
}

// staleMemoBug describes a known bug that skipIfStaleMemo detects.
const staleMemoBug = "bug: the terminal's digest memo (cache.Digests) keys a file version by size, mtime and inode only, " +
	"so a file rewritten in place with its size and mtime kept is sent with the old version's CRC-64 and SHA-256 " +
	"in the trailer, and every download of it fails until the stamp changes; fix: add the ctime to cache.identity"

// skipIfStaleMemo downloads resumeName into a scratch directory and skips
// the test if the terminal sends the new bytes with the old digests.
func skipIfStaleMemo(t *testing.T, c *Client, dir string) {
	t.Helper()
	scratch := t.TempDir()
	_, _, err := c.Download(testCtx(t, time.Minute), resumeName, scratch, nil)
	if errors.Is(err, ErrDigest) && strings.Contains(err.Error(), "CRC-64") {
		t.Fatalf("%s (regressed): %v", staleMemoBug, err)
	}
}

// TestStreamedRewriteSameStamp downloads a file streamed from disk in
// full (the terminal then remembers its digests), rewrites it in place
// with its size and mtime kept, and downloads it again: the new bytes
// must arrive, with their own digests.
func TestStreamedRewriteSameStamp(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			s := newResumeSetup(t, 0)
			c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
			checkDownload(t, testCtx(t, time.Minute), c, s.file)
			fresh := rewrite(t, s.path, 0)
			sum, n, _, err := getSum(testCtx(t, time.Minute), c, resumeName)
			if errors.Is(err, ErrDigest) && strings.Contains(err.Error(), "CRC-64") {
				t.Fatalf("%s (regressed): %v", staleMemoBug, err)
			}
			if err != nil || n != s.file.Size || sum != fresh {
				t.Errorf("Get after the rewrite: got %d bytes, sha256 %x, err %v; want %d, %x", n, sum, err, s.file.Size, fresh)
			}
		})
	}
}

// TestResumeCorruptPartial flips a byte of the partial file, keeping its
// size and record: the resumed download fails the whole-file digest,
// removes the partial and its record, and the next Resume starts over.
func TestResumeCorruptPartial(t *testing.T) {
	t.Parallel()
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			s := newResumeSetup(t, 64<<20)
			c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
			dir := t.TempDir()
			kept := interrupt(t, c, dir, resumeAfter)

			part := filepath.Join(dir, resumeName+PartialSuffix)
			f, err := os.OpenFile(part, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := f.ReadAt(b[:], kept/2); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x40
			if _, err := f.WriteAt(b[:], kept/2); err != nil {
				t.Fatal(err)
			}
			f.Close()

			var offset int64 = -1
			_, _, err = c.Resume(testCtx(t, time.Minute), resumeName, dir, func(fi FileInfo, w io.Writer) io.Writer {
				offset = fi.Offset
				return w
			})
			if !errors.Is(err, ErrDigest) {
				t.Fatalf("Resume over a corrupt partial: got %v, want ErrDigest", err)
			}
			if offset != kept {
				t.Errorf("resumed at %d, want the partial's %d (the corruption is only found at the end)", offset, kept)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after the digest failure: got %q in the directory, want nothing", names)
			}
			r := resume(t, c, dir, s.file.Sum, s.file.Size)
			if r.offset != 0 {
				t.Errorf("resumed at %d after a digest failure, want 0", r.offset)
			}
		})
	}
}

// TestResumeComplete resumes from a partial that already holds every
// byte: the client asks to START at the size, the terminal sends none,
// and the file is checked and moved into place.
func TestResumeComplete(t *testing.T) {
	t.Parallel()
	for _, cache := range []struct {
		name string
		size int64
	}{{"cached", 64 << 20}, {"streamed", 0}} {
		for _, tp := range transports {
			t.Run(cache.name+"/"+tp.name, func(t *testing.T) {
				t.Parallel()
				s := newResumeSetup(t, cache.size)
				c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
				dir := t.TempDir()
				kept := interrupt(t, c, dir, resumeAfter)
				// Complete the partial by hand from the origin.
				src, err := os.ReadFile(s.path)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(filepath.Join(dir, resumeName+PartialSuffix), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Write(src[kept:]); err != nil {
					t.Fatal(err)
				}
				f.Close()

				r := resume(t, c, dir, s.file.Sum, s.file.Size)
				if r.offset != s.file.Size || r.written != 0 {
					t.Errorf("resumed at %d and wrote %d bytes, want %d and 0", r.offset, r.written, s.file.Size)
				}
				if sent := s.lastSent(t); sent != 0 {
					t.Errorf("the terminal sent %d bytes, want 0", sent)
				}
			})
		}
	}
}

// TestResumeStartsOver checks partials that must not be continued: one
// without its record, one with a record that does not parse, one longer
// than the file. Each Resume starts at 0 and gets the file.
func TestResumeStartsOver(t *testing.T) {
	t.Parallel()
	s := newResumeSetup(t, 64<<20)
	c := newClient(t, ClientConfig{Route: s.rt, Transport: TransportMux})
	part, meta := resumeName+PartialSuffix, resumeName+PartialSuffix+".json"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"no-record", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, meta)); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage-record", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, meta), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"longer-than-the-file", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, part), s.file.Size+10); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			interrupt(t, c, dir, resumeAfter)
			tc.setup(t, dir)
			if r := resume(t, c, dir, s.file.Sum, s.file.Size); r.offset != 0 {
				t.Errorf("resumed at %d, want 0", r.offset)
			}
		})
	}
}

// TestResumeNotFound resumes a file the terminal does not have: the error
// names the terminal, and nothing is left in the directory.
func TestResumeNotFound(t *testing.T) {
	t.Parallel()
	s := newResumeSetup(t, 64<<20)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			c := newClient(t, ClientConfig{Route: s.rt, Transport: tp.tr})
			dir := t.TempDir()
			_, _, err := c.Resume(testCtx(t, time.Minute), "missing.bin", dir, nil)
			wantHopError(t, err, ErrNotFound, len(s.rt)-1, s.rt[len(s.rt)-1], "missing.bin")
			// Resume opens the partial before it asks, and leaves it
			// empty (no record) after a refusal: harmless, since an empty
			// partial without a record starts over.
			for _, name := range dirNames(t, dir) {
				fi, err := os.Stat(filepath.Join(dir, name))
				if name != "missing.bin"+PartialSuffix || err != nil || fi.Size() != 0 {
					t.Errorf("after a refused Resume: got %s (%v) in the directory, want nothing but an empty partial", name, err)
				}
			}
		})
	}
}
