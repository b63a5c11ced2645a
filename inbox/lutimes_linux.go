package inbox

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lutimes sets the modification time of the symbolic link name in the
// directory dir of root, not of its target (utimensat with
// AT_SYMLINK_NOFOLLOW relative to the directory's descriptor: the
// directory is opened through root, so nothing outside it is reached).
func lutimes(root *os.Root, dir, name string, mtime time.Time) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(int(d.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW)
}
