package publish

import (
	"crypto/sha1"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fmq/fmq/internal/ids"
)

// ErrIncomplete: Reader.Digest was called before every byte was read.
var ErrIncomplete = errors.New("publish: digest requested before the last chunk was read")

// ChangedError reports that a file changed while it was being read or hashed.
// errors.Is(err, ErrChanged) is true for it.
type ChangedError struct {
	VPath  string
	Reason string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("publish: %q changed while being read: %s", e.VPath, e.Reason)
}

// Is makes errors.Is(err, ErrChanged) true.
func (e *ChangedError) Is(target error) bool { return target == ErrChanged }

// Reader reads one published file chunk by chunk for a transfer and detects
// a file that changes while it is being sent. Its Digest is the file
// version's SHA-1: cached when the version was hashed before; for a file of
// 1 MiB or more, computed once per version on a goroutine of its own that
// every transfer of the version shares; for a smaller one, a running SHA-1
// of what is read (the prefix before the start offset of OpenAt hashed when
// the Reader is opened). A Reader is not safe for concurrent use.
type Reader struct {
	vpath  string
	fsPath string // physical path, to detect replacement
	f      *os.File
	ref    *fileRef // f, shared with the sections handed out (Section)
	fd     int      // f's descriptor, for the fast change check
	key    statKey
	info   fs.FileInfo
	h      hash.Hash
	hashed int64       // bytes [0, hashed) have been fed to h (or read, when known is set)
	known  string      // digest from the tree's cache for this exact file version: no hashing
	sum    string      // h's sum, once every byte was hashed (ReadChunk of the last chunk)
	call   *digestCall // the shared background digest of this version (large files): no hashing here
	table  *chunkTable // the version's chunk digests, once known (ChunkDigest)
	tree   *Tree       // to record the digest once computed
	closed bool
}

// Open opens a published file for sending from offset 0.
func (t *Tree) Open(vpath string) (*Reader, error) { return t.OpenAt(vpath, 0) }

// OpenAt opens a published file for sending from offset n (a resume after a
// verified prefix, see Decide): the first n bytes are hashed now (or the hash
// state saved by a just-made PrefixDigest call is reused) so that Digest covers
// the whole content. ErrRange if n exceeds the file's size.
func (t *Tree) OpenAt(vpath string, n int64) (*Reader, error) {
	e, f, fi, err := t.openFile(vpath)
	if err != nil {
		return nil, err
	}
	key := keyOf(fi)
	if key.published() != e.key() {
		// Not the version the tree published: the file is being rewritten
		// (or was, and has not settled yet). Sending it now could send a
		// half-written file as a whole one (an in-place writer truncates,
		// then writes). The watcher announces the new version once settled.
		f.Close()
		return nil, &ChangedError{VPath: vpath, Reason: "changed since it was published (not settled yet)"}
	}
	if n < 0 || n > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("%w: %q: offset %d, size %d", ErrRange, vpath, n, fi.Size())
	}
	r := &Reader{vpath: vpath, fsPath: filepath.Join(t.mounts[e.mount].Dir, osRel(e.rel)),
		f: f, ref: &fileRef{f: f}, fd: int(f.Fd()), key: key, info: fi, tree: t}
	r.ref.refs.Store(1)
	t.dmu.Lock()
	if d, ok := t.digests[vpath]; ok && d.key == key {
		// This version of the file was hashed already (an earlier transfer,
		// a resync Decide): fan-out to many clients hashes it once. The
		// per-chunk change check still guards the version.
		r.known, r.table = d.sum, d.table
	}
	t.dmu.Unlock()
	if r.known != "" {
		r.hashed = n
		return r, nil
	}
	if fi.Size() >= asyncDigestMin {
		// Hashed once per version on a goroutine of its own, shared by
		// every transfer (and Digest call) of it; Digest waits for it.
		r.call = t.digestAsync(vpath, key)
		r.hashed = n
		return r, nil
	}
	r.h = sha1.New()
	if n > 0 {
		t.dmu.Lock()
		st, ok := t.prefixes.get(prefixKey{vpath: vpath, key: key, n: n})
		t.dmu.Unlock()
		seeded := false
		if u, isU := r.h.(encoding.BinaryUnmarshaler); ok && isU {
			seeded = u.UnmarshalBinary(st) == nil
		}
		if !seeded {
			r.h.Reset()
			if err := hashPrefix(f, r.h, n); err != nil {
				f.Close()
				if err == io.ErrUnexpectedEOF {
					return nil, &ChangedError{VPath: vpath, Reason: "shrank while hashing"}
				}
				return nil, fmt.Errorf("publish: read %q: %w", vpath, err)
			}
		}
		r.hashed = n
	}
	return r, nil
}

// VPath returns the virtual path being read.
func (r *Reader) VPath() string { return r.vpath }

// Size returns the file's size as seen when it was opened.
func (r *Reader) Size() int64 { return r.key.size }

// Info returns the file's information as seen when it was opened.
func (r *Reader) Info() fs.FileInfo { return r.info }

// ReadChunk reads up to len(buf) bytes at offset into buf (no allocation) and
// returns how many were read and whether this chunk ends the file (offset+n ==
// Size; a zero-length file or offset == Size gives n=0, eof=true). After each
// read the file is checked: if its size, modification time or identity (inode,
// or the path now naming another file) differs from what Open saw, ReadChunk
// returns an error wrapping ErrChanged and the chunk must not be sent.
//
// Chunks are normally read in order; if offset skips ahead the skipped bytes
// are read and hashed first (using buf), so Digest stays correct.
func (r *Reader) ReadChunk(buf []byte, offset int64) (n int, eof bool, err error) {
	if r.closed {
		return 0, false, fmt.Errorf("publish: read %q: %w", r.vpath, os.ErrClosed)
	}
	size := r.key.size
	if offset < 0 || offset > size {
		return 0, false, fmt.Errorf("%w: %q: offset %d, size %d", ErrRange, r.vpath, offset, size)
	}
	if offset == size {
		return 0, true, r.check()
	}
	if len(buf) == 0 {
		return 0, false, fmt.Errorf("publish: read %q: empty buffer", r.vpath)
	}
	for r.h != nil && r.hashed < offset { // fill a gap so the running hash stays whole
		want := int64(len(buf))
		if offset-r.hashed < want {
			want = offset - r.hashed
		}
		m, err := r.f.ReadAt(buf[:want], r.hashed)
		if int64(m) < want {
			if err == nil || err == io.EOF {
				return 0, false, &ChangedError{VPath: r.vpath, Reason: "truncated"}
			}
			return 0, false, fmt.Errorf("publish: read %q: %w", r.vpath, err)
		}
		r.h.Write(buf[:m])
		r.hashed += int64(m)
	}
	want := int64(len(buf))
	if size-offset < want {
		want = size - offset
	}
	n, err = r.f.ReadAt(buf[:want], offset)
	if int64(n) < want {
		if err == nil || err == io.EOF {
			return 0, false, &ChangedError{VPath: r.vpath, Reason: "truncated"}
		}
		return 0, false, fmt.Errorf("publish: read %q: %w", r.vpath, err)
	}
	if err := r.check(); err != nil {
		return 0, false, err
	}
	if end := offset + int64(n); end > r.hashed {
		if r.h != nil {
			r.h.Write(buf[r.hashed-offset : n])
		}
		r.hashed = end
	}
	eof = offset+int64(n) == size
	if eof && r.h != nil && r.hashed == size {
		// Kept: Digest (the eof chunk's headers) need not format it again.
		r.sum = hexSum(r.h)
		r.tree.rememberDigest(r.vpath, r.key, r.sum)
	}
	return n, eof, nil
}

// check compares the file with what Open saw.
func (r *Reader) check() error {
	if r.unchanged() {
		return nil
	}
	if err := checkSame(r.f, r.vpath, r.key); err != nil {
		return err
	}
	fi, err := os.Stat(r.fsPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &ChangedError{VPath: r.vpath, Reason: "removed"}
		}
		return fmt.Errorf("publish: stat %q: %w", r.vpath, err)
	}
	if k := keyOf(fi); k != r.key {
		return &ChangedError{VPath: r.vpath, Reason: changeReason(r.key, k)}
	}
	return nil
}

// Digest returns the SHA-1 (uppercase hex) of the whole content as read. It
// returns ErrIncomplete until every byte up to Size has been read. For a
// file of 1 MiB or more it waits, if need be, for the version's digest,
// which is computed once, in the background, from OpenAt on (the per-chunk
// change check guarantees what was read is that version).
func (r *Reader) Digest() (string, error) {
	if r.hashed != r.key.size {
		return "", fmt.Errorf("%w: %q: %d of %d bytes", ErrIncomplete, r.vpath, r.hashed, r.key.size)
	}
	if r.known != "" {
		return r.known, nil
	}
	if r.call != nil {
		<-r.call.done // computed in the background since OpenAt
		if r.call.err != nil {
			return "", r.call.err
		}
		return r.call.sum, nil
	}
	if r.sum != "" {
		return r.sum, nil
	}
	return hexSum(r.h), nil
}

// Headers returns the headers of the eof chunk: SHA1 (as Digest) and SIZE
// (decimal).
func (r *Reader) Headers() (map[string]string, error) {
	d, err := r.Digest()
	if err != nil {
		return nil, err
	}
	uid, gid := ownerOf(r.info)
	h := MetaHeaders(r.info.Mode(), r.info.ModTime(), uid, gid)
	h["SHA1"], h["SIZE"] = d, strconv.FormatInt(r.key.size, 10)
	return h, nil
}

// MetaHeaders are the metadata headers of a file (spec/filemq.md 7.2):
// MODE, its permission bits in octal ("0755"); MTIME, its modification
// time in Unix nanoseconds; UID and GID, its owner and group ids in
// decimal (left out when negative: unknown), and USER and GROUP, their
// names on this machine (left out when it has none).
func MetaHeaders(mode os.FileMode, mtime time.Time, uid, gid int) map[string]string {
	// Room for the transfer's own headers too (SHA1, SIZE, BACKLOG,
	// ORIGIN, a chunk digest: actions), so the map never grows.
	h := make(map[string]string, 12)
	h["MODE"] = modeString(mode)
	h["MTIME"] = strconv.FormatInt(mtime.UnixNano(), 10)
	if uid >= 0 {
		h["UID"] = strconv.Itoa(uid)
		if n := ids.UserName(uid); n != "" {
			h["USER"] = n
		}
	}
	if gid >= 0 {
		h["GID"] = strconv.Itoa(gid)
		if n := ids.GroupName(gid); n != "" {
			h["GROUP"] = n
		}
	}
	return h
}

// modeString is fmt.Sprintf("%04o", mode.Perm()) without fmt (once per
// file sent).
func modeString(mode os.FileMode) string {
	p := uint32(mode.Perm())
	b := [4]byte{'0', byte('0' + p>>6&7), byte('0' + p>>3&7), byte('0' + p&7)}
	return string(b[:])
}

// Close closes the file. It is safe to call more than once.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.ref.release()
}
