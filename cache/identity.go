package cache

import "io/fs"

// identity is what a hit compares to decide whether the cached copy is still
// the file on disk: a rewrite changes size or mtime, a replacement by rename
// changes the inode.
type identity struct {
	size  int64
	mtime int64 // ModTime().UnixNano()
	// ctime is the inode change time: every write moves it and nothing can
	// set it back, so a rewrite that keeps size and mtime still differs.
	ctime int64
	dev   uint64
	ino   uint64
}

// identityOf returns the identity of fi. It does not allocate.
func identityOf(fi fs.FileInfo) identity {
	dev, ino, ctime := devIno(fi)
	return identity{
		size:  fi.Size(),
		mtime: fi.ModTime().UnixNano(),
		ctime: ctime,
		dev:   dev,
		ino:   ino,
	}
}
