package publish

import (
	"crypto/sha1"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// statKey identifies one version of a file: a digest computed for a key stays
// valid while the key is unchanged. The status change time (ctime, where
// the system has one) is part of it: content rewritten in place with its
// size and modification time kept (a copy tool preserving times) changes
// it, so no digest of the old content is ever taken for the new.
type statKey struct {
	id    fileID
	size  int64
	mtime int64 // UnixNano
	ctime int64 // UnixNano; 0 where unknown
}

func keyOf(fi fs.FileInfo) statKey {
	return statKey{id: idOf(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: ctimeOf(fi)}
}

// key is the published version's key, without ctime (compare it with
// statKey.published).
func (e Entry) key() statKey {
	return statKey{id: e.id, size: e.Size, mtime: e.ModTime.UnixNano()}
}

// published drops ctime, which published entries do not track (a chmod is
// no new version of the content).
func (k statKey) published() statKey {
	k.ctime = 0
	return k
}

type digestEntry struct {
	key   statKey
	sum   string
	table *chunkTable // nil: none (small file, or hashed as read)
}

type digestCall struct {
	done  chan struct{}
	key   statKey
	sum   string
	table *chunkTable
	err   error
}

// hashBufSize is the read size used when hashing.
const hashBufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// hexSum formats a SHA-1 sum as FileMQ does: uppercase hex.
func hexSum(h hash.Hash) string {
	var b [sha1.Size]byte
	var x [2 * sha1.Size]byte
	const digits = "0123456789ABCDEF"
	for i, v := range h.Sum(b[:0]) {
		x[2*i], x[2*i+1] = digits[v>>4], digits[v&15]
	}
	return string(x[:])
}

// openFile opens a published file through its mount's os.Root.
func (t *Tree) openFile(vpath string) (Entry, *os.File, fs.FileInfo, error) {
	e, m, err := t.entryMount(vpath)
	if err != nil {
		return Entry{}, nil, nil, err
	}
	f, ok := openBeneath(m.dir, e.rel)
	if !ok {
		f, err = m.root.Open(osRel(e.rel))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Entry{}, nil, nil, &ChangedError{VPath: vpath, Reason: "removed"}
		}
		return Entry{}, nil, nil, fmt.Errorf("publish: open %q: %w", vpath, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Entry{}, nil, nil, fmt.Errorf("publish: stat %q: %w", vpath, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return Entry{}, nil, nil, &ChangedError{VPath: vpath, Reason: "no longer a regular file"}
	}
	return e, f, fi, nil
}

// hashPrefix feeds the first n bytes of f to h.
func hashPrefix(f *os.File, h hash.Hash, n int64) error {
	return hashPrefixStop(f, h, n, nil)
}

// hashPrefixStop is hashPrefix that gives up with ErrClosed once stop is
// closed.
func hashPrefixStop(f *os.File, h io.Writer, n int64, stop <-chan struct{}) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off int64
	for off < n {
		select {
		case <-stop:
			return ErrClosed
		default:
		}
		want := int64(len(buf))
		if n-off < want {
			want = n - off
		}
		m, err := f.ReadAt(buf[:want], off)
		h.Write(buf[:m])
		off += int64(m)
		if err == io.EOF && int64(m) < want {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// Digest returns the SHA-1 (uppercase hex) of a published file's content. The
// result is cached, keyed by the file's device, inode, size and modification
// time, so repeated calls cost a stat; a changed file is hashed again.
// Concurrent calls for the same file version share one computation (with
// each other and with the background ones of OpenAt).
func (t *Tree) Digest(vpath string) (string, error) {
	_, f, fi, err := t.openFile(vpath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	key := keyOf(fi)
	c, leader := t.joinDigest(vpath, key)
	if leader {
		sum, table, err := hashVersion(f, vpath, key, t.chunkGrid(), nil)
		t.finishDigest(vpath, c, sum, table, err)
	}
	<-c.done
	return c.sum, c.err
}

// joinDigest returns the computation of vpath's digest for version key: a
// finished one from the cache, the one in flight, or a new one that the
// caller (leader) must run and finish.
func (t *Tree) joinDigest(vpath string, key statKey) (c *digestCall, leader bool) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	if d, ok := t.digests[vpath]; ok && d.key == key {
		c = &digestCall{done: make(chan struct{}), key: key, sum: d.sum, table: d.table}
		close(c.done)
		return c, false
	}
	if c, ok := t.inflight[vpath]; ok && c.key == key {
		return c, false
	}
	c = &digestCall{done: make(chan struct{}), key: key}
	t.inflight[vpath] = c
	t.hashRuns.Add(1)
	return c, true
}

// finishDigest records a leader's result and wakes the waiters.
func (t *Tree) finishDigest(vpath string, c *digestCall, sum string, table *chunkTable, err error) {
	c.sum, c.table, c.err = sum, table, err
	t.dmu.Lock()
	if err == nil {
		t.digests[vpath] = digestEntry{key: c.key, sum: sum, table: table}
	}
	if t.inflight[vpath] == c {
		delete(t.inflight, vpath)
	}
	t.dmu.Unlock()
	close(c.done)
}

// hashVersion hashes the open file f, which must stay version key
// throughout: its SHA-1 and, for a file of asyncDigestMin or more, its
// chunk digest table of the given grid (chunks.go). stop, when closed,
// abandons the work (ErrClosed).
func hashVersion(f *os.File, vpath string, key statKey, grid int64, stop <-chan struct{}) (string, *chunkTable, error) {
	h := sha1.New()
	if key.size < asyncDigestMin {
		grid = 0
	}
	th := newTableHasher(h, key.size, grid)
	err := hashPrefixStop(f, th, key.size, stop)
	if err == nil {
		err = checkSame(f, vpath, key)
	} else if err == io.ErrUnexpectedEOF {
		err = &ChangedError{VPath: vpath, Reason: "shrank while hashing"}
	}
	if err != nil {
		return "", nil, err
	}
	return hexSum(h), th.table(), nil
}

// chunkGrid is the grid of the chunk digest tables (Options.ChunkGrid).
func (t *Tree) chunkGrid() int64 {
	switch g := t.opt.ChunkGrid; {
	case g == 0:
		return DefaultChunkGrid
	case g < 0:
		return 0
	default:
		return g
	}
}

// asyncDigestMin is the smallest file whose digest a Reader leaves to a
// background computation; smaller ones are hashed in line as they are read
// (cheaper than a goroutine and a wait).
const asyncDigestMin = 1 << 20

// digestAsync returns the computation of vpath's digest for version key,
// starting it on a goroutine of its own unless it is cached or in flight:
// every transfer of one file version shares it (fan-out hashes once), and
// none hashes on its sending path.
func (t *Tree) digestAsync(vpath string, key statKey) *digestCall {
	c, leader := t.joinDigest(vpath, key)
	if !leader {
		return c
	}
	t.hashers.Add(1)
	go func() {
		defer t.hashers.Done()
		sum, table, err := t.hashPublished(vpath, key)
		t.finishDigest(vpath, c, sum, table, err)
	}()
	return c
}

// hashPublished opens vpath and hashes it if it is still version key.
func (t *Tree) hashPublished(vpath string, key statKey) (string, *chunkTable, error) {
	if t.isClosed() {
		return "", nil, ErrClosed
	}
	_, f, fi, err := t.openFile(vpath)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if k := keyOf(fi); k != key {
		return "", nil, &ChangedError{VPath: vpath, Reason: changeReason(key, k)}
	}
	return hashVersion(f, vpath, key, t.chunkGrid(), t.done)
}

// checkSame verifies that an open file still has the given key.
func checkSame(f *os.File, vpath string, key statKey) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("publish: stat %q: %w", vpath, err)
	}
	if k := keyOf(fi); k != key {
		return &ChangedError{VPath: vpath, Reason: changeReason(key, k)}
	}
	return nil
}

func changeReason(was, now statKey) string {
	switch {
	case was.id != now.id:
		return "replaced by another file"
	case was.size != now.size:
		return fmt.Sprintf("size changed from %d to %d", was.size, now.size)
	case was.mtime != now.mtime:
		return "modification time changed"
	default:
		return "rewritten in place (status change time moved)"
	}
}

// PrefixDigest returns the SHA-1 (uppercase hex) of the first n bytes of a
// published file; ErrRange if the file is shorter than n. The hash state is
// kept briefly so that a following OpenAt(vpath, n) does not read the prefix
// again.
func (t *Tree) PrefixDigest(vpath string, n int64) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("%w: %q: negative length %d", ErrRange, vpath, n)
	}
	_, f, fi, err := t.openFile(vpath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if n > fi.Size() {
		return "", fmt.Errorf("%w: %q: prefix %d, size %d", ErrRange, vpath, n, fi.Size())
	}
	key := keyOf(fi)
	h := sha1.New()
	if err := hashPrefix(f, h, n); err != nil {
		if err == io.ErrUnexpectedEOF {
			return "", &ChangedError{VPath: vpath, Reason: "shrank while hashing"}
		}
		return "", fmt.Errorf("publish: read %q: %w", vpath, err)
	}
	if err := checkSame(f, vpath, key); err != nil {
		return "", err
	}
	if m, ok := h.(encoding.BinaryMarshaler); ok {
		if st, err := m.MarshalBinary(); err == nil {
			t.dmu.Lock()
			t.prefixes.put(prefixKey{vpath: vpath, key: key, n: n}, st)
			t.dmu.Unlock()
		}
	}
	return hexSum(h), nil
}

// ParseCacheValue parses a client cache value: "SHA1HEX" (the whole file) or
// "SHA1HEX@N" (the first N bytes). The digest is returned as given (compare it
// case-insensitively). prefix tells which form it was.
func ParseCacheValue(v string) (sum string, n int64, prefix bool, err error) {
	sum = v
	if i := strings.IndexByte(v, '@'); i >= 0 {
		sum = v[:i]
		num := v[i+1:]
		if num == "" || len(num) > 19 || strings.TrimLeft(num, "0123456789") != "" {
			return "", 0, false, badCache(v, "length after '@' is not a decimal number")
		}
		n, err = strconv.ParseInt(num, 10, 64)
		if err != nil {
			return "", 0, false, badCache(v, "length out of range")
		}
		prefix = true
	}
	if len(sum) != 2*sha1.Size {
		return "", 0, false, badCache(v, "digest is not 40 hex digits")
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", 0, false, badCache(v, "digest is not hex")
	}
	return sum, n, prefix, nil
}

func badCache(v, why string) error {
	if len(v) > 48 {
		v = v[:48] + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrBadCacheValue, v, why)
}

// Decide answers a client's cache value for a published file:
//
//   - "" (client has nothing): send from 0.
//   - "SHA1HEX": skip if it equals the file's digest, else send from 0.
//   - "SHA1HEX@N": if N <= size and it equals the digest of the first N bytes,
//     resume from offset N (N == size means only the final empty eof chunk is
//     needed so the client can verify and finish its partial); else send from 0.
//
// Hex is compared case-insensitively. A malformed value yields skip=false,
// offset=0 (send the whole file, which is always safe) together with an error
// wrapping ErrBadCacheValue, which the caller may log and ignore. Other errors
// (ErrNotFound, ErrChanged, I/O) mean the file cannot be served now.
func (t *Tree) Decide(vpath, cacheValue string) (skip bool, offset int64, err error) {
	e, _, err := t.entry(vpath)
	if err != nil {
		return false, 0, err
	}
	if cacheValue == "" {
		return false, 0, nil
	}
	sum, n, prefix, err := ParseCacheValue(cacheValue)
	if err != nil {
		return false, 0, err
	}
	if !prefix {
		d, err := t.Digest(vpath)
		if err != nil {
			return false, 0, err
		}
		return strings.EqualFold(d, sum), 0, nil
	}
	if n == 0 || n > e.Size {
		return false, 0, nil
	}
	d, err := t.PrefixDigest(vpath, n)
	if errors.Is(err, ErrRange) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if strings.EqualFold(d, sum) {
		return false, n, nil
	}
	return false, 0, nil
}

// forgetDigests drops cached digests made stale by a change set.
func (t *Tree) forgetDigests(ch *changeSet) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	for vp := range ch.dels {
		delete(t.digests, vp)
	}
	for vp, e := range ch.puts {
		if d, ok := t.digests[vp]; ok && d.key.published() != e.key() {
			delete(t.digests, vp)
		}
	}
}

// prefixCache keeps a few recent prefix hash states (FIFO).
type prefixKey struct {
	vpath string
	key   statKey
	n     int64
}

const prefixCacheSize = 64

type prefixCache struct {
	m     map[prefixKey][]byte
	order []prefixKey
}

func (c *prefixCache) put(k prefixKey, st []byte) {
	if c.m == nil {
		c.m = make(map[prefixKey][]byte)
	}
	if _, ok := c.m[k]; !ok {
		c.order = append(c.order, k)
	}
	c.m[k] = st
	for len(c.order) > prefixCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *prefixCache) get(k prefixKey) ([]byte, bool) {
	st, ok := c.m[k]
	return st, ok
}

// rememberDigest records a digest computed by a Reader that read a whole
// file version, so later transfers and Decide calls need not hash it again.
func (t *Tree) rememberDigest(vpath string, key statKey, sum string) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	if d, ok := t.digests[vpath]; !ok || d.key != key {
		t.digests[vpath] = digestEntry{key: key, sum: sum}
	}
}
