//go:build linux

package publish

import (
	"io/fs"
	"syscall"
)

// ctimeOf is a file's status change time (UnixNano), 0 if unknown.
func ctimeOf(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
