//go:build !unix

package inbox

import "io/fs"

// fileOwner: no owners here.
func fileOwner(fs.FileInfo) (uid, gid int) { return -1, -1 }
