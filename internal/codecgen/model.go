// Package codecgen turns a message model (spec/*.toml, format in
// spec/model.md) into a Go codec package implementing codec.Protocol.
//
// Load parses and validates a model and reports every problem at once, as a
// sorted ErrorList of file:line:col messages. Generate turns a valid model
// into gofmt'd Go source (the codec) and a Go test file (its golden vectors).
// cmd/codecgen is the thin main that `go generate ./...` runs.
package codecgen

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"go/token"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/fmq/fmq/codec"
)

// Model is a validated message model.
type Model struct {
	File      string // as given to Load, used in positions and the generated header
	Name      string // protocol name, lower case; also the default Go package name
	Signature uint16
	Doc       string
	Grammar   string
	Messages  []*Message // sorted by id
}

// Message is one message of a model.
type Message struct {
	Name     string // UPPER-KEBAB
	GoName   string // OhaiOk
	ID       uint8
	From     codec.Direction
	Doc      string
	Fields   []*Field
	Examples []*Example
	Pos      Pos
}

// Field is one field of a message.
type Field struct {
	Name    string // lower_snake model name
	GoName  string // Go struct field name
	Type    codec.FieldType
	Const   any // nil, uint64 (numbers) or string
	Size    int // octets only
	Doc     string
	Example any // nil or the typed example value (see Value)
	Pos     Pos
}

// Example is a golden vector: field values and the exact frame they encode to.
// Values holds typed values (see Value) for the fields the example names;
// other fields are zero (constants: their constant).
type Example struct {
	Values map[string]any
	Wire   []byte
	Pos    Pos
}

// Value types used in Field.Const, Field.Example and Example.Values, by
// field type: numbers uint64, string/longstr string, hash map[string]string,
// chunk/octets []byte, strings []string.

var (
	protoNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	msgNameRE   = regexp.MustCompile(`^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$`)
	fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	grammarRE   = regexp.MustCompile(`\b([CS]):([A-Za-z0-9-]+)`)
)

// reservedGo are Go names a field may not take: the Message methods.
var reservedGo = map[string]bool{"Info": true, "Length": true, "Append": true, "Decode": true, "Get": true, "Set": true, "Reset": true}

// Package-level identifiers every generated package declares.
var fixedIdents = []string{"Protocol", "Decode", "Signature", "ProtocolName"}

// checker accumulates problems with their positions.
type checker struct {
	file string
	pos  map[string]Pos
	errs ErrorList
}

// at returns the position of path, or of its nearest located parent.
func (c *checker) at(path string) Pos {
	for p := path; p != ""; {
		if pos, ok := c.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Pos{File: c.file, Line: 1, Col: 1}
}

func (c *checker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, errorAt(c.at(path), fmt.Sprintf(format, args...)))
}

// Load parses and validates the model in src; file names it in positions
// (use a module-relative path such as "spec/filemq.toml"). The error, if
// any, is an ErrorList holding every problem found.
func Load(file string, src []byte) (*Model, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(src), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, ErrorList{errorAt(Pos{File: file, Line: pe.Position.Line, Col: pe.Position.Col}, "toml: "+pe.Message)}
		}
		return nil, ErrorList{errorAt(Pos{File: file, Line: 1, Col: 1}, err.Error())}
	}
	c := &checker{file: file, pos: locate(file, string(src))}
	m := c.model(raw)
	m.File = file
	c.errs.Sort()
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return m, nil
}

func (c *checker) unknownKeys(path string, t map[string]any, known ...string) {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, kn := range known {
			ok = ok || k == kn
		}
		if !ok {
			c.errorf(pathJoin(path, k), "unknown key %q (want one of %s)", k, strings.Join(known, ", "))
		}
	}
}

// str returns a string value; required reports a missing key.
func (c *checker) str(path string, t map[string]any, key string, required bool) (string, bool) {
	v, ok := t[key]
	if !ok {
		if required {
			c.errorf(path, "missing %q", key)
		}
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		c.errorf(pathJoin(path, key), "%s must be a string, not %s", key, tomlType(v))
		return "", false
	}
	return s, true
}

func (c *checker) integer(path string, t map[string]any, key string, max int64) (int64, bool) {
	v, ok := t[key]
	if !ok {
		c.errorf(path, "missing %q", key)
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		c.errorf(pathJoin(path, key), "%s must be an integer, not %s", key, tomlType(v))
		return 0, false
	}
	if n < 0 || n > max {
		c.errorf(pathJoin(path, key), "%s %d out of range 0..%d", key, n, max)
		return 0, false
	}
	return n, true
}

// tables accepts an array of tables or an inline array of inline tables.
func (c *checker) tables(path string, v any) []map[string]any {
	switch v := v.(type) {
	case []map[string]any:
		return v
	case []any:
		out := make([]map[string]any, 0, len(v))
		for i, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				c.errorf(pathIndex(path, i), "must be a table, not %s", tomlType(e))
				continue
			}
			out = append(out, t)
		}
		if len(out) != len(v) {
			return nil
		}
		return out
	case map[string]any:
		return []map[string]any{v}
	}
	c.errorf(path, "must be a table or an array of tables, not %s", tomlType(v))
	return nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

func (c *checker) model(raw map[string]any) *Model {
	m := &Model{}
	c.unknownKeys("", raw, "protocol", "message")
	pt, ok := raw["protocol"].(map[string]any)
	if !ok {
		if _, present := raw["protocol"]; present {
			c.errorf("protocol", "protocol must be a table")
		} else {
			c.errorf("", "missing [protocol] table")
		}
		pt = map[string]any{}
	} else {
		c.unknownKeys("protocol", pt, "name", "signature", "doc", "grammar")
	}
	if name, ok := c.str("protocol", pt, "name", true); ok {
		if !protoNameRE.MatchString(name) || token.IsKeyword(name) {
			c.errorf("protocol.name", "protocol name %q must be a lower-case Go identifier ([a-z][a-z0-9_]*, not a keyword)", name)
		}
		m.Name = name
	}
	if sig, ok := c.integer("protocol", pt, "signature", 0xFFFF); ok {
		m.Signature = uint16(sig)
	}
	m.Doc, _ = c.str("protocol", pt, "doc", false)
	m.Grammar, _ = c.str("protocol", pt, "grammar", false)

	rawMsgs, present := raw["message"]
	if !present {
		c.errorf("", "no [[message]] defined")
		return m
	}
	byName := map[string]*Message{}
	byID := map[uint8]*Message{}
	idents := map[string]string{}
	for _, id := range fixedIdents {
		idents[id] = "the generated package"
	}
	for i, t := range c.tables("message", rawMsgs) {
		p := pathIndex("message", i)
		msg := c.message(p, t)
		if msg == nil {
			continue
		}
		if prev, dup := byName[msg.Name]; dup {
			c.errorf(pathJoin(p, "name"), "duplicate message name %s (first defined at %s)", msg.Name, prev.Pos)
			continue
		}
		byName[msg.Name] = msg
		if prev, dup := byID[msg.ID]; dup {
			c.errorf(pathJoin(p, "id"), "duplicate message id 0x%02X: %s already has it (%s)", msg.ID, prev.Name, prev.Pos)
			continue
		}
		clash := false
		for _, id := range []string{msg.GoName, "New" + msg.GoName, "ID" + msg.GoName, "info" + msg.GoName} {
			if other, dup := idents[id]; dup {
				c.errorf(pathJoin(p, "name"), "message %s: Go identifier %s clashes with %s", msg.Name, id, other)
				clash = true
			}
		}
		if clash {
			continue
		}
		for _, id := range []string{msg.GoName, "New" + msg.GoName, "ID" + msg.GoName, "info" + msg.GoName} {
			idents[id] = "message " + msg.Name
		}
		byID[msg.ID] = msg
		m.Messages = append(m.Messages, msg)
	}
	sort.Slice(m.Messages, func(i, j int) bool { return m.Messages[i].ID < m.Messages[j].ID })
	if m.Grammar != "" {
		c.grammar(m.Grammar, byName)
	}
	// Golden vectors are checked against a reference encoding of the model.
	for _, msg := range m.Messages {
		for _, ex := range msg.Examples {
			if ex.Wire == nil {
				continue
			}
			want := m.encode(msg, ex.Values)
			if !bytes.Equal(want, ex.Wire) {
				c.errs = append(c.errs, errorAt(ex.Pos, fmt.Sprintf("example of %s: wire %X does not match its fields, which encode to %X", msg.Name, ex.Wire, want)))
			}
		}
	}
	return m
}

func (c *checker) grammar(g string, byName map[string]*Message) {
	for _, sm := range grammarRE.FindAllStringSubmatch(g, -1) {
		side, name := sm[1], sm[2]
		msg, ok := byName[name]
		if !ok {
			c.errorf("protocol.grammar", "grammar names %s:%s, but no message %s is defined", side, name, name)
			continue
		}
		want := codec.FromClient
		if side == "S" {
			want = codec.FromServer
		}
		if msg.From&want == 0 {
			c.errorf("protocol.grammar", "grammar has %s:%s, but %s is sent from %s", side, name, name, msg.From)
		}
	}
}

func (c *checker) message(p string, t map[string]any) *Message {
	c.unknownKeys(p, t, "name", "id", "from", "doc", "fields", "example")
	msg := &Message{Pos: c.at(p)}
	ok := true
	if name, found := c.str(p, t, "name", true); found {
		if !msgNameRE.MatchString(name) {
			c.errorf(pathJoin(p, "name"), "message name %q must be UPPER-KEBAB ([A-Z][A-Z0-9]*, parts joined by -)", name)
			ok = false
		}
		msg.Name = name
		msg.GoName = goMessageName(name)
	} else {
		ok = false
	}
	id, idOK := c.integer(p, t, "id", 255)
	if idOK {
		msg.ID = uint8(id)
	} else {
		ok = false
	}
	if from, found := c.str(p, t, "from", true); found {
		switch from {
		case "client":
			msg.From = codec.FromClient
		case "server":
			msg.From = codec.FromServer
		case "either":
			msg.From = codec.FromEither
		default:
			c.errorf(pathJoin(p, "from"), "from %q must be client, server or either", from)
			ok = false
		}
	} else {
		ok = false
	}
	msg.Doc, _ = c.str(p, t, "doc", false)
	if rf, present := t["fields"]; present {
		fp := pathJoin(p, "fields")
		names := map[string]*Field{}
		goNames := map[string]*Field{}
		for i, ft := range c.tables(fp, rf) {
			f := c.field(pathIndex(fp, i), ft)
			if f == nil {
				ok = false
				continue
			}
			if prev, dup := names[f.Name]; dup {
				c.errorf(pathJoin(pathIndex(fp, i), "name"), "duplicate field %s (first defined at %s)", f.Name, prev.Pos)
				ok = false
				continue
			}
			if prev, dup := goNames[f.GoName]; dup {
				c.errorf(pathJoin(pathIndex(fp, i), "name"), "field %s has the same Go name %s as field %s", f.Name, f.GoName, prev.Name)
				ok = false
				continue
			}
			names[f.Name] = f
			goNames[f.GoName] = f
			msg.Fields = append(msg.Fields, f)
		}
	}
	// Field problems are reported but do not hide the message from the
	// duplicate and grammar checks; any problem fails Load anyway.
	fieldsOK := ok
	ok = msg.Name != "" && msgNameRE.MatchString(msg.Name) && msg.From != 0 && idOK
	if re, present := t["example"]; present && fieldsOK {
		ep := pathJoin(p, "example")
		tabs := c.tables(ep, re)
		for i, et := range tabs {
			xp := ep
			if _, isArray := re.(map[string]any); !isArray {
				xp = pathIndex(ep, i)
			}
			if ex := c.example(xp, msg, et); ex != nil {
				msg.Examples = append(msg.Examples, ex)
			}
		}
	}
	if !ok {
		return nil
	}
	return msg
}

func (c *checker) field(p string, t map[string]any) *Field {
	c.unknownKeys(p, t, "name", "type", "value", "size", "doc", "example")
	f := &Field{Pos: c.at(p)}
	ok := true
	if name, found := c.str(p, t, "name", true); found {
		if !fieldNameRE.MatchString(name) {
			c.errorf(pathJoin(p, "name"), "field name %q must be lower_snake_case ([a-z][a-z0-9]*, parts joined by _)", name)
			ok = false
		}
		f.Name = name
		f.GoName = goFieldName(name)
		if reservedGo[f.GoName] {
			c.errorf(pathJoin(p, "name"), "field name %q is reserved: its Go name %s is a Message method", name, f.GoName)
			ok = false
		}
	} else {
		ok = false
	}
	if typ, found := c.str(p, t, "type", true); found {
		ft, valid := codec.ParseFieldType(typ)
		if !valid {
			c.errorf(pathJoin(p, "type"), "unknown field type %q (want number1, number2, number4, number8, string, longstr, hash, chunk, strings or octets)", typ)
			ok = false
		}
		f.Type = ft
	} else {
		ok = false
	}
	f.Doc, _ = c.str(p, t, "doc", false)
	if !ok {
		return nil
	}
	if _, present := t["size"]; present {
		if f.Type != codec.Octets {
			c.errorf(pathJoin(p, "size"), "size is only for octets fields, not %s", f.Type)
			ok = false
		} else if n, found := c.integer(p, t, "size", 1<<16); found {
			if n == 0 {
				c.errorf(pathJoin(p, "size"), "octets size must be at least 1")
				ok = false
			}
			f.Size = int(n)
		}
	} else if f.Type == codec.Octets {
		c.errorf(p, "octets field %s needs a size", f.Name)
		ok = false
	}
	if v, present := t["value"]; present {
		switch f.Type {
		case codec.Number1, codec.Number2, codec.Number4, codec.Number8, codec.String, codec.Longstr:
			if cv, valid := c.value(pathJoin(p, "value"), f, v); valid {
				f.Const = cv
			} else {
				ok = false
			}
		default:
			c.errorf(pathJoin(p, "value"), "a %s field cannot be constant (only numbers, string and longstr)", f.Type)
			ok = false
		}
	}
	if v, present := t["example"]; present && ok {
		if ev, valid := c.value(pathJoin(p, "example"), f, v); valid {
			f.Example = ev
		}
	}
	if !ok {
		return nil
	}
	return f
}

// value converts a TOML value to the typed value of field f.
func (c *checker) value(p string, f *Field, v any) (any, bool) {
	switch f.Type {
	case codec.Number1, codec.Number2, codec.Number4, codec.Number8:
		n, ok := v.(int64)
		if !ok {
			c.errorf(p, "%s: %s value must be an integer, not %s", f.Name, f.Type, tomlType(v))
			return nil, false
		}
		bits := map[codec.FieldType]uint{codec.Number1: 8, codec.Number2: 16, codec.Number4: 32, codec.Number8: 64}[f.Type]
		if n < 0 || (bits < 64 && uint64(n) >= 1<<bits) {
			c.errorf(p, "%s: %d does not fit %s", f.Name, n, f.Type)
			return nil, false
		}
		return uint64(n), true
	case codec.String, codec.Longstr:
		s, ok := v.(string)
		if !ok {
			c.errorf(p, "%s: %s value must be a string, not %s", f.Name, f.Type, tomlType(v))
			return nil, false
		}
		if f.Type == codec.String && len(s) > 255 {
			c.errorf(p, "%s: string of %d bytes is over 255", f.Name, len(s))
			return nil, false
		}
		return s, true
	case codec.Hash:
		t, ok := v.(map[string]any)
		if !ok {
			c.errorf(p, "%s: hash value must be a table of strings, not %s", f.Name, tomlType(v))
			return nil, false
		}
		out := make(map[string]string, len(t))
		good := true
		for k, e := range t {
			s, isStr := e.(string)
			if !isStr {
				c.errorf(pathJoin(p, k), "%s: hash entry %q must be a string, not %s", f.Name, k, tomlType(e))
				good = false
				continue
			}
			if len(k) > 255 {
				c.errorf(pathJoin(p, k), "%s: hash key of %d bytes is over 255", f.Name, len(k))
				good = false
			}
			out[k] = s
		}
		return out, good
	case codec.Strings:
		a, ok := v.([]any)
		if !ok {
			c.errorf(p, "%s: strings value must be an array of strings, not %s", f.Name, tomlType(v))
			return nil, false
		}
		out := make([]string, 0, len(a))
		for i, e := range a {
			s, isStr := e.(string)
			if !isStr {
				c.errorf(pathIndex(p, i), "%s: element %d must be a string, not %s", f.Name, i, tomlType(e))
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case codec.Chunk, codec.Octets:
		var b []byte
		switch v := v.(type) {
		case string:
			b = []byte(v)
		case map[string]any:
			h, isStr := v["hex"].(string)
			if len(v) != 1 || !isStr {
				c.errorf(p, `%s: binary value must be a string or { hex = "..." }`, f.Name)
				return nil, false
			}
			d, err := parseHex(h)
			if err != nil {
				c.errorf(pathJoin(p, "hex"), "%s: %v", f.Name, err)
				return nil, false
			}
			b = d
		default:
			c.errorf(p, `%s: %s value must be a string or { hex = "..." }, not %s`, f.Name, f.Type, tomlType(v))
			return nil, false
		}
		if f.Type == codec.Octets && len(b) != f.Size {
			c.errorf(p, "%s: octets value has %d bytes, want %d", f.Name, len(b), f.Size)
			return nil, false
		}
		return b, true
	}
	c.errorf(p, "%s: no values for type %s", f.Name, f.Type)
	return nil, false
}

// parseHex decodes hex digits, ignoring blanks and newlines.
func parseHex(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %v", err)
	}
	return b, nil
}

func (c *checker) example(p string, msg *Message, t map[string]any) *Example {
	ex := &Example{Values: map[string]any{}, Pos: c.at(p)}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	good := true
	for _, k := range keys {
		if k == "wire" {
			continue
		}
		var f *Field
		for _, ff := range msg.Fields {
			if ff.Name == k {
				f = ff
			}
		}
		if f == nil {
			c.errorf(pathJoin(p, k), "example of %s names unknown field %q", msg.Name, k)
			good = false
			continue
		}
		v, ok := c.value(pathJoin(p, k), f, t[k])
		if !ok {
			good = false
			continue
		}
		if f.Const != nil && !equalValue(v, f.Const) {
			c.errorf(pathJoin(p, k), "example of %s sets constant field %s to %v, not %v", msg.Name, k, v, f.Const)
			good = false
			continue
		}
		ex.Values[k] = v
	}
	w, ok := c.str(p, t, "wire", true)
	if !ok {
		return nil
	}
	wire, err := parseHex(w)
	if err != nil {
		c.errorf(pathJoin(p, "wire"), "example of %s: wire: %v", msg.Name, err)
		return nil
	}
	ex.Wire = wire
	ex.Pos = c.at(pathJoin(p, "wire"))
	if !good {
		return nil
	}
	return ex
}

func equalValue(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// ValueOf returns the value an example gives field f: its own, else the
// field's constant, else nil (the zero value).
func (ex *Example) ValueOf(f *Field) any {
	if v, ok := ex.Values[f.Name]; ok {
		return v
	}
	return f.Const
}

// encode is the reference encoding of a message with typed values (missing
// fields zero, constants their constant). It checks golden vectors at load.
func (m *Model) encode(msg *Message, vals map[string]any) []byte {
	b := binary.BigEndian.AppendUint16(nil, m.Signature)
	b = append(b, msg.ID)
	for _, f := range msg.Fields {
		v, ok := vals[f.Name]
		if !ok {
			v = f.Const
		}
		b = appendValue(b, f, v)
	}
	return b
}

func appendValue(b []byte, f *Field, v any) []byte {
	switch f.Type {
	case codec.Number1, codec.Number2, codec.Number4, codec.Number8:
		n, _ := v.(uint64)
		size := map[codec.FieldType]int{codec.Number1: 1, codec.Number2: 2, codec.Number4: 4, codec.Number8: 8}[f.Type]
		var tmp [8]byte
		binary.BigEndian.PutUint64(tmp[:], n)
		return append(b, tmp[8-size:]...)
	case codec.String:
		s, _ := v.(string)
		return append(append(b, byte(len(s))), s...)
	case codec.Longstr:
		s, _ := v.(string)
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	case codec.Chunk:
		s, _ := v.([]byte)
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	case codec.Octets:
		s, _ := v.([]byte)
		out := make([]byte, f.Size)
		copy(out, s)
		return append(b, out...)
	case codec.Strings:
		a, _ := v.([]string)
		b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
		for _, s := range a {
			b = append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
		}
		return b
	case codec.Hash:
		h, _ := v.(map[string]string)
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h)))
		for _, k := range keys {
			b = append(append(b, byte(len(k))), k...)
			b = append(binary.BigEndian.AppendUint32(b, uint32(len(h[k]))), h[k]...)
		}
		return b
	}
	return b
}

// goMessageName maps OHAI-OK to OhaiOk.
func goMessageName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(strings.ToLower(part[1:]))
	}
	return b.String()
}

// initialisms are written in upper case in Go field names (golint's list).
var initialisms = map[string]bool{
	"ACL": true, "API": true, "ASCII": true, "CPU": true, "CSS": true, "DNS": true, "EOF": true,
	"GUID": true, "HTML": true, "HTTP": true, "HTTPS": true, "ID": true, "IP": true, "JSON": true,
	"LHS": true, "QPS": true, "RAM": true, "RHS": true, "RPC": true, "SHA1": true, "SLA": true, "SMTP": true,
	"SQL": true, "SSH": true, "TCP": true, "TLS": true, "TTL": true, "UDP": true, "UI": true,
	"UID": true, "UUID": true, "URI": true, "URL": true, "UTF8": true, "VM": true, "XML": true,
	"XMPP": true, "XSRF": true, "XSS": true,
}

// goFieldName maps credit to Credit, eof to EOF, file_id to FileID.
func goFieldName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		if up := strings.ToUpper(part); initialisms[up] {
			b.WriteString(up)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}
