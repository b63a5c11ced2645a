//go:build !unix

package publish

import "io/fs"

// fileID identifies a file on disk. On this platform no device/inode numbers
// are available, so only size and modification time detect changes.
type fileID struct{ dev, ino uint64 }

func idOf(fs.FileInfo) fileID { return fileID{} }

// ownerOf: no owners here.
func ownerOf(fs.FileInfo) (uid, gid int) { return -1, -1 }
