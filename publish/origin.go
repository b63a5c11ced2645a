package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// Origins (spec/filemq.md 7.2, ORIGIN): every published directory has a
// stable identity, which a client records for each file it installs from
// it, so that it deletes or replaces a file only on behalf of the
// directory it came from. The identity is derived, not stored: nothing is
// written into a published tree or kept in a state file, and a server
// restarted with the same directory has the same one.
//
// Without Options.ServerID, a mount's origin is a hash of the machine's id
// (/etc/machine-id, else the host name) and the directory's absolute path;
// with it, a hash of ServerID and the mount's alias (for a directory that
// moves, or a server that moves to another machine).

// originOf returns the origin of a mount: 32 lowercase hex digits.
func originOf(serverID string, m Mount) string {
	h := sha256.New()
	if serverID != "" {
		h.Write([]byte("fmq-origin\x00id\x00" + serverID + "\x00" + m.Alias))
	} else {
		dir, err := filepath.Abs(m.Dir)
		if err != nil {
			dir = m.Dir
		}
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			dir = r
		}
		h.Write([]byte("fmq-origin\x00dir\x00" + machineID() + "\x00" + dir))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// machineID names this machine: systemd's machine id, else the host name.
func machineID() string {
	for _, f := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(f); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id
			}
		}
	}
	h, _ := os.Hostname()
	return "host:" + h
}

// Origin returns the origin of the published directory that vpath lies
// in (published or not: a deleted file's too), or "" when no mount's alias
// covers it.
func (t *Tree) Origin(vpath string) string {
	for i := range t.mounts {
		if underPrefix(t.mounts[i].Alias, vpath) {
			return t.origins[i]
		}
	}
	return ""
}
