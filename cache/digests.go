package cache

import (
	"crypto/sha256"
	"hash"
	"io/fs"

	"github.com/maypok86/otter/v2"
	"github.com/minio/crc64nvme"
)

// NewCRC returns a hash computing the transport check of the bytes sent:
// CRC-64/NVME, with carry-less multiplies (crc64nvme): about 72 GB/s with
// AVX-512 on the bench machine, where CRC-32C's CRC32 instruction gives 23,
// and about as fast as CRC-32C with 128-bit ones.
func NewCRC() hash.Hash64 { return crc64nvme.New() }

// CRC returns the transport check (NewCRC) of data.
func CRC(data []byte) uint64 { return crc64nvme.Checksum(data) }

// Sums are the whole-file digests of one version of a file.
type Sums struct {
	SHA256 [sha256.Size]byte // content id
	CRC64  uint64            // transport check (CRC) of the whole file
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
