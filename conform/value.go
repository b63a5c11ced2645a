package conform

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/fmq/fmq/codec"
)

// token is one blank-separated word of a line; quotes, {...}, [...] and
// <...> (after "=") keep blanks inside one token.
type token struct {
	text string
	col  int // 0-based until the parser shifts it
}

// tokenize splits a line into tokens, stopping at a "#" that starts a token.
func tokenize(s string) ([]token, *posErr) {
	var toks []token
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) || s[i] == '#' {
			break
		}
		start := i
		depth := 0
		for i < len(s) {
			c := s[i]
			if depth == 0 && (c == ' ' || c == '\t') {
				break
			}
			switch c {
			case '"':
				q, err := strconv.QuotedPrefix(s[i:])
				if err != nil {
					return nil, &posErr{i, "unterminated or bad quoted string"}
				}
				i += len(q)
				continue
			case '\'':
				j := strings.IndexByte(s[i+1:], '\'')
				if j < 0 {
					return nil, &posErr{i, "unterminated '...' string"}
				}
				i += j + 2
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth > 0 {
					depth--
				}
			case '<':
				if i == start || s[i-1] == '=' {
					j := strings.IndexByte(s[i:], '>')
					if j < 0 {
						return nil, &posErr{i, "unterminated <...>"}
					}
					i += j + 1
					continue
				}
			}
			i++
		}
		if depth != 0 {
			return nil, &posErr{start, "unbalanced { } or [ ]"}
		}
		toks = append(toks, token{text: s[start:i], col: start})
	}
	return toks, nil
}

// stripComment removes a trailing " # comment" outside quotes.
func stripComment(s string) string {
	toks, err := tokenize(s)
	if err != nil || len(toks) == 0 {
		return s
	}
	last := toks[len(toks)-1]
	return s[:last.col+len(last.text)]
}

type valueKind uint8

const (
	vText valueKind = iota // bare word, "quoted", 'raw', @SECTION
	vHash                  // {k=v,...}
	vList                  // [a,b]
	vLen                   // <N bytes>
)

type value struct {
	kind valueKind
	text string
	hash map[string]string
	list []string
	n    int
}

func (v value) bytes() []byte { return []byte(v.text) }

// parseValue reads one value as written in a script or a wire trace.
func parseValue(s string, sc *Script) (value, error) {
	switch {
	case s == "":
		return value{}, nil
	case s[0] == '"':
		t, err := strconv.Unquote(s)
		if err != nil {
			return value{}, fmt.Errorf("bad quoted string %s", s)
		}
		return value{text: t}, nil
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return value{}, fmt.Errorf("bad '...' string %s", s)
		}
		return value{text: s[1 : len(s)-1]}, nil
	case s[0] == '@':
		if sc == nil {
			return value{}, fmt.Errorf("%s: no sections here", s)
		}
		d, ok := sc.File(s[1:])
		if !ok {
			return value{}, fmt.Errorf("no section %q", s[1:])
		}
		return value{text: string(d)}, nil
	case s[0] == '<':
		var n int
		var unit string
		if _, err := fmt.Sscanf(s, "<%d %s", &n, &unit); err != nil || (unit != "bytes>" && unit != "byte>") || n < 0 {
			return value{}, fmt.Errorf("want <N bytes>, got %s", s)
		}
		return value{kind: vLen, n: n, text: s}, nil
	case s[0] == '{':
		if s[len(s)-1] != '}' {
			return value{}, fmt.Errorf("bad hash %s", s)
		}
		items, err := splitItems(s[1 : len(s)-1])
		if err != nil {
			return value{}, err
		}
		h := map[string]string{}
		for _, it := range items {
			k, v, ok := cutTop(it, '=')
			if !ok {
				return value{}, fmt.Errorf("hash entry %q: want key=value", it)
			}
			kv, err := parseValue(strings.TrimSpace(k), sc)
			if err != nil {
				return value{}, err
			}
			vv, err := parseValue(strings.TrimSpace(v), sc)
			if err != nil {
				return value{}, err
			}
			h[kv.text] = vv.text
		}
		return value{kind: vHash, hash: h, text: s}, nil
	case s[0] == '[':
		if s[len(s)-1] != ']' {
			return value{}, fmt.Errorf("bad list %s", s)
		}
		items, err := splitItems(s[1 : len(s)-1])
		if err != nil {
			return value{}, err
		}
		l := []string{}
		for _, it := range items {
			v, err := parseValue(strings.TrimSpace(it), sc)
			if err != nil {
				return value{}, err
			}
			l = append(l, v.text)
		}
		return value{kind: vList, list: l, text: s}, nil
	}
	return value{text: s}, nil
}

// splitItems splits "a,b" at top-level commas, outside quotes.
func splitItems(s string) ([]string, error) {
	var out []string
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return nil, fmt.Errorf("bad quoted string in %q", s)
			}
			i += len(q) - 1
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated '...' in %q", s)
			}
			i += j + 1
		case ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:]), nil
}

// cutTop cuts at the first sep outside quotes.
func cutTop(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return s, "", false
			}
			i += len(q) - 1
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return s, "", false
			}
			i += j + 1
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// goValue converts a value to the Go type of a field (codec.Message.Set).
func (v value) goValue(fi codec.FieldInfo) (any, error) {
	switch fi.Type {
	case codec.Number1, codec.Number2, codec.Number4, codec.Number8:
		if v.kind != vText {
			return nil, fmt.Errorf("want a number, got %s", v.text)
		}
		base, t := 10, v.text
		if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X") {
			base, t = 16, t[2:]
		}
		n, err := strconv.ParseUint(t, base, 64)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %q", v.text)
		}
		bits := map[codec.FieldType]int{codec.Number1: 8, codec.Number2: 16, codec.Number4: 32, codec.Number8: 64}[fi.Type]
		if bits < 64 && n > math.MaxUint64>>(64-bits) {
			return nil, fmt.Errorf("%d does not fit a %s", n, fi.Type)
		}
		switch fi.Type {
		case codec.Number1:
			return uint8(n), nil
		case codec.Number2:
			return uint16(n), nil
		case codec.Number4:
			return uint32(n), nil
		}
		return n, nil
	case codec.String, codec.Longstr:
		if v.kind != vText {
			return nil, fmt.Errorf("want a string, got %s", v.text)
		}
		return v.text, nil
	case codec.Chunk, codec.Octets:
		switch v.kind {
		case vText:
			return []byte(v.text), nil
		case vLen:
			// A recorded trace shows only a chunk's length: replay zeros.
			return make([]byte, v.n), nil
		}
		return nil, fmt.Errorf("want bytes (\"text\", @SECTION or <N bytes>), got %s", v.text)
	case codec.Hash:
		if v.kind != vHash {
			return nil, fmt.Errorf("want a hash {key=value,...}, got %q", v.text)
		}
		return v.hash, nil
	case codec.Strings:
		if v.kind != vList {
			return nil, fmt.Errorf("want a list [a,b,...], got %q", v.text)
		}
		return v.list, nil
	}
	return nil, fmt.Errorf("unsupported field type %s", fi.Type)
}
