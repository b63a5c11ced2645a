// Package machines holds the project's machine files, embedded so that the
// fmqrun binary runs them without a source tree. A file given on the command
// line overrides the embedded copy.
package machines

import (
	"embed"
	"fmt"
	"os"
)

//go:embed *.toml
var FS embed.FS

// Source returns a machine file's name (for error positions) and contents:
// path itself when it names a file on disk, else the embedded file of that
// name ("fmq_server.toml").
func Source(path string) (string, []byte, error) {
	if src, err := os.ReadFile(path); err == nil {
		return path, src, nil
	} else if !os.IsNotExist(err) {
		return "", nil, err
	}
	src, err := FS.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("machine %q: neither a file nor an embedded machine (%v)", path, err)
	}
	return "machines/" + path, src, nil
}
