//go:build linux

package publish

import "syscall"

// unchanged is the allocation-light fast path of Reader.check: it compares an
// fstat of the open file and a stat of its path with the key seen at Open.
// false means "changed, or could not tell": the caller then runs the full check.
func (r *Reader) unchanged() bool {
	var st syscall.Stat_t
	if syscall.Fstat(r.fd, &st) != nil || !r.sameStat(&st) {
		return false
	}
	if syscall.Stat(r.fsPath, &st) != nil || !r.sameStat(&st) {
		return false
	}
	return true
}

func (r *Reader) sameStat(st *syscall.Stat_t) bool {
	return uint64(st.Dev) == r.key.id.dev && uint64(st.Ino) == r.key.id.ino &&
		int64(st.Size) == r.key.size && st.Mtim.Nano() == r.key.mtime && st.Ctim.Nano() == r.key.ctime
}
