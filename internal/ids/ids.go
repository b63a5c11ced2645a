// Package ids maps user and group ids to names and back, as rsync does
// for owners and groups (the server sends both; the client prefers the
// name). Lookups use os/user (which reads /etc/passwd and /etc/group
// without cgo) and are cached for the life of the process, failures too.
package ids

import (
	"os/user"
	"strconv"
	"sync"
)

type cache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *cache) get(key string, lookup func(string) (string, error)) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok {
		return v
	}
	if c.m == nil {
		c.m = make(map[string]string)
	}
	v, err := lookup(key)
	if err != nil {
		v = ""
	}
	c.m[key] = v
	return v
}

var userNames, groupNames, userIDs, groupIDs cache

// UserName returns the name of user id uid on this machine, "" if none.
func UserName(uid int) string {
	return userNames.get(strconv.Itoa(uid), func(id string) (string, error) {
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

// GroupName returns the name of group id gid on this machine, "" if none.
func GroupName(gid int) string {
	return groupNames.get(strconv.Itoa(gid), func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

// UserID returns the id of the user called name on this machine.
func UserID(name string) (int, bool) {
	return atoi(userIDs.get(name, func(n string) (string, error) {
		u, err := user.Lookup(n)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	}))
}

// GroupID returns the id of the group called name on this machine.
func GroupID(name string) (int, bool) {
	return atoi(groupIDs.get(name, func(n string) (string, error) {
		g, err := user.LookupGroup(n)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	}))
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}
