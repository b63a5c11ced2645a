package interp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fmq/fmq/codec"
)

// LoadOptions tell Load where protocols and actions come from.
type LoadOptions struct {
	// Protocol finds a codec by name; nil means codec.Lookup.
	Protocol func(name string) (codec.Protocol, bool)
	// Library finds the actions for a protocol and role; nil, or a nil
	// result, leaves only the built-in actions.
	Library func(protocol, role string) *Library
}

// Load reads, decodes and checks a machine file. On failure the error is an
// ErrorList holding every problem found, each as file:line:col: message.
func Load(path string, opts LoadOptions) (*Machine, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	return LoadBytes(path, src, opts)
}

var (
	reEvent   = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	reSetting = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	reState   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

type loader struct {
	file string
	ix   *posIndex
	errs ErrorList
	opts LoadOptions
	m    *Machine
	lib  *Library
	// handled lowercase events that are not known yet, with the key position
	handled map[string][]Pos
	// events raised, with where (for the "nobody raises" check)
	raised map[string]bool
	// curEvent is the event whose action list is being read ("" for entry
	// and exit): the type of msg in its expressions.
	curEvent string
}

func (l *loader) errf(p Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// LoadBytes is Load on a file already in memory; name is used in errors.
func LoadBytes(name string, src []byte, opts LoadOptions) (*Machine, error) {
	if opts.Protocol == nil {
		opts.Protocol = codec.Lookup
	}
	l := &loader{file: name, opts: opts, handled: map[string][]Pos{}, raised: map[string]bool{}}
	var raw map[string]any
	if _, err := toml.Decode(string(src), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			l.errf(Pos{Line: pe.Position.Line, Col: pe.Position.Col}, "TOML: %s", pe.Message)
		} else {
			l.errf(Pos{Line: 1, Col: 1}, "TOML: %v", err)
		}
		return nil, l.errs.Err()
	}
	l.ix = indexTOML(string(src))
	m := l.build(raw)
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(src)
	m.Hash = hex.EncodeToString(sum[:6])
	return m, nil
}

// ---- small typed readers ----

func (l *loader) unknownKeys(tbl map[string]any, allowed []string, path ...string) {
	var bad []string
	for k := range tbl {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	for _, k := range bad {
		l.errf(l.ix.key(append(path, k)...), "unknown key %q in %s (want one of %s)", k, describe(path), strings.Join(allowed, ", "))
	}
}

func describe(path []string) string {
	if len(path) == 0 {
		return "the file"
	}
	if len(path) >= 2 && path[0] == "state" {
		s := "state " + strconv.Quote(path[1])
		if len(path) >= 4 && path[2] == "on" {
			s += " handler on." + path[3]
			if len(path) >= 5 {
				s += " alternative " + path[4]
			}
		}
		return s
	}
	return "[" + strings.Join(path, ".") + "]"
}

func (l *loader) str(tbl map[string]any, key string, path ...string) (string, bool) {
	v, ok := tbl[key]
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		l.errf(l.ix.val(append(path, key)...), "%s must be a string, not %s", key, tomlType(v))
		return "", false
	}
	return s, true
}

func (l *loader) boolean(tbl map[string]any, key string, path ...string) bool {
	v, ok := tbl[key]
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		l.errf(l.ix.val(append(path, key)...), "%s must be a boolean, not %s", key, tomlType(v))
	}
	return b
}

func (l *loader) table(v any, path ...string) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		l.errf(l.ix.val(path...), "%s must be a table, not %s", path[len(path)-1], tomlType(v))
	}
	return t, ok
}

func (l *loader) strings(tbl map[string]any, key string, path ...string) []string {
	v, ok := tbl[key]
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				l.errf(l.ix.val(append(path, key, strconv.Itoa(i))...), "%s[%d] must be a string, not %s", key, i, tomlType(e))
				continue
			}
			out = append(out, s)
		}
		return out
	}
	l.errf(l.ix.val(append(path, key)...), "%s must be a list of strings, not %s", key, tomlType(v))
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
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// keysInFileOrder sorts the keys of a table by where they appear.
func (l *loader) keysInFileOrder(m map[string]any, path ...string) []string {
	ks := sortedKeys(m)
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := l.ix.key(append(path, ks[i])...), l.ix.key(append(path, ks[j])...)
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return ks
}

// ---- events ----

func (l *loader) addEvent(name string, kind EventKind) *EventInfo {
	if i, ok := l.m.eventIdx[name]; ok {
		return l.m.Events[i]
	}
	e := &EventInfo{Name: name, ID: len(l.m.Events), Kind: kind}
	l.m.Events = append(l.m.Events, e)
	l.m.eventIdx[name] = e.ID
	return e
}

// ---- the build ----

func (l *loader) build(raw map[string]any) *Machine {
	m := &Machine{File: l.file, stateIdx: map[string]int{}, eventIdx: map[string]int{}, settingIdx: map[string]int{}}
	l.m = m
	l.unknownKeys(raw, []string{"machine", "settings", "vars", "events", "state"})

	mach, _ := raw["machine"].(map[string]any)
	if raw["machine"] != nil && mach == nil {
		l.table(raw["machine"], "machine")
	}
	if mach == nil {
		l.errf(Pos{Line: 1, Col: 1}, "missing [machine] table")
		mach = map[string]any{}
	}
	l.unknownKeys(mach, []string{"name", "role", "protocol", "initial", "expiry", "heartbeat", "doc"}, "machine")
	need := func(key string) string {
		s, ok := l.str(mach, key, "machine")
		if !ok && mach[key] == nil {
			l.errf(l.ix.key("machine"), "[machine] needs %s", key)
		}
		return s
	}
	m.Name = need("name")
	m.Role = need("role")
	m.Protocol = need("protocol")
	initial := need("initial")
	m.Doc, _ = l.str(mach, "doc", "machine")
	if m.Role != "" && m.Role != RoleServer && m.Role != RoleClient {
		l.errf(l.ix.val("machine", "role"), "role must be %q or %q, not %q", RoleServer, RoleClient, m.Role)
		m.Role = ""
	}
	if m.Protocol != "" {
		p, ok := l.opts.Protocol(m.Protocol)
		if !ok {
			l.errf(l.ix.val("machine", "protocol"), "unknown protocol %q: no codec registered under that name", m.Protocol)
		}
		m.Proto = p
	}
	if l.opts.Library != nil && m.Role != "" && m.Protocol != "" {
		l.lib = l.opts.Library(m.Protocol, m.Role)
	}
	if l.lib == nil {
		l.lib = &Library{}
	}
	m.Library = l.lib

	// Events: messages first, so that a message's event id is its index.
	if m.Proto != nil {
		for _, mi := range m.Proto.Messages() {
			e := l.addEvent(mi.Name, KindMessage)
			e.Msg = mi
			e.Doc = mi.Doc
			e.Receivable = m.Role != "" && mi.From&peerRole(m.Role) != 0
			m.msgEv[mi.ID] = e.ID
		}
		m.nMsgs = len(m.Events)
	}
	m.evMalform = l.addEvent(EventMalformed, KindMalformed).ID
	m.evError = l.addEvent(EventError, KindError).ID
	m.evExpired = l.addEvent(EventExpired, KindTimer).ID
	m.evHeart = l.addEvent(EventHeartbeat, KindTimer).ID
	m.anyEv = l.addEvent(EventAny, KindWildcard).ID
	m.evOverflow = l.addEvent(EventOverflow, KindTimer).ID

	l.settings(raw["settings"])
	l.vars(raw["vars"])
	m.Expiry = l.duration(mach, "expiry", "machine")
	m.Heartbeat = l.duration(mach, "heartbeat", "machine")
	l.hostEvents(raw["events"])
	l.states(raw["state"])

	if initial != "" {
		if s, ok := m.State(initial); !ok {
			l.errf(l.ix.val("machine", "initial"), "initial state %q is not defined", initial)
		} else if s.Abstract {
			l.errf(l.ix.val("machine", "initial"), "initial state %q is abstract", initial)
		} else {
			m.Initial = s
		}
	}
	if len(l.errs) > 0 {
		return m
	}
	l.buildTable()
	l.contracts()
	if reach := l.check(); reach != nil {
		l.analyse(reach)
	}
	return m
}

func (l *loader) settings(v any) {
	m := l.m
	decl := map[string]*Setting{}
	order := []string{}
	if v != nil {
		tbl, ok := l.table(v, "settings")
		if ok {
			for _, name := range l.keysInFileOrder(tbl, "settings") {
				path := []string{"settings", name}
				if !reSetting.MatchString(name) {
					l.errf(l.ix.key(path...), "setting name %q must be snake_case ([a-z][a-z0-9_]*), so guards can read settings.%s", name, name)
					continue
				}
				s := &Setting{Name: name, Pos: l.ix.key(path...)}
				val := tbl[name]
				typ := ""
				var bounds map[string]any
				if t, isTbl := val.(map[string]any); isTbl {
					l.unknownKeys(t, []string{"default", "type", "doc", "min", "max"}, path...)
					typ, _ = l.str(t, "type", path...)
					s.Doc, _ = l.str(t, "doc", path...)
					val = t["default"]
					if val == nil {
						l.errf(l.ix.key(path...), "setting %q needs a default", name)
						continue
					}
					bounds = t
					path = append(path, "default")
				}
				s.defPos = l.ix.val(path...)
				if !l.settingValue(s, typ, val, path) {
					continue
				}
				if bounds != nil {
					s.Min = l.settingBound(s, bounds, "min", path[:2])
					s.Max = l.settingBound(s, bounds, "max", path[:2])
					if s.Min != nil && s.Max != nil && *s.Min > *s.Max {
						l.errf(l.ix.val(append(path[:2:2], "max")...), "setting %q: max is below min", name)
					}
				}
				decl[name] = s
				order = append(order, name)
			}
		}
	}
	if _, ok := decl["max_steps"]; !ok {
		decl["max_steps"] = &Setting{Name: "max_steps", Type: SettingInt, Default: int64(DefaultMaxSteps),
			Doc: "internal events processed for one input before the instance is stopped as looping"}
		order = append(order, "max_steps")
	} else if decl["max_steps"].Type != SettingInt {
		l.errf(decl["max_steps"].Pos, "setting max_steps must be an int")
	} else {
		decl["max_steps"].narrow(Int64(1), nil, "an input takes at least one step")
	}
	fields := make([]reflect.StructField, 0, len(order))
	for i, name := range order {
		s := decl[name]
		m.settingIdx[name] = i
		m.Settings = append(m.Settings, s)
		fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(i), Type: s.Type.goType(), Tag: reflect.StructTag(`expr:"` + name + `"`)})
	}
	m.maxStepsIx = m.settingIdx["max_steps"]
	m.settingsT = reflect.PointerTo(reflect.StructOf(fields))
}

func (l *loader) settingValue(s *Setting, typ string, val any, path []string) bool {
	p := l.ix.val(path...)
	switch typ {
	case "":
		switch v := val.(type) {
		case int64:
			s.Type, s.Default = SettingInt, v
		case bool:
			s.Type, s.Default = SettingBool, v
		case string:
			if d, err := time.ParseDuration(v); err == nil {
				s.Type, s.Default = SettingDuration, d
			} else {
				s.Type, s.Default = SettingString, v
			}
		default:
			l.errf(p, "setting %q: default must be an integer, boolean, string or duration string, not %s", s.Name, tomlType(val))
			return false
		}
		return true
	case "int":
		v, ok := val.(int64)
		if !ok {
			l.errf(p, "setting %q is an int; its default is %s", s.Name, tomlType(val))
			return false
		}
		s.Type, s.Default = SettingInt, v
	case "bool":
		v, ok := val.(bool)
		if !ok {
			l.errf(p, "setting %q is a bool; its default is %s", s.Name, tomlType(val))
			return false
		}
		s.Type, s.Default = SettingBool, v
	case "string":
		v, ok := val.(string)
		if !ok {
			l.errf(p, "setting %q is a string; its default is %s", s.Name, tomlType(val))
			return false
		}
		s.Type, s.Default = SettingString, v
	case "duration":
		v, ok := val.(string)
		d, err := time.ParseDuration(v)
		if !ok || err != nil || d < 0 {
			l.errf(p, "setting %q is a duration; its default must be a duration string such as \"5s\"", s.Name)
			return false
		}
		s.Type, s.Default = SettingDuration, d
	default:
		l.errf(l.ix.val(append(path[:2:2], "type")...), "setting %q: unknown type %q (want int, duration, string or bool)", s.Name, typ)
		return false
	}
	return true
}

// settingBound reads a setting's min or max: an integer for an int, a
// duration string for a duration.
func (l *loader) settingBound(s *Setting, tbl map[string]any, key string, path []string) *int64 {
	v, ok := tbl[key]
	if !ok {
		return nil
	}
	p := l.ix.val(append(path[:len(path):len(path)], key)...)
	switch s.Type {
	case SettingInt:
		if n, ok := v.(int64); ok {
			return &n
		}
		l.errf(p, "setting %q: %s must be an integer, not %s", s.Name, key, tomlType(v))
	case SettingDuration:
		if str, ok := v.(string); ok {
			if d, err := time.ParseDuration(str); err == nil {
				n := int64(d)
				return &n
			}
		}
		l.errf(p, "setting %q: %s must be a duration string such as \"1s\"", s.Name, key)
	default:
		l.errf(p, "setting %q: %s applies to int and duration settings only, not %s", s.Name, key, s.Type)
	}
	return nil
}

// duration reads a literal duration ("5s") or "settings.NAME".
func (l *loader) duration(tbl map[string]any, key string, path ...string) Duration {
	s, ok := l.str(tbl, key, path...)
	if !ok {
		return Duration{set: -1}
	}
	p := l.ix.val(append(path, key)...)
	d := l.parseDuration(s, p)
	d.pos = p
	return d
}

func (l *loader) parseDuration(s string, p Pos) Duration {
	if name, ok := strings.CutPrefix(s, "settings."); ok {
		i, found := l.m.settingIdx[name]
		if !found {
			l.errf(p, "duration refers to unknown setting %q", name)
			return Duration{set: -1}
		}
		if l.m.Settings[i].Type != SettingDuration {
			l.errf(p, "duration refers to setting %q, which is not a duration but %s", name, l.m.Settings[i].Type)
			return Duration{set: -1}
		}
		l.m.Settings[i].Timer = true
		return Duration{Setting: name, set: i}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.errf(p, "bad duration %q (want a duration such as \"5s\" or settings.NAME)", s)
		return Duration{set: -1}
	}
	if d != 0 && d < TimerFloor {
		l.errf(p, "timer %s is too short: 0 (off) or at least %s", d, TimerFloor)
		return Duration{set: -1}
	}
	return Duration{Lit: d, set: -1}
}

func (l *loader) eventName(name string, p Pos, what string) bool {
	if !reEvent.MatchString(name) {
		l.errf(p, "%s %q: internal event names are lower-case kebab (a-z, 0-9, -); upper case is for protocol messages", what, name)
		return false
	}
	if e, ok := l.m.Event(name); ok && e.Kind != KindInternal && e.Kind != KindHost {
		l.errf(p, "%s %q: name is reserved", what, name)
		return false
	}
	return true
}

func (l *loader) hostEvents(v any) {
	if v == nil {
		return
	}
	tbl, ok := l.table(v, "events")
	if !ok {
		return
	}
	for _, name := range l.keysInFileOrder(tbl, "events") {
		path := []string{"events", name}
		if !l.eventName(name, l.ix.key(path...), "event") {
			continue
		}
		e := l.addEvent(name, KindHost)
		if t, ok := l.table(tbl[name], path...); ok {
			l.unknownKeys(t, []string{"doc", "args"}, path...)
			e.Doc, _ = l.str(t, "doc", path...)
			e.Args = l.strings(t, "args", path...)
		}
	}
}

func (l *loader) states(v any) {
	m := l.m
	if v == nil {
		l.errf(Pos{Line: 1, Col: 1}, "no states: add at least one [state.NAME] table")
		return
	}
	tbl, ok := l.table(v, "state")
	if !ok {
		return
	}
	names := l.keysInFileOrder(tbl, "state")
	raws := map[string]map[string]any{}
	// Pass 1: names and flags, so that references resolve in any order.
	for _, name := range names {
		path := []string{"state", name}
		st, ok := l.table(tbl[name], path...)
		if !ok {
			continue
		}
		if !reState.MatchString(name) {
			l.errf(l.ix.key(path...), "state name %q must be lower case (a-z, 0-9, -, _)", name)
		}
		s := &State{Name: name, ID: len(m.States), Pos: l.ix.key(path...), On: map[string][]*Transition{}}
		l.unknownKeys(st, []string{"doc", "inherit", "abstract", "final", "entry", "exit", "after", "on"}, path...)
		s.Doc, _ = l.str(st, "doc", path...)
		s.Abstract = l.boolean(st, "abstract", path...)
		s.Final = l.boolean(st, "final", path...)
		m.stateIdx[name] = s.ID
		m.States = append(m.States, s)
		raws[name] = st
	}
	// Pass 2: inheritance.
	for _, s := range m.States {
		path := []string{"state", s.Name}
		if p, ok := l.str(raws[s.Name], "inherit", path...); ok {
			if ps, found := m.State(p); !found {
				l.errf(l.ix.val(append(path, "inherit")...), "state %q inherits unknown state %q", s.Name, p)
			} else {
				s.Parent = ps
			}
		}
	}
	for _, s := range m.States {
		p := s.Parent
		for n := 0; p != nil && p != s && n < len(m.States); n++ {
			p = p.Parent
		}
		if p == s {
			l.errf(l.ix.val("state", s.Name, "inherit"), "state %q: inherit cycle back to itself through %q", s.Name, s.Parent.Name)
			s.Parent = nil
		}
	}
	// Pass 3: handlers and action lists.
	for _, s := range m.States {
		st := raws[s.Name]
		path := []string{"state", s.Name}
		s.Entry = l.actionList(st, "entry", path)
		s.Exit = l.actionList(st, "exit", path)
		if s.Abstract && (len(s.Entry) > 0 || len(s.Exit) > 0 || st["after"] != nil) {
			l.errf(s.Pos, "abstract state %q is never entered: entry, exit and after are not allowed", s.Name)
		}
		if a, ok := st["after"]; ok {
			if at, ok := l.table(a, append(path, "after")...); ok {
				for _, ev := range l.keysInFileOrder(at, append(path, "after")...) {
					p := append(path, "after", ev)
					if !l.eventName(ev, l.ix.key(p...), "after event") {
						continue
					}
					ds, isStr := at[ev].(string)
					if !isStr {
						l.errf(l.ix.val(p...), "after.%s must be a duration string, not %s", ev, tomlType(at[ev]))
						continue
					}
					e := l.addEvent(ev, KindTimer)
					s.After = append(s.After, &After{Event: ev, Dur: l.parseDuration(ds, l.ix.val(p...)), Pos: l.ix.key(p...), ev: e.ID})
				}
			}
		}
		if on, ok := st["on"]; ok {
			onTbl, ok := l.table(on, append(path, "on")...)
			if ok {
				for _, ev := range l.keysInFileOrder(onTbl, append(path, "on")...) {
					l.handler(s, ev, onTbl[ev], append(path, "on", ev))
				}
			}
		}
	}
}

func (l *loader) handler(s *State, ev string, v any, path []string) {
	m := l.m
	kp := l.ix.key(path...)
	evID := -1
	switch {
	case ev == EventAny:
		evID = m.anyEv
	case ev != strings.ToLower(ev):
		e, ok := m.Event(ev)
		if !ok || e.Kind != KindMessage {
			if m.Proto != nil {
				l.errf(kp, "unknown message %q in protocol %s", ev, m.Protocol)
			}
			return
		}
		if !e.Receivable {
			l.errf(kp, "a %s never receives %s (it is sent by the %s)", m.Role, ev, e.Msg.From)
			return
		}
		evID = e.ID
	default:
		if !reEvent.MatchString(ev) {
			l.errf(kp, "event %q: internal event names are lower-case kebab (a-z, 0-9, -)", ev)
			return
		}
		if e, ok := m.Event(ev); ok {
			evID = e.ID
		} else {
			l.handled[ev] = append(l.handled[ev], kp)
		}
	}
	var alts []map[string]any
	var altPaths [][]string
	switch v := v.(type) {
	case map[string]any:
		alts = []map[string]any{v}
		altPaths = [][]string{path}
	case []map[string]any:
		for i, a := range v {
			alts = append(alts, a)
			altPaths = append(altPaths, append(append([]string{}, path...), strconv.Itoa(i)))
		}
	case []any:
		for i, a := range v {
			ap := append(append([]string{}, path...), strconv.Itoa(i))
			t, ok := a.(map[string]any)
			if !ok {
				l.errf(l.ix.key(ap...), "on.%s[%d] must be a table {when, do, next}, not %s", ev, i, tomlType(a))
				continue
			}
			alts = append(alts, t)
			altPaths = append(altPaths, ap)
		}
	default:
		l.errf(l.ix.val(path...), "on.%s must be a table {when, do, next} or an array of them, not %s", ev, tomlType(v))
		return
	}
	if len(alts) == 0 {
		l.errf(kp, "on.%s has no alternatives", ev)
		return
	}
	var list []*Transition
	for i, a := range alts {
		ap := altPaths[i]
		l.unknownKeys(a, []string{"when", "do", "next", "doc"}, ap...)
		t := &Transition{Event: ev, From: s, Alt: i, Pos: l.ix.key(ap...), ev: evID}
		t.Doc, _ = l.str(a, "doc", ap...)
		if w, ok := l.str(a, "when", ap...); ok {
			t.When = w
		}
		l.curEvent = ev
		t.Actions = l.actionList(a, "do", ap)
		l.curEvent = ""
		if n, ok := l.str(a, "next", ap...); ok {
			if ns, found := m.State(n); !found {
				l.errf(l.ix.val(append(ap, "next")...), "next state %q is not defined", n)
			} else if ns.Abstract {
				l.errf(l.ix.val(append(ap, "next")...), "next state %q is abstract (it can only be inherited)", n)
			} else {
				t.Next = ns
			}
		}
		if t.When != "" {
			l.compileGuard(t, append(ap, "when"))
		}
		list = append(list, t)
	}
	for i, t := range list[:len(list)-1] {
		if t.When == "" {
			l.errf(list[i+1].Pos, "alternative %d of on.%s can never run: alternative %d before it has no guard", i+1, ev, i)
			break
		}
	}
	s.On[ev] = list
	s.onKeys = append(s.onKeys, ev)
}

func (l *loader) compileGuard(t *Transition, path []string) {
	m := l.m
	var msgT reflect.Type
	if e, ok := m.Event(t.Event); ok && e.Kind == KindMessage {
		msgT = reflect.TypeOf(e.Msg.New())
	}
	var peerT reflect.Type
	if l.lib.PeerType != nil {
		peerT = reflect.TypeOf(l.lib.PeerType)
	}
	intern := func(lit string) string {
		if s, ok := m.State(lit); ok {
			return s.Name
		}
		if e, ok := m.Event(lit); ok {
			return e.Name
		}
		return lit
	}
	g, ge := compileGuard(t.When, makeEnvTypeVars(msgT, peerT, m.settingsT, m.varsT), intern)
	if ge != nil {
		p := l.ix.val(path...)
		if ge.line >= 0 && l.ix.plain(path...) && ge.line == 0 {
			p.Col += ge.col
		}
		msg := strings.ReplaceAll(ge.msg, m.settingsT.Elem().String(), "settings")
		if msgT != nil {
			msg = strings.ReplaceAll(msg, msgT.Elem().String(), t.Event+" message")
		}
		l.errf(p, "guard: %s", msg)
		return
	}
	for _, is := range guardIndexes(t.When) {
		p := l.ix.val(path...)
		if l.ix.plain(path...) && !strings.Contains(t.When[:is.off], "\n") {
			p.Col += is.off
		}
		l.errf(p, "guard: %s", is.msg)
	}
	t.guard = g
}

func (l *loader) actionList(tbl map[string]any, key string, path []string) []*Action {
	names := l.strings(tbl, key, path...)
	var out []*Action
	for i, raw := range names {
		p := l.ix.val(append(path, key, strconv.Itoa(i))...)
		if _, isList := tbl[key].([]any); !isList {
			p = l.ix.val(append(path, key)...)
		}
		if a := l.action(raw, p); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (l *loader) action(raw string, p Pos) *Action {
	m := l.m
	name := strings.Join(strings.Fields(raw), " ")
	a := &Action{Name: name, Pos: p, msgIdx: -1, ev: -1}
	verb, arg, _ := strings.Cut(name, " ")
	switch {
	case name == verbTerminate:
		a.Kind = ActTerminate
	case verb == verbSet && strings.Contains(arg, "="):
		if !l.setVar(a, arg, p) {
			return nil
		}
	case verb == verbLog && isLogLevel(strings.SplitN(arg, " ", 2)[0]):
		if !l.logVerb(a, arg, p) {
			return nil
		}
	case verb == verbSend:
		a.Kind = ActSend
		arg, rest, _ := strings.Cut(arg, " ")
		a.Message = arg
		if arg == "" {
			l.errf(p, "send takes a message name: %q", raw)
			return nil
		}
		if m.Proto == nil {
			return a
		}
		e, ok := m.Event(arg)
		if !ok || e.Kind != KindMessage {
			l.errf(p, "send: unknown message %q in protocol %s", arg, m.Protocol)
			return nil
		}
		if m.Role != "" && e.Msg.From&ownRole(m.Role) == 0 {
			l.errf(p, "send %s: a %s may not send %s (it is sent by the %s)", arg, m.Role, arg, e.Msg.From)
			return nil
		}
		a.msgIdx = e.ID
		if strings.TrimSpace(rest) != "" && !l.sendFields(a, rest, p) {
			return nil
		}
	case verb == verbRaise:
		a.Kind = ActRaise
		a.Event = arg
		if arg == "" || strings.Contains(arg, " ") {
			l.errf(p, "raise takes one event name: %q", raw)
			return nil
		}
		if !l.eventName(arg, p, "raise") {
			return nil
		}
		a.ev = l.addEvent(arg, KindInternal).ID
		l.raised[arg] = true
	case name == "":
		l.errf(p, "empty action name")
		return nil
	default:
		spec, ok := l.lib.Actions[name]
		if !ok {
			l.errf(p, "unknown action %q%s", name, l.suggest(name))
			return nil
		}
		if spec.Fn == nil {
			l.errf(p, "action %q is registered without a function", name)
			return nil
		}
		a.Kind = ActCall
		a.Spec = &spec
		a.fn = spec.Fn
		for _, ev := range spec.Raises {
			if !l.eventName(ev, p, "action "+strconv.Quote(name)+" raises event") {
				continue
			}
			l.addEvent(ev, KindInternal)
			l.raised[ev] = true
		}
	}
	return a
}

// suggest names a registered action close to name.
func (l *loader) suggest(name string) string {
	best, bestD := "", 4
	for k := range l.lib.Actions {
		if d := editDistance(name, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
