package publish

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/fmq/fmq/internal/chunksum"
	"github.com/zeebo/xxh3"
)

// Chunk digests per file version (issue 14). A client that negotiated
// CHUNK-DIGEST gets the XXH3-128 of every chunk. A file version's whole-file
// SHA-1 is computed once, off the sending path, and shared by every
// transfer; the same pass now also records the XXH3-128 of each chunk of a
// fixed grid (DefaultChunkGrid bytes from offset 0: the chunks a transfer
// from offset 0 with the server's default chunk size sends). A transfer
// whose chunk lies on that grid takes its digest from the table instead of
// hashing the chunk, and so need not read the chunk at all: the connection
// can send it straight from the file's pages (Reader.Section).

// DefaultChunkGrid is the chunk size of the chunk digest table: the server
// machine's default chunk_size.
const DefaultChunkGrid = 1_000_000

// maxTableChunks bounds one table (16 bytes a chunk): files larger than
// this many chunks (about 64 GB with the default grid) have none and are
// read and hashed chunk by chunk as before.
const maxTableChunks = 1 << 16

// chunkTable is the XXH3-128 of every grid chunk of one file version.
type chunkTable struct {
	grid int64
	size int64
	sums []chunksum.Digest
}

// lookup returns the digest of [off, off+n) when it is one chunk of t.
func (t *chunkTable) lookup(off, n int64) (chunksum.Digest, bool) {
	if t == nil || n <= 0 || off < 0 || off%t.grid != 0 || off >= t.size || n != min(t.grid, t.size-off) {
		return chunksum.Digest{}, false
	}
	return t.sums[off/t.grid], true
}

// tableHasher feeds the chunk digest table as the version is hashed (an
// io.Writer for hashPrefixStop, beside the SHA-1).
type tableHasher struct {
	sha io.Writer
	t   *chunkTable
	x   *xxh3.Hasher
	in  int64 // bytes of the current chunk fed to x
}

func newTableHasher(sha io.Writer, size, grid int64) *tableHasher {
	th := &tableHasher{sha: sha}
	if grid > 0 && size > 0 && (size+grid-1)/grid <= maxTableChunks {
		th.t = &chunkTable{grid: grid, size: size, sums: make([]chunksum.Digest, 0, (size+grid-1)/grid)}
		th.x = xxh3.New()
	}
	return th
}

func (th *tableHasher) Write(p []byte) (int, error) {
	th.sha.Write(p)
	if th.t == nil {
		return len(p), nil
	}
	for q := p; len(q) > 0; {
		k := min(int64(len(q)), th.t.grid-th.in)
		th.x.Write(q[:k])
		th.in += k
		q = q[k:]
		if th.in == th.t.grid {
			th.cut()
		}
	}
	return len(p), nil
}

// cut ends the current chunk.
func (th *tableHasher) cut() {
	th.t.sums = append(th.t.sums, chunksum.Digest(th.x.Sum128().Bytes()))
	th.x.Reset()
	th.in = 0
}

// table returns the finished table (nil without one, or when the content
// fed was not size bytes).
func (th *tableHasher) table() *chunkTable {
	if th.t == nil {
		return nil
	}
	if th.in > 0 {
		th.cut()
	}
	if int64(len(th.t.sums)) != (th.t.size+th.t.grid-1)/th.t.grid {
		return nil
	}
	return th.t
}

// fileRef is an open file shared by a Reader and the sections it handed
// out: the last one to let go closes it.
type fileRef struct {
	f    *os.File
	refs atomic.Int32
}

func (r *fileRef) release() error {
	if r.refs.Add(-1) == 0 {
		return r.f.Close()
	}
	return nil
}

// Section is a part of a published file version to be sent from the file
// itself (its pages) instead of a buffer of ours. It keeps the file open until
// Release, which must be called exactly once, whatever becomes of it.
type Section struct {
	File   *os.File
	Off, N int64
	ref    *fileRef
	done   atomic.Bool
}

// Release lets go of the file (closed once its Reader and every section of
// it let go). Calls after the first do nothing.
func (s *Section) Release() {
	if s != nil && s.done.CompareAndSwap(false, true) {
		s.ref.release()
	}
}

// ChunkDigest returns the XXH3-128 of the n bytes at off of the version
// being read, without reading them, when the version's chunk digest table
// holds that chunk (the table is made with the version's SHA-1: it exists
// once that is computed, and covers the chunks of its grid).
func (r *Reader) ChunkDigest(off, n int64) (chunksum.Digest, bool) {
	if r.table == nil && r.call != nil {
		select {
		case <-r.call.done:
			if r.call.err == nil {
				r.table = r.call.table
			}
		default:
		}
	}
	return r.table.lookup(off, n)
}

// ErrNoSection: Reader.Section cannot hand that part of the file out (the
// whole-file digest is computed from what is read, or the part is not
// within the file); the caller reads it with ReadChunk instead.
var ErrNoSection = errors.New("publish: section not available")

// Section is ReadChunk for a sender that sends the n bytes at offset from
// the file itself: the file is checked as ReadChunk checks it after a read
// (an error wrapping ErrChanged: the section must not be sent), the bytes
// count as read, and the returned section keeps the file open until its
// Release. eof: the section ends the file. The bytes are read later, by
// whoever sends them: a file rewritten in between gives other bytes than
// those the version's digests describe, which is why a section goes only
// to a client that checks every chunk against its digest (CHUNK-DIGEST).
// ErrNoSection when the whole-file digest is computed from what is read
// (small files) or n bytes at offset are not within the file.
func (r *Reader) Section(offset, n int64) (sec *Section, eof bool, err error) {
	if r.closed {
		return nil, false, fmt.Errorf("publish: read %q: %w", r.vpath, os.ErrClosed)
	}
	if r.h != nil || n <= 0 || offset < 0 || offset+n > r.key.size {
		return nil, false, ErrNoSection
	}
	if err := r.check(); err != nil {
		return nil, false, err
	}
	if end := offset + n; end > r.hashed {
		r.hashed = end
	}
	r.ref.refs.Add(1)
	return &Section{File: r.f, Off: offset, N: n, ref: r.ref}, offset+n == r.key.size, nil
}
