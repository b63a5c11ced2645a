package ids

import (
	"os/user"
	"strconv"
	"testing"
)

func TestNamesAndIDs(t *testing.T) {
	u, err := user.LookupId("0")
	if err != nil {
		t.Skip("no user 0 here:", err)
	}
	for range 2 { // the second time from the cache
		if n := UserName(0); n != u.Username {
			t.Errorf("UserName(0) = %q, want %q", n, u.Username)
		}
		if id, ok := UserID(u.Username); !ok || strconv.Itoa(id) != u.Uid {
			t.Errorf("UserID(%q) = %d, %v", u.Username, id, ok)
		}
		if n := UserName(2147480000); n != "" {
			t.Errorf("an unknown uid has the name %q", n)
		}
		if _, ok := UserID("no-such-user-fmq"); ok {
			t.Error("an unknown user has an id")
		}
		if _, ok := GroupID("no-such-group-fmq"); ok {
			t.Error("an unknown group has an id")
		}
	}
	if g, err := user.LookupGroupId("0"); err == nil {
		if n := GroupName(0); n != g.Name {
			t.Errorf("GroupName(0) = %q, want %q", n, g.Name)
		}
		if id, ok := GroupID(g.Name); !ok || id != 0 {
			t.Errorf("GroupID(%q) = %d, %v", g.Name, id, ok)
		}
	}
}
