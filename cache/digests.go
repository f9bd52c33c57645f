package cache

import (
	"crypto/sha256"
	"hash/crc32"
	"io/fs"

	"github.com/maypok86/otter/v2"
)

// Castagnoli is the CRC-32C table used for transport checks.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sums are the whole-file digests of one version of a file.
type Sums struct {
	SHA256 [sha256.Size]byte // content id
	CRC32C uint32            // transport check of the whole file
}

// Digests remembers whole-file digests per file version (size, mtime,
// device and inode), so that a file too large for the cache is hashed once
// per version and later sends can go straight from the page cache to the
// socket (sendfile) with the remembered digests. A changed file has a new
// identity and so misses. Safe for concurrent use.
type Digests struct {
	c *otter.Cache[identity, Sums]
}

// DefaultDigests is the default number of file versions remembered.
const DefaultDigests = 4096

// NewDigests returns a memo of at most max file versions.
func NewDigests(max int) *Digests {
	return &Digests{c: otter.Must(&otter.Options[identity, Sums]{
		MaximumSize: max,
		// Run otter's housekeeping inline, as the file cache does: no
		// goroutine outlives a node.
		Executor: func(fn func()) { fn() },
	})}
}

// Get returns the digests remembered for the file version fi describes.
func (d *Digests) Get(fi fs.FileInfo) (Sums, bool) {
	return d.c.GetIfPresent(identityOf(fi))
}

// Put remembers the digests of the file version fi describes. Call it only
// with sums computed over exactly that version, checked by a stat after.
func (d *Digests) Put(fi fs.FileInfo, s Sums) {
	d.c.Set(identityOf(fi), s)
}

// SameVersion reports whether a and b describe the same file version.
func SameVersion(a, b fs.FileInfo) bool {
	return identityOf(a) == identityOf(b)
}
