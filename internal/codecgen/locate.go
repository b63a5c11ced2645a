package codecgen

import (
	"fmt"
	"strconv"

	"github.com/fmq/fmq/internal/diag"
)

// Paths name the parts of a model as the checker reports them
// ("message[3].fields[1].type"); locate maps them to file:line:col.

// pathJoin appends a key to a path, quoting keys that are not bare.
func pathJoin(parent, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func pathIndex(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// locate returns the start position of every key and array element of src
// (a valid TOML document) under the checker's path names, from the index
// the machine loader uses too (diag.IndexTOML).
func locate(file, src string) map[string]Pos {
	pos := map[string]Pos{}
	diag.IndexTOML(src).Keys(func(parts []string, p diag.Pos) {
		path := ""
		for i, k := range parts {
			if n, err := strconv.Atoi(k); err == nil && i > 0 && strconv.Itoa(n) == k {
				path = pathIndex(path, n)
			} else {
				path = pathJoin(path, k)
			}
		}
		pos[path] = Pos{File: file, Line: p.Line, Col: p.Col}
	})
	return pos
}
