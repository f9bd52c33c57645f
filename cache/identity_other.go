//go:build !unix

package cache

import "io/fs"

// devIno returns zeros where the platform has no inode numbers: identity then
// rests on size and modification time alone.
func devIno(fs.FileInfo) (dev, ino uint64, ctime int64) { return 0, 0, 0 }
