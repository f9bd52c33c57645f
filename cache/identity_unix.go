//go:build unix

package cache

import (
	"io/fs"
	"syscall"
)

// devIno returns the device and inode numbers and the change time of fi,
// or zeros if fi does not carry a *syscall.Stat_t.
func devIno(fi fs.FileInfo) (dev, ino uint64, ctime int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, 0, 0
	}
	return uint64(st.Dev), uint64(st.Ino), changeTime(st) //nolint:unconvert // Dev is not uint64 on every unix
}
