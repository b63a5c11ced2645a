//go:build unix

package inbox

import (
	"io/fs"
	"syscall"
)

// fileOwner returns a file's owner and group ids (-1 when unknown).
func fileOwner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
