// Package machines holds the project's machine files, embedded so that the
// fmqrun binary runs them without a source tree. A file given on the command
// line overrides the embedded copy.
package machines

import (
	"embed"
	"fmt"
	"os"
	"strings"
)

//go:embed *.toml
var FS embed.FS

// EmbeddedPrefix names an embedded machine whatever is on disk:
// "embedded:fmq_server.toml". Hosts use it for their default machine, so a
// file of the same name in the working directory is never picked up
// silently.
const EmbeddedPrefix = "embedded:"

// Source returns a machine file's name (for error positions and logs) and
// contents: "embedded:NAME" is the embedded file NAME; any other path is
// the file on disk, or, when no such file exists, the embedded file of that
// name ("fmq_server.toml"), named "embedded:fmq_server.toml".
func Source(path string) (string, []byte, error) {
	name, embedded := strings.CutPrefix(path, EmbeddedPrefix)
	if !embedded {
		if src, err := os.ReadFile(path); err == nil {
			return path, src, nil
		} else if !os.IsNotExist(err) {
			return "", nil, err
		}
	}
	src, err := FS.ReadFile(name)
	if err != nil {
		if embedded {
			return "", nil, fmt.Errorf("machine %q: no embedded machine of that name (have %s)", path, strings.Join(Names(), ", "))
		}
		return "", nil, fmt.Errorf("machine %q: neither a file nor an embedded machine (embedded: %s)", path, strings.Join(Names(), ", "))
	}
	return EmbeddedPrefix + name, src, nil
}

// Names lists the embedded machines.
func Names() []string {
	ents, _ := FS.ReadDir(".")
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
