//go:build unix

package inbox

import (
	"os"
	"path/filepath"
	"testing"
)

func ownerOfPath(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fileOwner(fi)
}

// Issue 11: owners and groups, as rsync -a keeps them. Root gives a file
// the server's owner and group, mapped by name when this machine knows
// the name (by id with NumericIDs); a user who is not root sets only a
// group it belongs to, and silently leaves the rest (as rsync does).
func TestOwnersAsRsync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	d := t.TempDir()
	ib := open(t, d)
	hdr := func(uid, gid, user, group string) map[string]string {
		h := map[string]string{"UID": uid, "GID": gid}
		if user != "" {
			h["USER"] = user
		}
		if group != "" {
			h["GROUP"] = group
		}
		return h
	}
	check := func(rel string, uid, gid int) {
		t.Helper()
		if u, g := ownerOfPath(t, filepath.Join(d, rel)); u != uid || g != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, u, g, uid, gid)
		}
	}
	// Root, ids unknown here by name: the ids.
	if err := receive(t, ib, "/ids", []byte("x"), 0, 3, hdr("12345", "12346", "no-such-user-fmq", "no-such-group-fmq")); err != nil {
		t.Fatal(err)
	}
	check("ids", 12345, 12346)
	// Root, names known here: the names win over the ids.
	if err := receive(t, ib, "/names", []byte("x"), 0, 3, hdr("12345", "12346", "root", "root")); err != nil {
		t.Fatal(err)
	}
	check("names", 0, 0)
	// A live change of owner alone (SetMeta), on an installed file.
	if changed, err := ib.SetMeta("/names", hdr("4242", "4243", "", "")); err != nil || !changed {
		t.Fatalf("SetMeta: %v %v", changed, err)
	}
	check("names", 4242, 4243)
	if changed, _ := ib.SetMeta("/names", hdr("4242", "4243", "", "")); changed {
		t.Error("SetMeta changed a file already right")
	}
	// NumericIDs: the ids as they are.
	ib.numericIDs = true
	if err := receive(t, ib, "/numeric", []byte("x"), 0, 3, hdr("12345", "12346", "root", "root")); err != nil {
		t.Fatal(err)
	}
	check("numeric", 12345, 12346)
	ib.numericIDs = false
	// Not root, member of group 12346 only: the group, never the owner.
	ib.who = identity{euid: 1000, groups: []int{12346}}
	if err := receive(t, ib, "/member", []byte("x"), 0, 3, hdr("12345", "12346", "", "")); err != nil {
		t.Fatal(err)
	}
	check("member", 0, 12346)
	if err := receive(t, ib, "/stranger", []byte("x"), 0, 3, hdr("12345", "777", "", "")); err != nil {
		t.Fatal(err)
	}
	check("stranger", 0, 0)
	// A server without owner headers (the C reference): left as made.
	ib.who = currentIdentity()
	if err := receive(t, ib, "/plain", []byte("x"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	check("plain", os.Geteuid(), os.Getegid())
}

// A link gets its own owner (lchown, never its target's) and a directory
// fmq made gets the server's, as root.
func TestLinkAndDirectoryOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	d := t.TempDir()
	ib := open(t, d)
	own := map[string]string{"UID": "23456", "GID": "23457"}
	if err := ib.MakeDir("/dir", map[string]string{"MODE": "0755", "UID": "23456", "GID": "23457"}); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, ib, "/dir/f", []byte("x"), 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := ib.SetLinkMeta("/dir/l", "f", "", own); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string][2]int{"dir": {23456, 23457}, "dir/l": {23456, 23457}, "dir/f": {0, 0}} {
		if u, g := ownerOfPath(t, filepath.Join(d, filepath.FromSlash(rel))); u != want[0] || g != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, u, g, want[0], want[1])
		}
	}
	if fi, err := os.Stat(filepath.Join(d, "dir")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dir: mode %v %v after its chown, want 0755", fi, err)
	}
}
