package diag

import (
	"strconv"
	"strings"
)

// keySep joins the parts of a key path in a TOMLIndex. Keys may contain
// dots when quoted (on."*"), so a control character is used instead.
const keySep = "\x1f"

func joinPath(parts ...string) string { return strings.Join(parts, keySep) }

// TOMLIndex maps the key paths of a TOML document to the positions of
// their keys and values. BurntSushi/toml keeps positions private (and one
// per key name, so the entries of an array of tables overwrite each
// other), so after the document has parsed successfully a small scanner
// walks it again to find where every key and value starts. Array elements
// are path components "0", "1", ...; array-of-tables entries likewise, and
// a table header below an array of tables ([t.sub] after [[t]]) belongs to
// its last entry.
type TOMLIndex struct {
	keys map[string]Pos // where the key (or table header, or array element) starts
	vals map[string]Pos // where the value starts; for strings, the first content byte
	raw  map[string]bool
}

// IndexTOML indexes src, a document that parsed already. On anything it
// does not understand it stops, keeping what it found (lookups then fall
// back to a parent).
func IndexTOML(src string) *TOMLIndex {
	ix := &TOMLIndex{keys: map[string]Pos{}, vals: map[string]Pos{}, raw: map[string]bool{}}
	s := &tomlScanner{src: src, line: 1, col: 1, ix: ix, arrays: map[string]int{}}
	func() {
		defer func() { _ = recover() }() // positions are best effort: never fail a load
		s.document()
	}()
	return ix
}

// Key returns the position of the key at path, or of the nearest ancestor
// that has one (1:1 when none has).
func (ix *TOMLIndex) Key(parts ...string) Pos {
	for n := len(parts); n > 0; n-- {
		if p, ok := ix.keys[joinPath(parts[:n]...)]; ok {
			return p
		}
	}
	return Pos{1, 1}
}

// Val returns the position of the value at path (falling back to its key).
func (ix *TOMLIndex) Val(parts ...string) Pos {
	if p, ok := ix.vals[joinPath(parts...)]; ok {
		return p
	}
	return ix.Key(parts...)
}

// Plain reports whether the string value at path is written so that byte
// offsets inside it equal byte offsets in the file (a one-line string with
// no escapes), which lets errors point inside it.
func (ix *TOMLIndex) Plain(parts ...string) bool {
	return !ix.raw[joinPath(parts...)]
}

// Keys calls f with every indexed key path and where it starts.
func (ix *TOMLIndex) Keys(f func(path []string, p Pos)) {
	for k, p := range ix.keys {
		f(strings.Split(k, keySep), p)
	}
}

type tomlScanner struct {
	src       string
	i         int
	line, col int
	ix        *TOMLIndex
	arrays    map[string]int // array-of-tables counters
}

func (s *tomlScanner) pos() Pos { return Pos{s.line, s.col} }

func (s *tomlScanner) eof() bool { return s.i >= len(s.src) }

func (s *tomlScanner) peek() byte {
	if s.i < len(s.src) {
		return s.src[s.i]
	}
	return 0
}

func (s *tomlScanner) next() byte {
	c := s.src[s.i]
	s.i++
	if c == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return c
}

func (s *tomlScanner) hasPrefix(p string) bool {
	return len(s.src)-s.i >= len(p) && s.src[s.i:s.i+len(p)] == p
}

// skip skips blanks, and newlines and comments when nl is true.
func (s *tomlScanner) skip(nl bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '\n' && nl:
			s.next()
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

func (s *tomlScanner) document() {
	var prefix []string
	for {
		s.skip(true)
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			p := s.pos()
			s.next()
			array := false
			if s.peek() == '[' {
				s.next()
				array = true
			}
			s.skip(false)
			names := s.keyPath()
			s.skip(false)
			for !s.eof() && s.peek() == ']' {
				s.next()
			}
			// Resolve the header: a name that is an array of tables so far
			// means its last entry; the last name of [[...]] opens a new one.
			var key []string
			for j, name := range names {
				key = append(key, name)
				k := joinPath(key...)
				if j == len(names)-1 && array {
					n := s.arrays[k]
					s.arrays[k] = n + 1
					key = append(key, strconv.Itoa(n))
				} else if n, ok := s.arrays[k]; ok {
					key = append(key, strconv.Itoa(n-1))
				}
			}
			prefix = key
			for i := 1; i <= len(prefix); i++ {
				s.setKey(prefix[:i], p)
			}
			continue
		}
		s.keyValue(prefix)
	}
}

func (s *tomlScanner) setKey(path []string, p Pos) {
	k := joinPath(path...)
	if _, dup := s.ix.keys[k]; !dup {
		s.ix.keys[k] = p
	}
}

// keyValue reads `a.b = value` relative to prefix.
func (s *tomlScanner) keyValue(prefix []string) {
	p := s.pos()
	key := s.keyPath()
	full := append(append([]string{}, prefix...), key...)
	for i := len(prefix) + 1; i <= len(full); i++ {
		s.setKey(full[:i], p)
	}
	s.skip(false)
	if s.peek() == '=' {
		s.next()
	}
	s.skip(false)
	s.value(full)
}

func (s *tomlScanner) keyPath() []string {
	var parts []string
	for !s.eof() {
		s.skip(false)
		switch c := s.peek(); c {
		case '"', '\'':
			v, _ := s.str()
			parts = append(parts, v)
		default:
			st := s.i
			for !s.eof() {
				c := s.peek()
				if c == '.' || c == '=' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
					break
				}
				s.next()
			}
			parts = append(parts, s.src[st:s.i])
		}
		s.skip(false)
		if s.peek() != '.' {
			return parts
		}
		s.next()
	}
	return parts
}

// str reads a string of any TOML form; it returns the decoded value (good
// enough for keys) and whether the value's bytes differ from the source.
func (s *tomlScanner) str() (string, bool) {
	q := s.next()
	multi := false
	if s.hasPrefix(string([]byte{q, q})) {
		s.next()
		s.next()
		multi = true
	}
	st := s.i
	escaped := multi
	for !s.eof() {
		if multi && s.hasPrefix(string([]byte{q, q, q})) {
			v := s.src[st:s.i]
			s.next()
			s.next()
			s.next()
			for s.peek() == q { // up to two extra quotes belong to the content
				s.next()
			}
			return v, true
		}
		c := s.peek()
		if !multi && c == q {
			v := s.src[st:s.i]
			s.next()
			if escaped {
				if u, err := strconv.Unquote(`"` + v + `"`); err == nil {
					v = u
				}
			}
			return v, escaped
		}
		if c == '\\' && q == '"' {
			escaped = true
			s.next()
		}
		if !s.eof() {
			s.next()
		}
	}
	return s.src[st:], escaped
}

func (s *tomlScanner) value(path []string) {
	k := joinPath(path...)
	switch c := s.peek(); c {
	case '"', '\'':
		p := s.pos()
		p.Col++
		if s.hasPrefix(string([]byte{c, c, c})) {
			p.Col += 2
		}
		_, esc := s.str()
		s.ix.vals[k] = p
		if esc {
			s.ix.raw[k] = true
		}
	case '{':
		s.ix.vals[k] = s.pos()
		s.next()
		for {
			s.skip(true)
			if s.eof() {
				return
			}
			if s.peek() == '}' {
				s.next()
				return
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			s.keyValue(path)
		}
	case '[':
		s.ix.vals[k] = s.pos()
		s.next()
		for n := 0; ; {
			s.skip(true)
			if s.eof() {
				return
			}
			if s.peek() == ']' {
				s.next()
				return
			}
			if s.peek() == ',' {
				s.next()
				continue
			}
			el := append(append([]string{}, path...), strconv.Itoa(n))
			s.setKey(el, s.pos())
			s.value(el)
			n++
		}
	default:
		s.ix.vals[k] = s.pos()
		for !s.eof() {
			c := s.peek()
			if c == ',' || c == ']' || c == '}' || c == '\n' || c == '#' {
				return
			}
			s.next()
		}
	}
}
