package cache

import "io/fs"

// identity is what a hit compares to decide whether the cached copy is still
// the file on disk: a rewrite changes size or mtime, a replacement by rename
// changes the inode.
type identity struct {
	size  int64
	mtime int64 // ModTime().UnixNano()
	dev   uint64
	ino   uint64
}

// identityOf returns the identity of fi. It does not allocate.
func identityOf(fi fs.FileInfo) identity {
	dev, ino := devIno(fi)
	return identity{
		size:  fi.Size(),
		mtime: fi.ModTime().UnixNano(),
		dev:   dev,
		ino:   ino,
	}
}
