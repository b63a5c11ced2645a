// Package conform runs conformance scripts: small txtar files in which a
// script plays one side of a protocol session (the client against a
// server, or the server against a client) and states what the other side
// must send, and must not send, in the `C:` / `S:` notation of the
// unprotocol grammars. The format is documented in spec/conformance.md.
//
// The runner is protocol-generic: messages are built, encoded, decoded and
// compared through the codec registry (codec.Lookup), by message and field
// name. A script runs against any server listening on an endpoint
// (Options.Target), against any client that connects to an endpoint
// (Options.Listen), or against fmq's own server and client started in
// process (RunInProcess).
package conform

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fmq/fmq/codec"
)

// DefaultTimeout is the window of an expectation when a script sets none.
const DefaultTimeout = 2 * time.Second

// Script is a parsed conformance script.
type Script struct {
	Path     string         // file name, used in every error
	Proto    codec.Protocol // "protocol NAME"; default filemq
	Role     codec.Direction
	Timeout  time.Duration // initial default window
	Server   map[string]string
	Accounts []Account
	Client   ClientSpec
	Mounts   []Mount
	Files    []File
	Steps    []Step
	Skip     string // "skip REASON": the whole script is skipped
	SkipLine int
}

// Account is a PLAIN login the in-process server accepts ("accounts alice:secret").
type Account struct{ Login, Password string }

// ClientSpec configures the in-process client a server-role script plays against.
type ClientSpec struct {
	Subscribe []string
	Login     string
	Password  string
	Settings  map[string]string
}

// Mount publishes a fixture directory under an alias ("publish pub /").
type Mount struct {
	Dir   string // relative to the work directory
	Alias string
}

// File returns a txtar section by name.
func (s *Script) File(name string) ([]byte, bool) {
	for _, f := range s.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// NeedsServerConfig reports whether the script sets server settings or
// accounts, which only the in-process server can honour.
func (s *Script) NeedsServerConfig() bool { return len(s.Server) > 0 || len(s.Accounts) > 0 }

// StepKind is the kind of a script line.
type StepKind uint8

const (
	StepSend      StepKind = iota + 1 // send a message or raw bytes
	StepExpect                        // the next message must match
	StepNone                          // "! DIR: PATTERN within D": no matching message in the window
	StepSleep                         // sleep D
	StepTimeout                       // timeout D: default window from here on
	StepClosed                        // closed [within D] / ! closed within D
	StepReconnect                     // reconnect: a new connection (new identity) to the target
	StepInbox                         // inbox exists|absent|cmp, outside absent
	StepWrite                         // write PATH (SECTION|"text"): change a published file
	StepRemove                        // rm PATH
	StepBug                           // bug TEXT: the rest of the script shows a known defect
	StepComment                       // "# text": a label in the transcript
	StepDrain                         // drain: discard every message received and not yet expected
)

// Step is one executable line.
type Step struct {
	Line   int
	Text   string // the line as written (trimmed, without a trailing comment)
	Kind   StepKind
	Dir    codec.Direction // sender of the message (send, expect, none)
	Neg    bool            // "! closed"
	Within time.Duration   // 0: the current default
	Frame  []byte          // StepSend
	Name   string          // StepExpect/StepNone: message name; "" = any
	Match  []Matcher
	Dur    time.Duration // sleep, timeout
	Op     string        // StepInbox: exists, absent, cmp; "outside" prefix for outside absent
	Path   string        // inbox/write/rm path
	Data   []byte        // cmp/write content
	Note   string        // bug, comment
}

// Error is a problem at a position in a script.
type Error struct {
	Path      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// ErrorList is every problem of a script, sorted by position.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// ParseFile reads and parses a script file.
func ParseFile(path string) (*Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses a script. Every problem is reported at once, as an ErrorList.
func Parse(path string, data []byte) (*Script, error) {
	comment, files := splitTxtar(data)
	p := &parser{s: &Script{Path: path, Role: codec.FromClient, Timeout: DefaultTimeout, Files: files}}
	seen := map[string]int{}
	for _, f := range files {
		if l, dup := seen[f.Name]; dup {
			p.errf(f.Line, 0, "section %q already defined at line %d", f.Name, l)
		}
		seen[f.Name] = f.Line
	}
	for i, raw := range strings.Split(string(comment), "\n") {
		p.line(i+1, strings.TrimRight(raw, "\r"))
	}
	if p.s.Proto == nil && len(p.errs) == 0 {
		p.setProto(0, 0, "filemq")
	}
	if len(p.s.Mounts) == 0 {
		p.s.Mounts = []Mount{{Dir: "pub", Alias: "/"}}
	}
	if len(p.s.Client.Subscribe) == 0 {
		p.s.Client.Subscribe = []string{"/"}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, p.errs
	}
	return p.s, nil
}

type parser struct {
	s        *Script
	errs     ErrorList
	sawSteps bool
}

func (p *parser) errf(line, col int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: p.s.Path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) setProto(line, col int, name string) {
	pr, ok := codec.Lookup(name)
	if !ok {
		p.errf(line, col, "unknown protocol %q (registered: %s)", name, strings.Join(codec.Names(), ", "))
		return
	}
	p.s.Proto = pr
}

func (p *parser) proto(line int) codec.Protocol {
	if p.s.Proto == nil {
		p.setProto(line, 0, "filemq")
	}
	return p.s.Proto
}

// header directives must come before the first step.
func (p *parser) header(line int, word string) bool {
	if p.sawSteps {
		p.errf(line, 1, "%s must come before the first step", word)
		return false
	}
	return true
}

func (p *parser) line(n int, raw string) {
	text := strings.TrimSpace(raw)
	if text == "" {
		return
	}
	indent := strings.Index(raw, text) // column offset of the text
	if strings.HasPrefix(text, "#") {
		p.s.Steps = append(p.s.Steps, Step{Line: n, Kind: StepComment, Note: strings.TrimSpace(text[1:]), Text: text})
		return
	}
	if w, rest, _ := strings.Cut(text, " "); w == "bug" || w == "skip" {
		// free text: not tokenized
		rest = strings.TrimSpace(rest)
		if w == "skip" {
			if rest == "" {
				rest = "skipped"
			}
			p.s.Skip, p.s.SkipLine = rest, n
			return
		}
		if rest == "" {
			p.errf(n, indent+1, "bug needs a description of the defect")
			return
		}
		p.sawSteps = true
		p.s.Steps = append(p.s.Steps, Step{Line: n, Kind: StepBug, Note: rest, Text: text})
		return
	}
	expanded, err := p.expand(text)
	if err != nil {
		p.errf(n, indent+err.col+1, "%s", err.msg)
		return
	}
	toks, terr := tokenize(expanded)
	if terr != nil {
		p.errf(n, indent+terr.col+1, "%s", terr.msg)
		return
	}
	if len(toks) == 0 {
		return
	}
	for i := range toks {
		toks[i].col += indent + 1
	}
	st := Step{Line: n, Text: stripComment(text)}
	word := toks[0].text
	args := toks[1:]
	neg := false
	if word == "!" {
		if len(args) == 0 {
			p.errf(n, toks[0].col, "! needs a message pattern or closed")
			return
		}
		neg, word, args = true, args[0].text, args[1:]
	} else if strings.HasPrefix(word, "!") {
		neg, word = true, word[1:]
	}
	switch word {
	case "protocol":
		if p.header(n, word) && p.nargs(n, toks[0], args, 1) {
			p.setProto(n, args[0].col, args[0].text)
		}
		return
	case "role":
		if !p.header(n, word) || !p.nargs(n, toks[0], args, 1) {
			return
		}
		switch args[0].text {
		case "client":
			p.s.Role = codec.FromClient
		case "server":
			p.s.Role = codec.FromServer
		default:
			p.errf(n, args[0].col, "role must be client or server, not %q", args[0].text)
		}
		return
	case "server":
		if p.header(n, word) {
			if p.s.Server == nil {
				p.s.Server = map[string]string{}
			}
			p.settings(n, args, p.s.Server)
		}
		return
	case "client":
		if !p.header(n, word) {
			return
		}
		if p.s.Client.Settings == nil {
			p.s.Client.Settings = map[string]string{}
		}
		p.settings(n, args, p.s.Client.Settings)
		if v, ok := p.s.Client.Settings["subscribe"]; ok {
			delete(p.s.Client.Settings, "subscribe")
			p.s.Client.Subscribe = append(p.s.Client.Subscribe, strings.Split(v, ",")...)
		}
		for _, k := range []string{"login", "password"} {
			if v, ok := p.s.Client.Settings[k]; ok {
				delete(p.s.Client.Settings, k)
				if k == "login" {
					p.s.Client.Login = v
				} else {
					p.s.Client.Password = v
				}
			}
		}
		return
	case "accounts":
		if !p.header(n, word) {
			return
		}
		for _, a := range args {
			l, pw, ok := strings.Cut(a.text, ":")
			if !ok || l == "" {
				p.errf(n, a.col, "account %q: want LOGIN:PASSWORD", a.text)
				continue
			}
			p.s.Accounts = append(p.s.Accounts, Account{l, pw})
		}
		return
	case "publish":
		if p.header(n, word) && p.nargs(n, toks[0], args, 2) {
			if !strings.HasPrefix(args[1].text, "/") {
				p.errf(n, args[1].col, "publish alias must start with /")
			}
			p.s.Mounts = append(p.s.Mounts, Mount{Dir: args[0].text, Alias: args[1].text})
		}
		return
	case "skip":
		p.s.Skip = strings.TrimSpace(strings.TrimPrefix(st.Text, "skip"))
		if p.s.Skip == "" {
			p.s.Skip = "skipped"
		}
		p.s.SkipLine = n
		return
	}
	p.sawSteps = true
	switch word {
	case "timeout", "sleep":
		if !p.nargs(n, toks[0], args, 1) {
			return
		}
		d, err := time.ParseDuration(args[0].text)
		if err != nil || d < 0 {
			p.errf(n, args[0].col, "bad duration %q", args[0].text)
			return
		}
		st.Kind, st.Dur = StepSleep, d
		if word == "timeout" {
			st.Kind = StepTimeout
			if len(p.s.Steps) == 0 || !p.anyTimed() {
				p.s.Timeout = d
			}
		}
	case "closed":
		st.Kind, st.Neg = StepClosed, neg
		args = p.within(n, &st, args)
		if len(args) > 0 {
			p.errf(n, args[0].col, "unexpected %q after closed", args[0].text)
			return
		}
		if neg && st.Within == 0 {
			p.errf(n, toks[0].col, "! closed needs a window: ! closed within 300ms")
			return
		}
	case "drain":
		st.Kind = StepDrain
		if !p.nargs(n, toks[0], args, 0) {
			return
		}
	case "reconnect":
		st.Kind = StepReconnect
		if !p.nargs(n, toks[0], args, 0) {
			return
		}
	case "bug":
		st.Kind = StepBug
		st.Note = strings.TrimSpace(strings.TrimPrefix(st.Text, "bug"))
		if st.Note == "" {
			p.errf(n, toks[0].col, "bug needs a description of the defect")
			return
		}
	case "inbox", "outside":
		st.Kind = StepInbox
		if len(args) < 2 {
			p.errf(n, toks[0].col, "want %s exists|absent PATH or inbox cmp PATH SECTION", word)
			return
		}
		st.Op, st.Path = args[0].text, args[1].text
		switch {
		case st.Op == "exists" && word == "inbox" && len(args) == 2, st.Op == "absent" && len(args) == 2:
		case st.Op == "cmp" && word == "inbox" && len(args) == 3:
			data, ok := p.s.File(args[2].text)
			if !ok {
				p.errf(n, args[2].col, "no section %q", args[2].text)
				return
			}
			st.Data = data
		default:
			p.errf(n, args[0].col, "want %s exists|absent PATH or inbox cmp PATH SECTION", word)
			return
		}
		if word == "outside" {
			st.Op = "outside " + st.Op
		}
	case "write":
		st.Kind = StepWrite
		if !p.nargs(n, toks[0], args, 2) {
			return
		}
		st.Path = args[0].text
		v, err := parseValue(args[1].text, p.s)
		if err != nil {
			p.errf(n, args[1].col, "%v", err)
			return
		}
		st.Data = v.bytes()
	case "rm":
		st.Kind = StepRemove
		if !p.nargs(n, toks[0], args, 1) {
			return
		}
		st.Path = args[0].text
	case "C:", "S:":
		p.message(n, toks[0], &st, neg, word, args)
		if st.Kind == 0 {
			return
		}
	default:
		p.errf(n, toks[0].col, "unknown command %q", word)
		return
	}
	p.s.Steps = append(p.s.Steps, st)
}

func (p *parser) anyTimed() bool {
	for _, s := range p.s.Steps {
		if s.Kind != StepComment && s.Kind != StepTimeout {
			return true
		}
	}
	return false
}

func (p *parser) nargs(n int, cmd token, args []token, want int) bool {
	if len(args) != want {
		p.errf(n, cmd.col, "%s takes %d argument(s), got %d", cmd.text, want, len(args))
		return false
	}
	return true
}

func (p *parser) settings(n int, args []token, into map[string]string) {
	for _, a := range args {
		k, v, ok := strings.Cut(a.text, "=")
		if !ok || k == "" {
			p.errf(n, a.col, "setting %q: want NAME=VALUE", a.text)
			continue
		}
		val, err := parseValue(v, p.s)
		if err != nil {
			p.errf(n, a.col+len(k)+1, "%v", err)
			continue
		}
		into[k] = val.text
	}
}

// within strips a trailing "within DUR" and stores it.
func (p *parser) within(n int, st *Step, args []token) []token {
	if len(args) >= 2 && args[len(args)-2].text == "within" {
		d, err := time.ParseDuration(args[len(args)-1].text)
		if err != nil || d <= 0 {
			p.errf(n, args[len(args)-1].col, "bad duration %q", args[len(args)-1].text)
		}
		st.Within = d
		return args[:len(args)-2]
	}
	for _, a := range args {
		if a.text == "within" {
			p.errf(n, a.col, "within must be last: within DURATION")
		}
	}
	return args
}

func (p *parser) message(n int, cmd token, st *Step, neg bool, word string, args []token) {
	dir := codec.FromClient
	if word == "S:" {
		dir = codec.FromServer
	}
	st.Dir = dir
	pr := p.proto(n)
	if pr == nil {
		return
	}
	args = p.within(n, st, args)
	if len(args) == 0 {
		p.errf(n, cmd.col, "%s needs a message name, * or raw", word)
		return
	}
	name := args[0]
	send := dir == p.s.Role && !neg
	if send && st.Within != 0 {
		p.errf(n, name.col, "within applies to expectations, not to sent messages")
		return
	}
	if dir == p.s.Role && neg {
		p.errf(n, cmd.col, "! %s: the script plays this side; it cannot expect it", word)
		return
	}
	switch {
	case name.text == "raw":
		if !send {
			p.errf(n, name.col, "raw is for sent frames; expect a message, *, or use ! %s * for silence", word)
			return
		}
		frame, err := parseRaw(args[1:], p.s)
		if err != nil {
			p.errf(n, err.col, "%s", err.msg)
			return
		}
		st.Kind, st.Frame = StepSend, frame
		return
	case name.text == "malformed":
		// A recorded trace line ("C: malformed filemq: ..."): the bytes were
		// not recorded, so it cannot be replayed.
		p.errf(n, name.col, "a malformed frame from a trace cannot be replayed: write it as raw HEX")
		return
	case name.text == "*":
		if send {
			p.errf(n, name.col, "* only matches received messages")
			return
		}
		if len(args) > 1 {
			p.errf(n, args[1].col, "* takes no fields")
			return
		}
		st.Kind = StepExpect
		if neg {
			st.Kind = StepNone
		}
		return
	}
	mi, ok := pr.ByName(name.text)
	if !ok {
		p.errf(n, name.col, "protocol %s has no message %q", pr.Name(), name.text)
		return
	}
	if send {
		m := mi.New()
		ok := true
		for _, a := range args[1:] {
			key, val, isRe, kcol, vcol, err := splitField(a)
			if err != nil {
				p.errf(n, a.col, "%v", err)
				ok = false
				continue
			}
			if isRe || strings.Contains(key, ".") || strings.HasPrefix(key, "len(") {
				p.errf(n, kcol, "%s: a sent field needs a plain value (name=value)", key)
				ok = false
				continue
			}
			fi, found := mi.Field(key)
			if !found {
				p.errf(n, kcol, "%s has no field %q", mi.Name, key)
				ok = false
				continue
			}
			v, err := parseValue(val, p.s)
			if err == nil {
				var gv any
				gv, err = v.goValue(fi)
				if err == nil {
					err = m.Set(key, gv)
				}
			}
			if err != nil {
				p.errf(n, vcol, "%s.%s: %v", mi.Name, key, err)
				ok = false
			}
		}
		if !ok {
			return
		}
		frame, err := m.Append(nil)
		if err != nil {
			p.errf(n, name.col, "%v", err)
			return
		}
		st.Kind, st.Frame, st.Name = StepSend, frame, mi.Name
		return
	}
	st.Kind, st.Name = StepExpect, mi.Name
	if neg {
		st.Kind = StepNone
	}
	for _, a := range args[1:] {
		m, err := p.matcher(mi, a)
		if err != nil {
			p.errf(n, err.col, "%s", err.msg)
			continue
		}
		st.Match = append(st.Match, m)
	}
}

// ---- substitution: ${sha1:SECTION[:N]}, ${size:SECTION}, ${repeat:TEXT:N}, ${hex:SECTION}

type posErr struct {
	col int
	msg string
}

func (p *parser) expand(text string) (string, *posErr) {
	if !strings.Contains(text, "${") {
		return text, nil
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(text[i:], "${")
		if j < 0 {
			b.WriteString(text[i:])
			return b.String(), nil
		}
		j += i
		b.WriteString(text[i:j])
		k := strings.IndexByte(text[j:], '}')
		if k < 0 {
			return "", &posErr{j, "unterminated ${"}
		}
		k += j
		v, err := p.subst(text[j+2 : k])
		if err != nil {
			return "", &posErr{j, err.Error()}
		}
		b.WriteString(v)
		i = k + 1
	}
}

func (p *parser) subst(expr string) (string, error) {
	parts := strings.Split(expr, ":")
	section := func() ([]byte, error) {
		if len(parts) < 2 {
			return nil, fmt.Errorf("${%s}: want ${%s:SECTION}", expr, parts[0])
		}
		d, ok := p.s.File(parts[1])
		if !ok {
			return nil, fmt.Errorf("${%s}: no section %q", expr, parts[1])
		}
		return d, nil
	}
	switch parts[0] {
	case "sha1":
		d, err := section()
		if err != nil {
			return "", err
		}
		if len(parts) == 3 {
			n, err := strconv.Atoi(parts[2])
			if err != nil || n < 0 || n > len(d) {
				return "", fmt.Errorf("${%s}: prefix length must be 0..%d", expr, len(d))
			}
			d = d[:n]
		} else if len(parts) != 2 {
			return "", fmt.Errorf("${%s}: want ${sha1:SECTION} or ${sha1:SECTION:N}", expr)
		}
		sum := sha1.Sum(d)
		return strings.ToUpper(hex.EncodeToString(sum[:])), nil
	case "size":
		d, err := section()
		if err != nil || len(parts) != 2 {
			if err == nil {
				err = fmt.Errorf("${%s}: want ${size:SECTION}", expr)
			}
			return "", err
		}
		return strconv.Itoa(len(d)), nil
	case "hex":
		d, err := section()
		if err != nil || len(parts) != 2 {
			if err == nil {
				err = fmt.Errorf("${%s}: want ${hex:SECTION}", expr)
			}
			return "", err
		}
		return hex.EncodeToString(d), nil
	case "repeat":
		if len(parts) != 3 {
			return "", fmt.Errorf("${%s}: want ${repeat:TEXT:N}", expr)
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 0 || n*len(parts[1]) > 1<<20 {
			return "", fmt.Errorf("${%s}: bad count (at most 1 MiB in all)", expr)
		}
		return strings.Repeat(parts[1], n), nil
	}
	return "", fmt.Errorf("unknown substitution ${%s} (sha1, size, hex, repeat)", expr)
}

// ---- matchers

// Matcher checks one field of a received message.
type Matcher struct {
	Col    int
	Src    string // as written
	Field  string
	Key    string // hash key ("headers.SHA1"), when HasKey
	HasKey bool
	Len    bool // len(field)=N or field=<N bytes>
	N      int
	Re     *regexp.Regexp
	Want   any // typed value (field's Go type), when not Re and not Len
	Info   codec.FieldInfo
}

func (p *parser) matcher(mi *codec.MessageInfo, a token) (Matcher, *posErr) {
	key, val, isRe, kcol, vcol, err := splitField(a)
	if err != nil {
		return Matcher{}, &posErr{a.col, err.Error()}
	}
	m := Matcher{Col: a.col, Src: a.text}
	if strings.HasPrefix(key, "len(") && strings.HasSuffix(key, ")") {
		key = key[4 : len(key)-1]
		m.Len = true
	}
	if f, k, ok := strings.Cut(key, "."); ok {
		key, m.Key, m.HasKey = f, k, true
	}
	fi, ok := mi.Field(key)
	if !ok {
		return m, &posErr{kcol, fmt.Sprintf("%s has no field %q", mi.Name, key)}
	}
	m.Field, m.Info = key, fi
	if m.HasKey && fi.Type != codec.Hash {
		return m, &posErr{kcol, fmt.Sprintf("%s.%s is a %s, not a hash", mi.Name, key, fi.Type)}
	}
	if isRe {
		v, err := parseValue(val, p.s)
		if err == nil {
			m.Re, err = regexp.Compile(v.text)
		}
		if err != nil {
			return m, &posErr{vcol, fmt.Sprintf("%s: %v", key, err)}
		}
		return m, nil
	}
	v, err := parseValue(val, p.s)
	if err != nil {
		return m, &posErr{vcol, err.Error()}
	}
	if m.Len {
		n, err := strconv.Atoi(v.text)
		if v.kind == vLen {
			n, err = v.n, nil
		}
		if err != nil || n < 0 {
			return m, &posErr{vcol, fmt.Sprintf("len(%s) wants a byte count", key)}
		}
		m.N = n
		return m, nil
	}
	if v.kind == vLen {
		switch fi.Type {
		case codec.Chunk, codec.Octets, codec.String, codec.Longstr:
			m.Len, m.N = true, v.n
			return m, nil
		}
		return m, &posErr{vcol, fmt.Sprintf("%s is a %s: <N bytes> is for chunks", key, fi.Type)}
	}
	if m.HasKey {
		m.Want = v.text
		return m, nil
	}
	m.Want, err = v.goValue(fi)
	if err != nil {
		return m, &posErr{vcol, fmt.Sprintf("%s: %v", key, err)}
	}
	return m, nil
}

// splitField splits "key=value" or "key=~value".
func splitField(a token) (key, val string, isRe bool, kcol, vcol int, err error) {
	i := strings.IndexByte(a.text, '=')
	if i <= 0 {
		return "", "", false, 0, 0, fmt.Errorf("want field=value, got %q", a.text)
	}
	key, val = a.text[:i], a.text[i+1:]
	kcol, vcol = a.col, a.col+i+1
	if strings.HasPrefix(val, "~") {
		val, isRe = val[1:], true
		vcol++
	}
	name, _, _ := strings.Cut(key, ".") // a hash key after the dot may hold anything but "="
	for _, c := range name {
		if !(c == '_' || c == '.' || c == '-' || c == '(' || c == ')' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "", "", false, 0, 0, fmt.Errorf("bad field name %q", key)
		}
	}
	return key, val, isRe, kcol, vcol, nil
}

// parseRaw reads the arguments of "raw": hex octets (blanks allowed between
// pairs: "AA A3 01" or "aaa301"), quoted strings (their bytes), @SECTION
// (its bytes), and HEX*N repetitions ("00*300").
func parseRaw(args []token, s *Script) ([]byte, *posErr) {
	var out []byte
	if len(args) == 0 {
		return nil, &posErr{0, "raw needs bytes"}
	}
	for _, a := range args {
		t := a.text
		switch {
		case strings.HasPrefix(t, `"`) || strings.HasPrefix(t, "'") || strings.HasPrefix(t, "@"):
			v, err := parseValue(t, s)
			if err != nil {
				return nil, &posErr{a.col, err.Error()}
			}
			out = append(out, v.bytes()...)
		default:
			rep := 1
			if h, r, ok := strings.Cut(t, "*"); ok {
				n, err := strconv.Atoi(r)
				if err != nil || n < 0 || n > 1<<24 {
					return nil, &posErr{a.col, fmt.Sprintf("bad repetition %q", t)}
				}
				t, rep = h, n
			}
			b, err := hex.DecodeString(t)
			if err != nil {
				return nil, &posErr{a.col, fmt.Sprintf("bad hex %q", t)}
			}
			for range rep {
				out = append(out, b...)
			}
		}
	}
	return out, nil
}
