package codecgen

import (
	"fmt"
	"strconv"
	"strings"
)

// BurntSushi/toml v1.6.0 keeps key positions private (and one position per
// key name, so the entries of an array of tables overwrite each other).
// locate walks the source of an already-validated TOML document once and
// records where every key and array element starts, under the same path
// names the model checker uses ("message[3].fields[1].type"), so every
// problem can be reported as file:line:col.

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

type locator struct {
	src    string
	i      int
	line   int
	lstart int // byte index where the current line starts
	pos    map[string]Pos
	arrays map[string]int // array-of-tables path -> number of elements so far
	file   string
}

// locate returns the start position of every key and array element of src.
// It assumes src is valid TOML; on anything it does not understand it stops
// and returns what it found so far (lookups then fall back to a parent).
func locate(file, src string) map[string]Pos {
	l := &locator{src: src, line: 1, pos: map[string]Pos{}, arrays: map[string]int{}, file: file}
	func() {
		defer func() { _ = recover() }() // defensive: positions are best effort
		l.document()
	}()
	return l.pos
}

func (l *locator) here() Pos {
	return Pos{File: l.file, Line: l.line, Col: l.i - l.lstart + 1}
}

func (l *locator) peek() byte {
	if l.i < len(l.src) {
		return l.src[l.i]
	}
	return 0
}

func (l *locator) advance() {
	if l.i < len(l.src) {
		if l.src[l.i] == '\n' {
			l.line++
			l.lstart = l.i + 1
		}
		l.i++
	}
}

func (l *locator) skipSpace() {
	for c := l.peek(); c == ' ' || c == '\t'; c = l.peek() {
		l.advance()
	}
}

// skipAll skips blanks, newlines and comments.
func (l *locator) skipAll() {
	for l.i < len(l.src) {
		switch c := l.peek(); {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance()
		case c == '#':
			for l.i < len(l.src) && l.peek() != '\n' {
				l.advance()
			}
		default:
			return
		}
	}
}

func (l *locator) document() {
	table := ""
	for {
		l.skipAll()
		if l.i >= len(l.src) {
			return
		}
		if l.peek() == '[' {
			start := l.here()
			l.advance()
			array := l.peek() == '['
			if array {
				l.advance()
			}
			l.skipSpace()
			keys := l.key()
			l.skipSpace()
			l.advance() // ]
			if array {
				l.advance() // ]
			}
			table = l.resolve(keys, array, start)
			continue
		}
		l.keyValue(table)
	}
}

// resolve turns a table header into a path, numbering arrays of tables.
func (l *locator) resolve(keys []string, array bool, start Pos) string {
	cur := ""
	for j, k := range keys {
		cur = pathJoin(cur, k)
		last := j == len(keys)-1
		if last && array {
			l.arrays[cur]++
			cur = pathIndex(cur, l.arrays[cur]-1)
		} else if n, ok := l.arrays[cur]; ok {
			cur = pathIndex(cur, n-1)
		}
		if _, seen := l.pos[cur]; !seen || last {
			l.pos[cur] = start
		}
	}
	return cur
}

func (l *locator) keyValue(table string) {
	start := l.here()
	keys := l.key()
	p := table
	for _, k := range keys {
		p = pathJoin(p, k)
		if _, seen := l.pos[p]; !seen {
			l.pos[p] = start
		}
	}
	l.pos[p] = start
	l.skipSpace()
	if l.peek() != '=' {
		panic("locate: want =")
	}
	l.advance()
	l.skipSpace()
	l.value(p)
}

// key reads a possibly dotted key.
func (l *locator) key() []string {
	var keys []string
	for {
		l.skipSpace()
		switch l.peek() {
		case '"', '\'':
			keys = append(keys, l.str())
		default:
			s := l.i
			for l.i < len(l.src) && isBareKey(l.src[l.i:l.i+1]) {
				l.advance()
			}
			if s == l.i {
				panic("locate: empty key")
			}
			keys = append(keys, l.src[s:l.i])
		}
		l.skipSpace()
		if l.peek() != '.' {
			return keys
		}
		l.advance()
	}
}

func (l *locator) value(p string) {
	switch c := l.peek(); c {
	case '"', '\'':
		l.str()
	case '[':
		l.advance()
		for n := 0; ; n++ {
			l.skipAll()
			if l.peek() == ']' {
				l.advance()
				return
			}
			l.pos[pathIndex(p, n)] = l.here()
			l.value(pathIndex(p, n))
			l.skipAll()
			if l.peek() == ',' {
				l.advance()
			}
		}
	case '{':
		l.advance()
		for {
			l.skipAll()
			switch l.peek() {
			case '}':
				l.advance()
				return
			case ',':
				l.advance()
				continue
			case 0:
				panic("locate: eof in inline table")
			}
			l.keyValue(p)
		}
	default: // number, bool, date: up to a delimiter
		for l.i < len(l.src) {
			switch l.peek() {
			case ',', ']', '}', '\n', '\r', '#':
				return
			}
			l.advance()
		}
	}
}

// str reads a basic, literal or multi-line string and returns its
// (unescaped, for basic strings) content.
func (l *locator) str() string {
	q := l.peek()
	multi := strings.HasPrefix(l.src[l.i:], string([]byte{q, q, q}))
	if multi {
		l.advance()
		l.advance()
		l.advance()
	} else {
		l.advance()
	}
	var b strings.Builder
	for l.i < len(l.src) {
		c := l.peek()
		if c == q {
			if !multi {
				l.advance()
				return b.String()
			}
			if strings.HasPrefix(l.src[l.i:], string([]byte{q, q, q})) {
				l.advance()
				l.advance()
				l.advance()
				for l.peek() == q { // up to two quotes may close the content
					b.WriteByte(q)
					l.advance()
				}
				return b.String()
			}
		}
		if c == '\\' && q == '"' {
			l.advance()
			e := l.peek()
			l.advance()
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'e':
				b.WriteByte(0x1b)
			case 'u', 'U', 'x':
				n := map[byte]int{'u': 4, 'U': 8, 'x': 2}[e]
				if l.i+n <= len(l.src) {
					if v, err := strconv.ParseUint(l.src[l.i:l.i+n], 16, 32); err == nil {
						b.WriteRune(rune(v))
					}
				}
				for k := 0; k < n; k++ {
					l.advance()
				}
			case '\n', ' ', '\t', '\r': // line-ending backslash
				for c := l.peek(); c == ' ' || c == '\t' || c == '\r' || c == '\n'; c = l.peek() {
					l.advance()
				}
			default:
				b.WriteByte(e)
			}
			continue
		}
		b.WriteByte(c)
		l.advance()
	}
	panic("locate: unterminated string")
}
