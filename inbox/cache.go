package inbox

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const cacheVersion = 1

type cacheFile struct {
	Version int                   `json:"version"`
	Files   map[string]CacheEntry `json:"files"`
	// Dirs are the directories fmq created (inbox-relative): only those
	// are removed when a delete leaves them empty.
	Dirs []string `json:"dirs,omitempty"`
}

// loadCache reads the digest cache. A missing file gives an empty cache; a
// damaged one is reported (file:line:col) and ignored: it is only a cache.
func (ib *Inbox) loadCache() (map[string]CacheEntry, map[string]bool) {
	out, made := make(map[string]CacheEntry), map[string]bool{}
	data, err := ib.root.ReadFile(CacheFile)
	if err != nil {
		if !notExist(err) {
			ib.log.Warn("inbox: cannot read digest cache; starting empty", "file", ib.cachePath(), "err", err)
		}
		return out, made
	}
	var cf cacheFile
	if err := json.Unmarshal(data, &cf); err != nil {
		ib.log.Warn("inbox: damaged digest cache; starting empty", "err", ib.cachePath()+":"+jsonPos(data, err))
		return out, made
	}
	if cf.Version != cacheVersion {
		ib.log.Warn("inbox: digest cache has another version; starting empty", "file", ib.cachePath(), "version", cf.Version)
		return out, made
	}
	for vp, e := range cf.Files {
		if _, err := resolve(vp); err != nil || !validEntry(e) {
			ib.log.Warn("inbox: dropping invalid digest cache entry", "file", ib.cachePath(), "path", vp)
			continue
		}
		e.SHA1 = strings.ToUpper(e.SHA1)
		out[vp] = e
	}
	for _, d := range cf.Dirs {
		if _, err := resolve("/" + d); err == nil {
			made[d] = true
		}
	}
	return out, made
}

func (ib *Inbox) cachePath() string { return ib.dir + string(os.PathSeparator) + CacheFile }

// jsonPos formats a JSON error as "line:col: message".
func jsonPos(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return "1:1: " + err.Error()
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return fmt.Sprintf("%d:%d: %v", line, col, err)
}

func validSum(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// SaveCache writes the digest cache atomically (temporary file, fsync,
// rename) if it changed since the last save.
func (ib *Inbox) SaveCache() error {
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return ErrClosed
	}
	if !ib.dirty {
		ib.mu.Unlock()
		return nil
	}
	// A snapshot under the lock (entries copied into a slice, cheaper than
	// a map), encoded outside it.
	files := make([]cacheItem, 0, len(ib.cache))
	for k, v := range ib.cache {
		files = append(files, cacheItem{k, v})
	}
	dirs := make([]string, 0, len(ib.made))
	for d := range ib.made {
		dirs = append(dirs, d)
	}
	ib.dirty = false
	ib.lastSave = time.Now()
	ib.mu.Unlock()

	sorted := make([]*cacheItem, len(files)) // sorting pointers moves less
	for i := range files {
		sorted[i] = &files[i]
	}
	slices.SortFunc(sorted, func(a, b *cacheItem) int { return strings.Compare(a.path, b.path) })
	sort.Strings(dirs)
	data := appendCacheFile(make([]byte, 0, 64+len(files)*200), sorted, dirs)
	err := ib.writeAtomic(CacheFile, data)
	if err != nil {
		ib.mu.Lock()
		ib.dirty = true
		ib.mu.Unlock()
		return fmt.Errorf("inbox: save digest cache %s: %w", ib.cachePath(), err)
	}
	return nil
}

// cacheItem is one digest cache entry and its virtual path.
type cacheItem struct {
	path string
	e    CacheEntry
}

// appendCacheFile appends the digest cache as json.MarshalIndent(cacheFile,
// "", "\t") would write it, plus a newline, without reflection: saved every
// few seconds during a sync, a cache of 10,000 files took ~75 ms and 10 MB
// of garbage through encoding/json, on the session's goroutine. files are
// sorted by path (encoding/json's order of map keys), dirs sorted.
// TestCacheEncodingMatchesJSON holds it to encoding/json, field by field.
func appendCacheFile(b []byte, files []*cacheItem, dirs []string) []byte {
	b = append(b, "{\n\t\"version\": "...)
	b = strconv.AppendInt(b, cacheVersion, 10)
	b = append(b, ",\n\t\"files\": {"...)
	for i, f := range files {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n\t\t"...)
		b = appendJSONString(b, f.path)
		b = append(b, ": {\n\t\t\t\"size\": "...)
		b = strconv.AppendInt(b, f.e.Size, 10)
		b = append(b, ",\n\t\t\t\"mtime_ns\": "...)
		b = strconv.AppendInt(b, f.e.MTime, 10)
		b = append(b, ",\n\t\t\t\"sha1\": "...)
		b = appendJSONString(b, f.e.SHA1)
		if f.e.Installed {
			b = append(b, ",\n\t\t\t\"installed\": true"...)
		}
		for _, kv := range [...]struct{ k, v string }{
			{"origin", f.e.Origin}, {"kind", f.e.Kind}, {"link", f.e.Link}, {"mode", f.e.Mode},
		} {
			if kv.v != "" {
				b = append(b, ",\n\t\t\t\""...)
				b = append(b, kv.k...)
				b = append(b, "\": "...)
				b = appendJSONString(b, kv.v)
			}
		}
		b = append(b, "\n\t\t}"...)
	}
	if len(files) > 0 {
		b = append(b, "\n\t"...)
	}
	b = append(b, '}')
	if len(dirs) > 0 {
		b = append(b, ",\n\t\"dirs\": ["...)
		for i, d := range dirs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n\t\t"...)
			b = appendJSONString(b, d)
		}
		b = append(b, "\n\t]"...)
	}
	return append(b, "\n}\n"...)
}

// appendJSONString appends s quoted as encoding/json quotes it: plain
// printable ASCII as is, anything else (escapes, HTML characters, UTF-8,
// invalid bytes) through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (ib *Inbox) writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := ib.root.Remove(tmp); err != nil && !notExist(err) {
		return err
	}
	f, err := ib.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && ib.fsync {
		// Without Fsync the cache may be lost to a power cut, never torn
		// (rename); a lost cache costs a rehash of the inbox, not data.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ib.root.Rename(tmp, name)
	}
	if err != nil {
		ib.root.Remove(tmp)
		return err
	}
	if ib.fsync {
		ib.syncDir("")
	}
	return nil
}

// maybeSave saves the cache if it is dirty and the last save is old enough.
func (ib *Inbox) maybeSave() {
	ib.mu.Lock()
	due := ib.dirty && !ib.closed && time.Since(ib.lastSave) >= ib.saveEvery
	ib.mu.Unlock()
	if due {
		if err := ib.SaveCache(); err != nil {
			ib.log.Warn("inbox: cannot save digest cache", "err", err)
		}
	}
}

func (ib *Inbox) remember(vpath string, e CacheEntry) {
	ib.mu.Lock()
	if old, ok := ib.cache[vpath]; !ok || old != e {
		ib.cache[vpath] = e
		ib.dirty = true
	}
	ib.touchParentLocked(vpath)
	ib.mu.Unlock()
	ib.maybeSave()
}

// rememberHashed records the digest of a file found on disk: it is still
// fmq's if its content is what fmq installed (it was only touched).
func (ib *Inbox) rememberHashed(vpath, rel string, e CacheEntry) {
	ib.mu.Lock()
	// One critical section: an install (Finish) between a check and the
	// write would otherwise lose its mark.
	if cur, ok := ib.cache[vpath]; ok && cur.Installed {
		if cur.SHA1 == e.SHA1 {
			e.Installed, e.Origin = true, cur.Origin
		} else if fi, err := ib.root.Lstat(osPath(rel)); err == nil && fi.Size() == cur.Size && fi.ModTime().UnixNano() == cur.MTime {
			// The file on disk is the one installed since we hashed:
			// our digest is stale, the entry is right.
			ib.mu.Unlock()
			return
		}
	}
	if old, ok := ib.cache[vpath]; !ok || old != e {
		ib.cache[vpath] = e
		ib.dirty = true
	}
	ib.mu.Unlock()
	ib.maybeSave()
}

func (ib *Inbox) forget(vpath string) {
	ib.mu.Lock()
	if _, ok := ib.cache[vpath]; ok {
		delete(ib.cache, vpath)
		ib.dirty = true
	}
	ib.touchParentLocked(vpath)
	ib.mu.Unlock()
	ib.maybeSave()
}

// Cached returns the digest cache entry for a path, if any.
func (ib *Inbox) Cached(vpath string) (CacheEntry, bool) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	e, ok := ib.cache[vpath]
	return e, ok
}

// found is one file met while walking the inbox.
type found struct {
	vpath   string
	rel     string
	size    int64
	mtime   time.Time
	partial bool
	link    bool // a symbolic link (CacheFor's walk only)
	dir     bool // a directory (CacheFor's walk only)
}

// walk lists the complete files and partials under rel (a directory or a
// file), never following symbolic links and skipping the names fmq
// reserves (Reserved) other than partials; with all, symbolic links and
// directories too.
func (ib *Inbox) walk(rel string, all bool) []found {
	var out []found
	if rel != "" {
		fi, err := ib.root.Lstat(osPath(rel))
		if err == nil && fi.Mode().IsRegular() {
			out = append(out, found{vpath: "/" + rel, rel: rel, size: fi.Size(), mtime: fi.ModTime()})
		}
		if err == nil && all && (fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0) {
			out = append(out, found{vpath: "/" + rel, rel: rel, link: !fi.IsDir(), dir: fi.IsDir()})
		}
		pr := partName(rel)
		if pi, err := ib.root.Lstat(osPath(pr)); err == nil && pi.Mode().IsRegular() {
			out = append(out, found{vpath: "/" + rel, rel: pr, size: pi.Size(), mtime: pi.ModTime(), partial: true})
		}
		if err != nil || !fi.IsDir() {
			return out
		}
	}
	var rec func(dir string, depth int)
	rec = func(dir string, depth int) {
		if depth > 256 {
			return
		}
		f, err := ib.root.Open(osPath(dir))
		if err != nil {
			return
		}
		ents, _ := f.ReadDir(-1)
		f.Close()
		for _, d := range ents {
			name := d.Name()
			r := name
			if dir != "" {
				r = dir + "/" + name
			}
			typ := d.Type()
			if Reserved(name) {
				target, ok := strings.CutSuffix(name[1:], PartSuffix)
				if !ok || !typ.IsRegular() || target == "" {
					continue // the marker, the digest cache
				}
				tr := target
				if dir != "" {
					tr = dir + "/" + target
				}
				if _, err := resolve("/" + tr); err != nil {
					continue
				}
				if fi, err := d.Info(); err == nil {
					out = append(out, found{vpath: "/" + tr, rel: r, size: fi.Size(), mtime: fi.ModTime(), partial: true})
				}
				continue
			}
			switch {
			case typ.IsDir():
				if all {
					out = append(out, found{vpath: "/" + r, rel: r, dir: true})
				}
				rec(r, depth+1)
			case typ&fs.ModeSymlink != 0 && all:
				if _, err := resolve("/" + r); err == nil {
					out = append(out, found{vpath: "/" + r, rel: r, link: true})
				}
			case typ.IsRegular():
				if _, err := resolve("/" + r); err != nil {
					continue
				}
				if fi, err := d.Info(); err == nil {
					out = append(out, found{vpath: "/" + r, rel: r, size: fi.Size(), mtime: fi.ModTime()})
				}
			}
		}
	}
	rec(rel, 0)
	return out
}

// CacheFor returns the cache hash to send in ICANHAZ for a subscription path:
// for each complete file under prefix its SHA-1 ("SHA1HEX"), and for each
// resumable partial the SHA-1 of the bytes it holds ("SHA1HEX@N"; a partial is
// advertised instead of the complete copy of the same file, so an interrupted
// update resumes). Keys are absolute virtual paths starting with prefix.
// Digests come from the cache when the file's size and modification time are
// unchanged; other files are hashed and cached. Cache entries under prefix for
// files no longer on disk are dropped. Partials of transfers in progress and
// empty partials are left out. An invalid prefix gives an empty map.
func (ib *Inbox) CacheFor(prefix string) map[string]string {
	out := make(map[string]string)
	for len(prefix) > 1 && strings.HasSuffix(prefix, "/") {
		prefix = prefix[:len(prefix)-1]
	}
	rel := ""
	if prefix != "/" {
		r, err := resolve(prefix)
		if err != nil {
			ib.log.Debug("inbox: CacheFor with invalid prefix", "err", err)
			return out
		}
		rel = r
	}
	ib.mu.Lock()
	closed := ib.closed
	ib.mu.Unlock()
	if closed {
		return out
	}
	files := ib.walk(rel, true)
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if f.partial {
			continue
		}
		if f.link || f.dir {
			// Links as "LINK@MTIME:target" (the server skips a link it
			// publishes with that target and mtime); directories the server
			// announced as "DIR:MODE" (it deletes those it removed,
			// and sends again those whose mode changed).
			if v := ib.cacheValueOf(f); v != "" {
				out[f.vpath] = v
				seen[f.vpath] = true
			}
			continue
		}
		seen[f.vpath] = true
		ib.mu.Lock()
		c, ok := ib.cache[f.vpath]
		ib.mu.Unlock()
		if ok && c.Size == f.size && c.MTime == f.mtime.UnixNano() {
			out[f.vpath] = c.SHA1
			continue
		}
		sum, n, fi, err := ib.hashRel(f.rel)
		if err != nil {
			ib.log.Warn("inbox: cannot hash file", "path", f.vpath, "err", err)
			continue
		}
		if n != fi.Size() {
			continue // changing under us; leave it out
		}
		out[f.vpath] = sum
		ib.rememberHashed(f.vpath, f.rel, CacheEntry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), SHA1: sum})
	}
	for _, f := range files {
		if !f.partial || f.size == 0 || ib.busy(f.vpath) {
			continue
		}
		sum, n, _, err := ib.hashRel(f.rel)
		if err != nil || n == 0 {
			continue
		}
		out[f.vpath] = sum + "@" + strconv.FormatInt(n, 10)
	}
	// Drop cache entries for files that are gone (still gone: a file
	// installed since the walk keeps its entry, and its mark).
	ib.mu.Lock()
	for vp := range ib.cache {
		if !seen[vp] && underPrefix(prefix, vp) {
			if _, err := ib.root.Lstat(osPath(vp[1:])); err == nil {
				continue
			}
			delete(ib.cache, vp)
			ib.dirty = true
		}
	}
	ib.mu.Unlock()
	ib.maybeSave()
	return out
}

func (ib *Inbox) busy(vpath string) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	_, ok := ib.active[vpath]
	return ok
}

// hashRel hashes a file (never following a final symlink: callers found it
// as a regular file) and returns its digest, the bytes hashed and its info.
func (ib *Inbox) hashRel(rel string) (string, int64, fs.FileInfo, error) {
	f, err := ib.root.OpenFile(osPath(rel), os.O_RDONLY, 0)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, nil, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, nil, fmt.Errorf("not a regular file")
	}
	h := sha1.New()
	n, err := hashFile(f, h, fi.Size())
	if err != nil {
		return "", 0, nil, err
	}
	return hexSum(h), n, fi, nil
}

// underPrefix: path-component prefix match (prefix normalised, "/" = all).
func underPrefix(prefix, vpath string) bool {
	if prefix == "/" {
		return true
	}
	return vpath == prefix || (strings.HasPrefix(vpath, prefix) && vpath[len(prefix)] == '/')
}

// PartialInfo describes a resumable partial file.
type PartialInfo struct {
	VPath   string // the file it will become
	Size    int64  // bytes held: resume with Begin(VPath, Size)
	ModTime time.Time
	Active  bool // a transfer is writing it now
}

// Partials lists the partial files in the inbox, sorted by virtual path.
func (ib *Inbox) Partials() []PartialInfo {
	var out []PartialInfo
	for _, f := range ib.walk("", false) {
		if f.partial {
			out = append(out, PartialInfo{VPath: f.vpath, Size: f.size, ModTime: f.mtime, Active: ib.busy(f.vpath)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VPath < out[j].VPath })
	return out
}
