package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// Download fetches name into dir under the name's base name. The bytes go
// to a temporary file in dir that is verified, synced and then renamed into
// place, so a failed or interrupted download leaves no file under the final
// name and no temporary file behind, and a file already there is replaced
// only by a complete, verified copy. progress, if not nil, wraps the
// destination writer once the size is known (for a progress bar).
func (c *Client) Download(ctx context.Context, name, dir string, progress func(FileInfo, io.Writer) io.Writer) (string, FileInfo, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", FileInfo{}, fmt.Errorf("get %s: %w", name, err)
	}
	final := filepath.Join(dir, path.Base(clean))
	tmp, err := os.CreateTemp(dir, "."+path.Base(clean)+".*.part")
	if err != nil {
		return "", FileInfo{}, fmt.Errorf("get %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	info, err := c.Get(ctx, name, writerFunc(func(p []byte) (int, error) { return w.Write(p) }), func(fi FileInfo) {
		if progress != nil {
			w = progress(fi, tmp)
		}
	})
	if err != nil {
		return "", info, err
	}
	if err := finishFile(tmp, final, info); err != nil {
		return "", info, fmt.Errorf("get %s: %w", name, err)
	}
	ok = true
	return final, info, nil
}

// finishFile makes the verified temporary file durable and moves it to final.
func finishFile(tmp *os.File, final string, info FileInfo) error {
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	// Keep the origin's mtime; failing to is not worth failing the download.
	_ = os.Chtimes(tmp.Name(), info.ModTime, info.ModTime)
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return fmt.Errorf("%s: %w", final, errors.New("is a directory"))
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
