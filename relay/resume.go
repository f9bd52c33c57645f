package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/relaychain/relaychain/route"
)

// Resumable downloads keep their data in DIR/NAME.partial and what they
// know of the server's file in DIR/NAME.partial.json.
const (
	PartialSuffix = ".partial"
	partialMeta   = ".json"
)

// partialInfo is the version of the server's file that a partial holds
// the first bytes of.
type partialInfo struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256,omitempty"` // hex, when the terminal announced it
}

// Resume fetches name into dir like Download, but keeps the bytes of an
// interrupted or failed transfer in dir/BASE.partial, and continues from
// them on the next call, asking the terminal to START at their length. It
// continues only if the server's file is the version the partial came from
// (same size and mtime, and same SHA-256 when both are known); otherwise it
// starts over, so old and new bytes are never spliced. The finished file is
// verified end to end against the terminal's whole-file SHA-256 before it
// is renamed into place; a partial that fails verification is removed.
// progress, if not nil, wraps the destination once the size is known;
// FileInfo.Offset then says how many bytes were already there.
func (c *Client) Resume(ctx context.Context, name, dir string, progress func(FileInfo, io.Writer) io.Writer) (string, FileInfo, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", FileInfo{}, fmt.Errorf("get %s: %w", name, err)
	}
	final := filepath.Join(dir, path.Base(clean))
	partPath := final + PartialSuffix
	metaPath := partPath + partialMeta
	part, err := os.OpenFile(partPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", FileInfo{}, fmt.Errorf("get %s: %w", name, err)
	}
	defer part.Close()
	var w io.Writer = part
	info, err := c.get(ctx, name, writerFunc(func(p []byte) (int, error) { return w.Write(p) }),
		func(fi FileInfo, resp *route.Response) (int64, hash.Hash, error) {
			off, sha, err := resumePoint(part, metaPath, resp)
			if err != nil {
				return 0, nil, err
			}
			if progress != nil {
				fi.Offset = off
				w = progress(fi, part)
			}
			return off, sha, nil
		}, nil)
	if err != nil {
		if errors.Is(err, ErrDigest) {
			// The partial cannot be trusted: start over next time.
			part.Close()
			os.Remove(partPath)
			os.Remove(metaPath)
			return "", info, fmt.Errorf("%w (the partial download was removed; run again)", err)
		}
		if fi, serr := part.Stat(); serr == nil && fi.Size() == 0 {
			// Nothing arrived (a refusal, say): leave nothing behind.
			part.Close()
			os.Remove(partPath)
			os.Remove(metaPath)
			return "", info, err
		}
		part.Sync() // keep what arrived for the next --resume
		return "", info, err
	}
	if err := finishFile(part, final, info); err != nil {
		return "", info, fmt.Errorf("get %s: %w", name, err)
	}
	os.Remove(metaPath)
	return final, info, nil
}

// resumePoint decides where to continue: the partial's length if it holds
// the start of the same version of the file, else zero (after emptying it).
// It records the version, and returns a SHA-256 that has hashed the kept
// bytes, positioning part at the offset.
func resumePoint(part *os.File, metaPath string, resp *route.Response) (int64, hash.Hash, error) {
	want := partialInfo{Size: resp.Size, ModTime: resp.ModTime}
	if resp.HasDigest {
		want.SHA256 = hex.EncodeToString(resp.Digest[:])
	}
	fi, err := part.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("stat partial: %w", err)
	}
	off := fi.Size()
	var have partialInfo
	b, err := os.ReadFile(metaPath)
	if err != nil || json.Unmarshal(b, &have) != nil || !sameVersion(have, want) || off > want.Size {
		off = 0 // no record, or another version: start over
	}
	if err := part.Truncate(off); err != nil {
		return 0, nil, fmt.Errorf("truncate partial: %w", err)
	}
	sha := sha256.New()
	if _, err := part.Seek(0, io.SeekStart); err != nil {
		return 0, nil, fmt.Errorf("seek partial: %w", err)
	}
	if k, err := io.Copy(sha, part); err != nil || k != off {
		return 0, nil, fmt.Errorf("hash partial: read %d of %d bytes: %v", k, off, err)
	}
	if b, err = json.Marshal(want); err == nil {
		err = os.WriteFile(metaPath, b, 0o644)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("record partial: %w", err)
	}
	return off, sha, nil
}

// sameVersion reports whether two records name one version of a file.
func sameVersion(a, b partialInfo) bool {
	if a.Size != b.Size || a.ModTime != b.ModTime {
		return false
	}
	return a.SHA256 == "" || b.SHA256 == "" || a.SHA256 == b.SHA256
}
