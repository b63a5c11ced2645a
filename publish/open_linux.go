//go:build linux

package publish

import (
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// openBeneath opens the regular file rel (slash-separated, relative to a
// mount's directory dir) for reading in one openat2 that never leaves dir
// and never follows a symbolic link, where os.Root opens and closes every
// parent directory and registers the file with the poller (about ten
// system calls for a file two directories deep). ok is false when it could
// not (no openat2 here, a link on the way, the file gone...): the caller
// then opens it through os.Root, which explains the failure. What opens
// here os.Root would open too: the same file, with a stricter walk.
func openBeneath(dir *os.File, rel string) (f *os.File, ok bool) {
	if dir == nil || noOpenat2.Load() {
		return nil, false
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return nil, false
	}
	fd := -1
	var oerr error
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	// Control keeps dir's descriptor from being closed (Tree.Close) while
	// it is used.
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = unix.Openat2(int(dfd), rel, &how)
			if oerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, false
	}
	if oerr != nil {
		if oerr == unix.ENOSYS || oerr == unix.EPERM {
			noOpenat2.Store(true) // an old kernel, or a filter refusing it
		}
		return nil, false
	}
	return os.NewFile(uintptr(fd), rel), true
}

var noOpenat2 atomic.Bool

// openDir opens a mount's directory for openBeneath.
func openDir(root *os.Root) *os.File {
	f, err := root.Open(".")
	if err != nil {
		return nil
	}
	return f
}
