package interp

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// The data verbs of the machine language: values computed by expressions
// (the guard language, over msg, peer, settings, vars, state, event,
// value) go into message fields, per-instance variables and log lines.
//
//	send SRSLY reason = 'quota of ' + string(settings.max_files) + ' files'
//	set files = vars.files + 1
//	log info 'file received', path = msg.filename, files = vars.files
//
// Expressions built from what the fast guard evaluator handles (field
// reads, literals, arithmetic, comparisons, logic, len, string operators)
// are compiled into typed closures and assigned through reflect without
// allocating; any other runs on expr's VM.

// Var is a per-instance variable declared in [vars].
type Var struct {
	Name    string
	Type    SettingType
	Default any
	Doc     string
	Pos     Pos
}

// valueExpr is a compiled value expression.
type valueExpr struct {
	src  string
	fast *typed       // nil: run prog
	prog *vm.Program  // always compiled (type checks, fallback)
	envT reflect.Type // pointer to the env struct
}

// fieldSet is one `name = expr` of a send or log.
type fieldSet struct {
	name  string
	index int // struct field of the message (send)
	val   *valueExpr
}

// Var returns a declared variable by name.
func (m *Machine) Var(name string) (*Var, bool) {
	i, ok := m.varIdx[name]
	if !ok {
		return nil, false
	}
	return m.Vars[i], true
}

// newVars makes an instance's variables, set to their defaults.
func (m *Machine) newVars() reflect.Value {
	t := m.varsT
	if t == nil {
		t = emptyVarsT
	}
	v := reflect.New(t.Elem())
	for i, x := range m.Vars {
		v.Elem().Field(i).Set(reflect.ValueOf(x.Default))
	}
	return v
}

// ---- loading ----

var reIdent = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (l *loader) vars(v any) {
	m := l.m
	m.varIdx = map[string]int{}
	var fields []reflect.StructField
	if v != nil {
		if tbl, ok := l.table(v, "vars"); ok {
			for _, name := range l.keysInFileOrder(tbl, "vars") {
				path := []string{"vars", name}
				if !reIdent.MatchString(name) {
					l.errf(l.ix.key(path...), "variable name %q must be snake_case ([a-z][a-z0-9_]*), so expressions can read vars.%s", name, name)
					continue
				}
				s := &Setting{Name: name}
				val, typ := tbl[name], ""
				doc := ""
				if t, isTbl := val.(map[string]any); isTbl {
					l.unknownKeys(t, []string{"default", "type", "doc"}, path...)
					typ, _ = l.str(t, "type", path...)
					doc, _ = l.str(t, "doc", path...)
					val = t["default"]
					if val == nil {
						l.errf(l.ix.key(path...), "variable %q needs a default", name)
						continue
					}
					path = append(path, "default")
				}
				if !l.settingValue(s, typ, val, path) {
					continue
				}
				x := &Var{Name: name, Type: s.Type, Default: s.Default, Doc: doc, Pos: l.ix.key("vars", name)}
				m.varIdx[name] = len(m.Vars)
				m.Vars = append(m.Vars, x)
				fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(len(fields)), Type: x.Type.goType(), Tag: reflect.StructTag(`expr:"` + name + `"`)})
			}
		}
	}
	m.varsT = reflect.PointerTo(reflect.StructOf(fields))
}

// envFor is the expression environment of an action list handling event
// (its msg type known for a message; "" for entry and exit lists).
func (l *loader) envFor(event string) reflect.Type {
	m := l.m
	var msgT reflect.Type
	if e, ok := m.Event(event); ok && e.Kind == KindMessage {
		msgT = reflect.TypeOf(e.Msg.New())
	}
	var peerT reflect.Type
	if l.lib.PeerType != nil {
		peerT = reflect.TypeOf(l.lib.PeerType)
	}
	return makeEnvTypeVars(msgT, peerT, m.settingsT, m.varsT)
}

func (l *loader) intern(lit string) string {
	if s, ok := l.m.State(lit); ok {
		return s.Name
	}
	if e, ok := l.m.Event(lit); ok {
		return e.Name
	}
	return lit
}

// compileValue compiles a value expression; the error is for the user.
func (l *loader) compileValue(src string) (*valueExpr, error) {
	envT := l.envFor(l.curEvent)
	sample := reflect.New(envT.Elem()).Interface()
	prog, err := expr.Compile(src, expr.Env(sample))
	if err != nil {
		msg := err.Error()
		msg = strings.ReplaceAll(msg, l.m.settingsT.Elem().String(), "settings")
		msg = strings.ReplaceAll(msg, l.m.varsT.Elem().String(), "vars")
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return nil, fmt.Errorf("%s", msg)
	}
	ve := &valueExpr{src: src, prog: prog, envT: envT}
	if tree, err := parser.Parse(src); err == nil {
		c := &fastCompiler{env: envT.Elem(), intern: l.intern}
		if t := c.compile(tree.Node); t != nil {
			ve.fast = t
		} else if t := c.direct(tree.Node); t != nil {
			ve.fast = t
		}
	}
	return ve, nil
}

// kindOf names what a value expression yields, for type errors.
func (ve *valueExpr) kindOf() (reflect.Kind, bool) {
	if ve.fast != nil {
		switch ve.fast.k {
		case gBool:
			return reflect.Bool, true
		case gInt:
			return reflect.Int64, true
		case gUint:
			return reflect.Uint64, true
		case gFloat:
			return reflect.Float64, true
		case gString:
			return reflect.String, true
		case gValue:
			return ve.fast.vt.Kind(), true
		}
	}
	if n := ve.prog.Node(); n != nil && n.Type() != nil {
		return n.Type().Kind(), n.Type().Kind() != reflect.Interface
	}
	return reflect.Invalid, false
}

func isIntKind(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Int64 }
func isUintKind(k reflect.Kind) bool {
	return k >= reflect.Uint && k <= reflect.Uint64
}

// assignable checks at load that the expression can fill a value of type t.
func (ve *valueExpr) assignable(t reflect.Type) error {
	if ve.fast != nil && ve.fast.k == gValue {
		if !ve.fast.vt.AssignableTo(t) {
			return fmt.Errorf("it is a %s, the expression %q gives a %s", t, ve.src, ve.fast.vt)
		}
		return nil
	}
	switch {
	case t.Kind() == reflect.String, t.Kind() == reflect.Bool, isBytes(t):
	case isStringMap(t):
		if k, known := ve.kindOf(); known && k != reflect.Map {
			return fmt.Errorf("it is a hash, the expression %q gives a %s", ve.src, kindName(k))
		}
		return nil
	default:
		if !isIntKind(t.Kind()) && !isUintKind(t.Kind()) {
			return fmt.Errorf("a %s cannot be set from an expression (only strings, bytes, numbers and booleans)", t)
		}
	}
	k, known := ve.kindOf()
	if !known {
		return nil
	}
	ok := false
	switch {
	case t.Kind() == reflect.String || isBytes(t):
		ok = k == reflect.String
	case t.Kind() == reflect.Bool:
		ok = k == reflect.Bool
	default:
		ok = isIntKind(k) || isUintKind(k)
	}
	if !ok {
		return fmt.Errorf("it is a %s, the expression %q gives a %s", kindName(t.Kind()), ve.src, kindName(k))
	}
	return nil
}

// isStringMap: a hash field, set from a map expression ({'K': 'v'}, or a
// map[string]string value).
func isStringMap(t reflect.Type) bool {
	return t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String
}

// setStringMap stores a map value into a hash field: a map[string]string
// as it is, a map[string]any of strings converted.
func setStringMap(dst, rv reflect.Value, src string) error {
	if rv.Type().AssignableTo(dst.Type()) {
		dst.Set(rv)
		return nil
	}
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("%q gives a %s, not a hash of strings", src, rv.Type())
	}
	out := reflect.MakeMapWithSize(dst.Type(), rv.Len())
	it := rv.MapRange()
	for it.Next() {
		v := it.Value()
		if v.Kind() == reflect.Interface {
			v = v.Elem()
		}
		if !v.IsValid() || v.Kind() != reflect.String {
			return fmt.Errorf("%q: key %q is not a string", src, it.Key().String())
		}
		out.SetMapIndex(it.Key().Convert(dst.Type().Key()), v.Convert(dst.Type().Elem()))
	}
	dst.Set(out)
	return nil
}

// isBytes: a chunk or octets field, set from a string expression.
func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// setString stores s into a string or bytes field (bytes reuse the
// field's buffer when it has room).
func setString(dst reflect.Value, s string) {
	if dst.Kind() == reflect.String {
		dst.SetString(s)
		return
	}
	dst.SetBytes(append(dst.Bytes()[:0], s...))
}

func kindName(k reflect.Kind) string {
	switch {
	case k == reflect.String:
		return "string"
	case k == reflect.Bool:
		return "boolean"
	case isIntKind(k) || isUintKind(k):
		return "number"
	case k == reflect.Float32 || k == reflect.Float64:
		return "float"
	}
	return k.String()
}

// splitTop splits s at sep outside quotes and brackets.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// assignment splits "name = expr" (a lone '=', not ==, <=, >=, !=).
func assignment(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '=' || i > 0 && strings.IndexByte("=!<>", s[i-1]) >= 0 {
			i++
			continue
		}
		name := strings.TrimSpace(s[:i])
		return name, strings.TrimSpace(s[i+1:]), reIdent.MatchString(name)
	}
	return "", "", false
}

// sendFields reads "f = expr, g = expr" after `send MSG`.
func (l *loader) sendFields(a *Action, rest string, p Pos) bool {
	e, ok := l.m.Event(a.Message)
	if !ok || e.Msg == nil {
		return false
	}
	msgT := reflect.TypeOf(e.Msg.New()).Elem()
	seen := map[string]bool{}
	for _, part := range splitTop(rest, ',') {
		name, src, ok := assignment(part)
		if !ok {
			l.errf(p, "send %s: want FIELD = EXPRESSION, not %q", a.Message, strings.TrimSpace(part))
			return false
		}
		fi, found := e.Msg.Field(name)
		if !found {
			var names []string
			for _, f := range e.Msg.Fields {
				names = append(names, f.Name)
			}
			l.errf(p, "send %s: no field %q (fields: %s)", a.Message, name, strings.Join(names, ", "))
			return false
		}
		if fi.Const != nil {
			l.errf(p, "send %s: field %q is a constant of the protocol", a.Message, name)
			return false
		}
		if seen[name] {
			l.errf(p, "send %s: field %q set twice", a.Message, name)
			return false
		}
		seen[name] = true
		idx, found := fieldIndex(msgT, name)
		if !found {
			l.errf(p, "send %s: field %q has no Go field", a.Message, name)
			return false
		}
		ve, err := l.compileValue(src)
		if err != nil {
			l.errf(p, "send %s: field %s: %v", a.Message, name, err)
			return false
		}
		if err := ve.assignable(msgT.Field(idx).Type); err != nil {
			l.errf(p, "send %s: field %s: %v", a.Message, name, err)
			return false
		}
		a.fields = append(a.fields, &fieldSet{name: name, index: idx, val: ve})
	}
	return true
}

// setVar reads `set NAME = EXPR`.
func (l *loader) setVar(a *Action, rest string, p Pos) bool {
	name, src, ok := assignment(rest)
	if !ok || src == "" {
		l.errf(p, "set takes NAME = EXPRESSION: %q", "set "+rest)
		return false
	}
	i, found := l.m.varIdx[name]
	if !found {
		l.errf(p, "set %s: no variable %q in [vars]", name, name)
		return false
	}
	ve, err := l.compileValue(src)
	if err != nil {
		l.errf(p, "set %s: %v", name, err)
		return false
	}
	if err := ve.assignable(l.m.Vars[i].Type.goType()); err != nil {
		l.errf(p, "set %s: %v", name, err)
		return false
	}
	a.Kind, a.varIdx, a.value = ActSet, i, ve
	return true
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func isLogLevel(s string) bool {
	_, ok := logLevels[s]
	return ok
}

// logVerb reads `log LEVEL 'text'[, k = expr ...]`.
func (l *loader) logVerb(a *Action, rest string, p Pos) bool {
	lvl, text, _ := strings.Cut(rest, " ")
	level, ok := logLevels[lvl]
	if !ok {
		l.errf(p, "log: level %q (want debug, info, warn or error)", lvl)
		return false
	}
	parts := splitTop(text, ',')
	tree, err := parser.Parse(strings.TrimSpace(parts[0]))
	lit, isStr := ast.Node(nil), false
	if err == nil {
		lit = tree.Node
		_, isStr = lit.(*ast.StringNode)
	}
	if !isStr {
		l.errf(p, "log %s: want a quoted message ('file received'), then , NAME = EXPRESSION ...", lvl)
		return false
	}
	a.Kind, a.level, a.text = ActLog, level, lit.(*ast.StringNode).Value
	for _, part := range parts[1:] {
		name, src, ok := assignment(part)
		if !ok {
			l.errf(p, "log: want NAME = EXPRESSION, not %q", strings.TrimSpace(part))
			return false
		}
		ve, err := l.compileValue(src)
		if err != nil {
			l.errf(p, "log: %s: %v", name, err)
			return false
		}
		a.fields = append(a.fields, &fieldSet{name: name, val: ve})
	}
	return true
}

// ---- running ----

// adopt moves a client's instance to a reloaded machine when it sits in
// its machine's initial state (between sessions, as a host's "connect"
// finds it): a client's next session runs the new machine, as a server's
// new sessions do. Variables start from their defaults; the new initial
// state's entry actions do not run (the instance exists already).
func (d *disp) adopt(inst *instance) {
	ms := d.e.cur.Load()
	if inst.ms == ms || inst.state != inst.ms.m.Initial {
		return
	}
	m := ms.m
	inst.ms, inst.state, inst.vars, inst.out = ms, m.Initial, m.newVars(), nil
	inst.pubState.Store(m.Initial)
	if d.env.inst == inst {
		d.env = genv{}
	}
	inst.setExpiry(d.now, ms.dur(m.Expiry))
	inst.setHeartbeat(d.now, ms.dur(m.Heartbeat))
	inst.armAfters(d.now)
	d.e.log.Info("client session runs the reloaded machine", "machine", m.File, "hash", m.Hash)
}

var noEvent = &EventInfo{Name: ""}

// valueEnv binds the dispatcher's expression inputs to inst and the
// current input.
func (d *disp) valueEnv(inst *instance) *genv {
	g := &d.env
	if g.inst != inst {
		g.inst, g.peer, g.settings = inst, inst.peer, inst.ms.settings
		g.bound &^= boundPeer
	}
	c := &d.ctx
	if g.msg != c.msg {
		g.msg = c.msg
		g.bound &^= boundMsg
	}
	g.value = c.value
	g.st = inst.state
	g.ev = noEvent
	if c.evID >= 0 {
		g.ev = inst.ms.m.Events[c.evID]
	}
	return g
}

// assign evaluates ve into dst.
func (d *disp) assign(dst reflect.Value, ve *valueExpr, g *genv) error {
	if t := ve.fast; t != nil {
		g.bad = 0
		switch t.k {
		case gString:
			s := t.s(g)
			if g.bad == 0 {
				setString(dst, s)
			}
		case gBool:
			b := t.b(g)
			if g.bad == 0 {
				dst.SetBool(b)
			}
		case gInt:
			n := t.i(g)
			if g.bad == 0 {
				return setInt(dst, n)
			}
		case gUint:
			n := t.u(g)
			if g.bad == 0 {
				if isIntKind(dst.Kind()) {
					return setInt(dst, int64(n))
				}
				if dst.OverflowUint(n) {
					return fmt.Errorf("%q = %d does not fit a %s", ve.src, n, dst.Type())
				}
				dst.SetUint(n)
			}
		case gValue:
			v := t.v(g)
			if g.bad == 0 {
				if v.IsValid() {
					dst.Set(v) // lent, not copied
				} else {
					dst.SetZero()
				}
			}
		default:
			return fmt.Errorf("%q: a float cannot be set", ve.src)
		}
		if g.bad != 0 {
			return guardErr[g.bad]
		}
		return nil
	}
	v, err := d.run(ve, g)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	switch {
	case !rv.IsValid() && isStringMap(dst.Type()):
		dst.SetZero()
	case !rv.IsValid():
		return fmt.Errorf("%q is nil", ve.src)
	case isStringMap(dst.Type()):
		return setStringMap(dst, rv, ve.src)
	case (dst.Kind() == reflect.String || isBytes(dst.Type())) && rv.Kind() == reflect.String:
		setString(dst, rv.String())
	case dst.Kind() == reflect.Bool && rv.Kind() == reflect.Bool:
		dst.SetBool(rv.Bool())
	case isIntKind(rv.Kind()):
		return setInt(dst, rv.Int())
	case isUintKind(rv.Kind()) && rv.Uint() < 1<<63:
		return setInt(dst, int64(rv.Uint()))
	default:
		return fmt.Errorf("%q gives a %s, not a %s", ve.src, rv.Type(), dst.Type())
	}
	return nil
}

func setInt(dst reflect.Value, n int64) error {
	switch {
	case isIntKind(dst.Kind()):
		if dst.OverflowInt(n) {
			return fmt.Errorf("%d does not fit a %s", n, dst.Type())
		}
		dst.SetInt(n)
	case isUintKind(dst.Kind()):
		if n < 0 || dst.OverflowUint(uint64(n)) {
			return fmt.Errorf("%d does not fit a %s", n, dst.Type())
		}
		dst.SetUint(uint64(n))
	default:
		return fmt.Errorf("a number cannot go into a %s", dst.Type())
	}
	return nil
}

// run evaluates ve on expr's VM.
func (d *disp) run(ve *valueExpr, g *genv) (any, error) {
	return d.vm.Run(ve.prog, g.vmEnv(ve.envT))
}

// fill sets the fields a `send MSG f = expr` names.
func (d *disp) fill(inst *instance, msg any, a *Action) error {
	g := d.valueEnv(inst)
	dst := reflect.ValueOf(msg).Elem()
	for _, f := range a.fields {
		if err := d.assign(dst.Field(f.index), f.val, g); err != nil {
			return fmt.Errorf("send %s: field %s: %w", a.Message, f.name, err)
		}
	}
	return nil
}

// set runs `set NAME = expr`.
func (d *disp) set(inst *instance, a *Action) error {
	g := d.valueEnv(inst)
	if err := d.assign(inst.vars.Elem().Field(a.varIdx), a.value, g); err != nil {
		return fmt.Errorf("set %s: %w", inst.ms.m.Vars[a.varIdx].Name, err)
	}
	return nil
}

// logLine runs `log LEVEL 'text', k = expr...`; nothing is evaluated when
// the level is off.
func (d *disp) logLine(inst *instance, a *Action) error {
	c := &d.ctx
	lg := c.Log()
	if !lg.Enabled(context.Background(), a.level) {
		return nil
	}
	g := d.valueEnv(inst)
	attrs := make([]slog.Attr, 0, len(a.fields)+2)
	attrs = append(attrs, slog.String("state", inst.state.Name), slog.String("event", g.ev.Name))
	for _, f := range a.fields {
		v, err := d.value(f.val, g)
		if err != nil {
			return fmt.Errorf("log: %s: %w", f.name, err)
		}
		attrs = append(attrs, slog.Any(f.name, v))
	}
	lg.LogAttrs(context.Background(), a.level, a.text, attrs...)
	return nil
}

// value evaluates ve to a Go value (for log lines).
func (d *disp) value(ve *valueExpr, g *genv) (any, error) {
	if t := ve.fast; t != nil {
		g.bad = 0
		var v any
		switch t.k {
		case gString:
			v = t.s(g)
		case gBool:
			v = t.b(g)
		case gInt:
			v = t.i(g)
		case gUint:
			v = t.u(g)
		case gFloat:
			v = t.f(g)
		case gValue:
			if rv := t.v(g); rv.IsValid() {
				v = rv.Interface()
			}
		}
		if g.bad != 0 {
			return nil, guardErr[g.bad]
		}
		if dur, ok := v.(int64); ok && ve.isDuration() {
			return time.Duration(dur), nil
		}
		return v, nil
	}
	return d.run(ve, g)
}

func (ve *valueExpr) isDuration() bool {
	n := ve.prog.Node()
	return n != nil && n.Type() == reflect.TypeFor[time.Duration]()
}
