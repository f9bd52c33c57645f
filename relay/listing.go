package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/relaychain/relaychain/route"
)

// MaxListing caps the entries of one listing, on both ends.
const MaxListing = 1 << 20

// walk lists the regular files under the root, recursively, sorted by their
// slash-separated names. A symlink is listed when it resolves, inside the
// root, to a regular file; it is not followed into directories.
func (n *Node) walk() ([]route.Entry, error) {
	if n.root == nil {
		return nil, errors.New("no root directory to list")
	}
	fsys := n.root.FS()
	var out []route.Entry
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if name == "." {
				return err
			}
			return nil // an unreadable subdirectory is skipped, not fatal
		}
		if d.IsDir() {
			return nil
		}
		fi, err := fs.Stat(fsys, name) // follows symlinks, inside the root only
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if len(out) >= MaxListing {
			return fmt.Errorf("more than %d files", MaxListing)
		}
		out = append(out, route.Entry{Name: name, Size: fi.Size(), Cached: n.cache.Contains(name)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list root: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
