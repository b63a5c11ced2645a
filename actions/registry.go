// Package actions holds the Go actions that machine files call by name,
// grouped per protocol and role into interp.Library values. Each protocol's
// file registers its libraries from init; tools find them with Lookup (the
// signature of interp.LoadOptions.Library).
package actions

import (
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/fmq/fmq/interp"
)

var (
	mu   sync.RWMutex
	libs = map[string]*interp.Library{}
)

func key(protocol, role string) string { return protocol + "/" + role }

// Register makes a library available for a protocol and role. Registering
// the same pair twice panics (it is a programming error caught at init).
func Register(protocol, role string, lib *interp.Library) {
	mu.Lock()
	defer mu.Unlock()
	k := key(protocol, role)
	if _, dup := libs[k]; dup {
		panic(fmt.Sprintf("actions: library %s registered twice", k))
	}
	libs[k] = lib
}

// Lookup returns the library for a protocol and role, or nil. It is the
// caller's copy (its action table too): changing it changes no one else's.
func Lookup(protocol, role string) *interp.Library {
	mu.RLock()
	defer mu.RUnlock()
	lib := libs[key(protocol, role)]
	if lib == nil {
		return nil
	}
	c := *lib
	c.Actions = maps.Clone(lib.Actions)
	return &c
}

// Names lists registered libraries as "protocol/role", sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(libs))
	for k := range libs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Merge combines action maps into one; a name defined twice panics, since
// action tables are static program data.
func Merge(maps ...interp.Actions) interp.Actions {
	out, err := interp.MergeActions(maps...)
	if err != nil {
		panic(err)
	}
	return out
}
