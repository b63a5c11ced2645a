package conform

import (
	"bytes"
	"strings"
)

// File is one section of a txtar archive: "-- NAME --" then its content.
type File struct {
	Name string
	Data []byte
	Line int // line of the "-- NAME --" marker
}

// splitTxtar splits a txtar archive into its leading comment (the script)
// and its files. Like golang.org/x/tools/txtar: a marker line is exactly
// "-- NAME --"; each file's data ends with a newline unless empty.
func splitTxtar(data []byte) (comment []byte, files []File) {
	line := 1
	var cur *File
	var buf []byte
	flush := func() {
		if cur == nil {
			comment = buf
		} else {
			cur.Data = buf
			files = append(files, *cur)
		}
		buf = nil
	}
	for len(data) > 0 {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			l, data = append(data[:len(data):len(data)], '\n'), nil
		}
		if name, ok := marker(l); ok {
			flush()
			cur = &File{Name: name, Line: line}
		} else {
			buf = append(buf, l...)
		}
		line++
	}
	flush()
	return comment, files
}

func marker(l []byte) (string, bool) {
	s := strings.TrimRight(string(l), "\r\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	name := strings.TrimSpace(s[3 : len(s)-3])
	return name, name != ""
}
