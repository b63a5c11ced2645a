// Package vpath holds the one rule set for FileMQ virtual paths: the
// subscriptions a server accepts, the aliases it publishes under, the file
// names a client stores, the trees the bench harness compares.
package vpath

import (
	"fmt"
	"strings"
)

const (
	MaxPath      = 4096 // bytes in a virtual path
	MaxComponent = 240  // bytes in one component (room for an inbox's partial-file name)
)

// Problem returns why p is not a valid virtual path, or "" when it is. A
// valid path starts with "/", is at most MaxPath bytes, holds no NUL,
// backslash or control character, and its components ("/" alone has none)
// are not empty, not "." or "..", not hidden (starting with ".") and at
// most MaxComponent bytes each.
func Problem(p string) string {
	switch {
	case p == "":
		return "is empty"
	case p[0] != '/':
		return `does not start with "/"`
	case len(p) > MaxPath:
		return fmt.Sprintf("is longer than %d bytes", MaxPath)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return "contains NUL"
		case c == '\\':
			return "contains a backslash"
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		}
	}
	if p == "/" {
		return ""
	}
	for _, c := range strings.Split(p[1:], "/") {
		switch {
		case c == "":
			return `is not clean: an empty component (a trailing "/" or "//")`
		case c == "." || c == "..":
			return `is not clean: a "` + c + `" component`
		case c[0] == '.':
			return "has a hidden component (starting with \".\")"
		case len(c) > MaxComponent:
			return fmt.Sprintf("has a component longer than %d bytes", MaxComponent)
		}
	}
	return ""
}

// Check returns Problem as an error naming the path, or nil.
func Check(p string) error {
	if why := Problem(p); why != "" {
		if len(p) > 200 {
			p = p[:200] + "..."
		}
		return fmt.Errorf("path %q %s", p, why)
	}
	return nil
}
