package interp

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// A guard is an expr-lang boolean expression over
//
//	msg      the message being handled (its generated struct, fields by model name)
//	peer     the instance's user value (Library.PeerType)
//	settings the machine's settings, by name
//	state    the current state name
//	event    the current event name
//	value    the value posted with the event (Post, Broadcast, Call, RaiseValue)
//
// It is type-checked when the machine loads. Guards built from field
// accesses, literals, comparisons, arithmetic, logic, len() and the string
// operators run on a small closure evaluator that reads fields by reflection
// without allocating; any other guard runs on expr's VM.
type guard struct {
	src     string
	program *vm.Program
	envType reflect.Type // pointer to the env struct of this guard
	fast    gfn
}

// Field order of env structs built by envType.
const (
	envMsg = iota
	envPeer
	envSettings
	envState
	envEvent
	envValue
)

var anyType = reflect.TypeFor[any]()

func makeEnvType(msgT, peerT, settingsT reflect.Type) reflect.Type {
	if msgT == nil {
		msgT = anyType
	}
	if peerT == nil {
		peerT = anyType
	}
	return reflect.PointerTo(reflect.StructOf([]reflect.StructField{
		{Name: "Msg", Type: msgT, Tag: `expr:"msg"`},
		{Name: "Peer", Type: peerT, Tag: `expr:"peer"`},
		{Name: "Settings", Type: settingsT, Tag: `expr:"settings"`},
		{Name: "State", Type: reflect.TypeFor[string](), Tag: `expr:"state"`},
		{Name: "Event", Type: reflect.TypeFor[string](), Tag: `expr:"event"`},
		{Name: "Value", Type: anyType, Tag: `expr:"value"`},
	}))
}

// guardError is a compile error with its 0-based line and column inside the
// expression, when known.
type guardError struct {
	line, col int
	msg       string
}

func compileGuard(src string, envT reflect.Type) (*guard, *guardError) {
	sample := reflect.New(envT.Elem()).Interface()
	prog, err := expr.Compile(src, expr.Env(sample), expr.AsBool())
	if err != nil {
		ge := &guardError{line: -1, col: -1, msg: err.Error()}
		var fe *file.Error
		if errors.As(err, &fe) {
			ge.msg = fe.Message
			if fe.Line > 0 {
				ge.line, ge.col = fe.Line-1, fe.Column
			}
		}
		return nil, ge
	}
	g := &guard{src: src, program: prog, envType: envT}
	if tree, err := parser.Parse(src); err == nil {
		c := &fastCompiler{env: envT.Elem()}
		if f, t := c.compile(tree.Node); t != nil && t.kind == gBool && !c.failed {
			g.fast = f
		}
	}
	return g, nil
}

// genv is what a guard evaluation reads; the engine fills one per dispatch.
type genv struct {
	msg      codec_Message
	peer     any
	settings reflect.Value // *settings struct
	state    string
	event    string
	value    any
	err      error
}

// codec_Message avoids importing codec here just for the field type.
type codec_Message = any

// eval runs the guard. vmach is a reusable VM (single goroutine).
func (g *guard) eval(env *genv, vmach *vm.VM) (bool, error) {
	if g.fast != nil {
		env.err = nil
		v := g.fast(env)
		if env.err != nil {
			return false, env.err
		}
		return v.b, nil
	}
	ev := reflect.New(g.envType.Elem())
	s := ev.Elem()
	setAny(s.Field(envMsg), env.msg)
	setAny(s.Field(envPeer), env.peer)
	s.Field(envSettings).Set(env.settings)
	s.Field(envState).SetString(env.state)
	s.Field(envEvent).SetString(env.event)
	setAny(s.Field(envValue), env.value)
	out, err := vmach.Run(g.program, ev.Interface())
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func setAny(f reflect.Value, v any) {
	if v == nil {
		return
	}
	rv := reflect.ValueOf(v)
	if rv.Type().AssignableTo(f.Type()) {
		f.Set(rv)
	}
}

// ---- the allocation-free evaluator ----

type gkind uint8

const (
	gBool gkind = iota + 1
	gInt
	gUint
	gFloat
	gString
)

type gval struct {
	k gkind
	b bool
	i int64
	u uint64
	f float64
	s string
}

type gfn func(*genv) gval

type gtype struct {
	kind gkind
	rt   reflect.Type // for values that are not scalars yet (structs, maps, slices)
}

type fastCompiler struct {
	env    reflect.Type
	failed bool
}

func (c *fastCompiler) fail() (gfn, *gtype) {
	c.failed = true
	return nil, nil
}

func scalarKind(t reflect.Type) gkind {
	switch t.Kind() {
	case reflect.Bool:
		return gBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return gInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return gUint
	case reflect.Float32, reflect.Float64:
		return gFloat
	case reflect.String:
		return gString
	}
	return 0
}

var errNilGuardValue = errors.New("guard reads a field of a nil value")

// fieldIndex finds a struct field by expr tag or by name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return 0, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if tag, ok := f.Tag.Lookup("expr"); ok {
			tag, _, _ = strings.Cut(tag, ",")
			if tag == name {
				return i, true
			}
			continue
		}
		if f.Name == name {
			return i, true
		}
	}
	return 0, false
}

// path compiles a chain of identifier and member nodes into a root and a
// list of field indexes; ok is false for anything else.
func (c *fastCompiler) path(n ast.Node) (root int, idx []int, t reflect.Type, ok bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		i, found := fieldIndex(c.env, n.Value)
		if !found || i == envValue || i == envState || i == envEvent {
			return 0, nil, nil, false
		}
		ft := c.env.Field(i).Type
		if ft.Kind() == reflect.Interface {
			return 0, nil, nil, false
		}
		return i, nil, ft, true
	case *ast.MemberNode:
		if n.Optional || n.Method {
			return 0, nil, nil, false
		}
		prop, isStr := n.Property.(*ast.StringNode)
		if !isStr {
			return 0, nil, nil, false
		}
		root, idx, t, ok := c.path(n.Node)
		if !ok {
			return 0, nil, nil, false
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return 0, nil, nil, false
		}
		if _, has := reflect.PointerTo(t).MethodByName(prop.Value); has {
			return 0, nil, nil, false
		}
		fi, found := fieldIndex(t, prop.Value)
		if !found {
			return 0, nil, nil, false
		}
		ft := t.Field(fi).Type
		if ft.Kind() == reflect.Interface {
			return 0, nil, nil, false
		}
		return root, append(idx, fi), ft, true
	}
	return 0, nil, nil, false
}

func rootValue(env *genv, root int) reflect.Value {
	switch root {
	case envMsg:
		return reflect.ValueOf(env.msg)
	case envPeer:
		return reflect.ValueOf(env.peer)
	case envSettings:
		return env.settings
	}
	return reflect.Value{}
}

// walk follows idx from the root value; it reports false on a nil pointer.
func walk(v reflect.Value, idx []int) (reflect.Value, bool) {
	for _, i := range idx {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		if !v.IsValid() {
			return v, false
		}
		v = v.Field(i)
	}
	return v, v.IsValid()
}

func (c *fastCompiler) compile(n ast.Node) (gfn, *gtype) {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := gval{k: gBool, b: n.Value}
		return func(*genv) gval { return v }, &gtype{kind: gBool}
	case *ast.IntegerNode:
		v := gval{k: gInt, i: int64(n.Value)}
		return func(*genv) gval { return v }, &gtype{kind: gInt}
	case *ast.FloatNode:
		v := gval{k: gFloat, f: n.Value}
		return func(*genv) gval { return v }, &gtype{kind: gFloat}
	case *ast.StringNode:
		v := gval{k: gString, s: n.Value}
		return func(*genv) gval { return v }, &gtype{kind: gString}
	case *ast.IdentifierNode:
		switch n.Value {
		case "state":
			return func(e *genv) gval { return gval{k: gString, s: e.state} }, &gtype{kind: gString}
		case "event":
			return func(e *genv) gval { return gval{k: gString, s: e.event} }, &gtype{kind: gString}
		}
		return c.fail()
	case *ast.MemberNode:
		root, idx, t, ok := c.path(n)
		if !ok {
			return c.fail()
		}
		k := scalarKind(t)
		if k == 0 {
			return c.fail() // maps, slices and structs are usable through len() and fields only
		}
		if t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64 {
			k = gFloat
		}
		return func(e *genv) gval {
			v, ok := walk(rootValue(e, root), idx)
			if !ok {
				e.err = errNilGuardValue
				return gval{}
			}
			switch k {
			case gBool:
				return gval{k: k, b: v.Bool()}
			case gInt:
				return gval{k: k, i: v.Int()}
			case gUint:
				return gval{k: k, u: v.Uint()}
			case gFloat:
				return gval{k: k, f: v.Float()}
			default:
				return gval{k: k, s: v.String()}
			}
		}, &gtype{kind: k}
	case *ast.UnaryNode:
		f, t := c.compile(n.Node)
		if t == nil {
			return c.fail()
		}
		switch n.Operator {
		case "!", "not":
			if t.kind != gBool {
				return c.fail()
			}
			return func(e *genv) gval { v := f(e); v.b = !v.b; return v }, t
		case "-":
			switch t.kind {
			case gInt:
				return func(e *genv) gval { v := f(e); v.i = -v.i; return v }, t
			case gFloat:
				return func(e *genv) gval { v := f(e); v.f = -v.f; return v }, t
			}
		case "+":
			if t.kind == gInt || t.kind == gFloat || t.kind == gUint {
				return f, t
			}
		}
		return c.fail()
	case *ast.BuiltinNode:
		if n.Name != "len" || len(n.Arguments) != 1 {
			return c.fail()
		}
		if s, ok := n.Arguments[0].(*ast.StringNode); ok {
			v := gval{k: gInt, i: int64(len(s.Value))}
			return func(*genv) gval { return v }, &gtype{kind: gInt}
		}
		root, idx, t, ok := c.path(n.Arguments[0])
		if !ok {
			if id, isID := n.Arguments[0].(*ast.IdentifierNode); isID && (id.Value == "state" || id.Value == "event") {
				st := id.Value == "state"
				return func(e *genv) gval {
					if st {
						return gval{k: gInt, i: int64(len(e.state))}
					}
					return gval{k: gInt, i: int64(len(e.event))}
				}, &gtype{kind: gInt}
			}
			return c.fail()
		}
		switch t.Kind() {
		case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		default:
			return c.fail()
		}
		return func(e *genv) gval {
			v, ok := walk(rootValue(e, root), idx)
			if !ok {
				e.err = errNilGuardValue
				return gval{}
			}
			return gval{k: gInt, i: int64(v.Len())}
		}, &gtype{kind: gInt}
	case *ast.BinaryNode:
		return c.binary(n)
	}
	return c.fail()
}

func (c *fastCompiler) binary(n *ast.BinaryNode) (gfn, *gtype) {
	l, lt := c.compile(n.Left)
	r, rt := c.compile(n.Right)
	if lt == nil || rt == nil {
		return c.fail()
	}
	op := n.Operator
	switch op {
	case "&&", "and":
		if lt.kind != gBool || rt.kind != gBool {
			return c.fail()
		}
		return func(e *genv) gval {
			if v := l(e); !v.b || e.err != nil {
				return gval{k: gBool}
			}
			return r(e)
		}, &gtype{kind: gBool}
	case "||", "or":
		if lt.kind != gBool || rt.kind != gBool {
			return c.fail()
		}
		return func(e *genv) gval {
			if v := l(e); v.b || e.err != nil {
				return v
			}
			return r(e)
		}, &gtype{kind: gBool}
	case "startsWith", "endsWith", "contains":
		if lt.kind != gString || rt.kind != gString {
			return c.fail()
		}
		var fn func(a, b string) bool
		switch op {
		case "startsWith":
			fn = strings.HasPrefix
		case "endsWith":
			fn = strings.HasSuffix
		default:
			fn = strings.Contains
		}
		return func(e *genv) gval { return gval{k: gBool, b: fn(l(e).s, r(e).s)} }, &gtype{kind: gBool}
	case "==", "!=", "<", "<=", ">", ">=":
		if lt.kind == gString && rt.kind == gString {
			return func(e *genv) gval {
				a, b := l(e).s, r(e).s
				return gval{k: gBool, b: cmpResult(op, strings.Compare(a, b))}
			}, &gtype{kind: gBool}
		}
		if lt.kind == gBool && rt.kind == gBool && (op == "==" || op == "!=") {
			return func(e *genv) gval {
				eq := l(e).b == r(e).b
				return gval{k: gBool, b: eq == (op == "==")}
			}, &gtype{kind: gBool}
		}
		if isNum(lt.kind) && isNum(rt.kind) {
			return func(e *genv) gval {
				return gval{k: gBool, b: cmpResult(op, numCmp(l(e), r(e)))}
			}, &gtype{kind: gBool}
		}
		return c.fail()
	case "+", "-", "*", "%":
		if !isNum(lt.kind) || !isNum(rt.kind) {
			return c.fail()
		}
		if op == "%" && (lt.kind == gFloat || rt.kind == gFloat) {
			return c.fail()
		}
		k := gInt
		switch {
		case lt.kind == gFloat || rt.kind == gFloat:
			k = gFloat
		case lt.kind == gUint && rt.kind == gUint:
			k = gUint
		}
		return func(e *genv) gval { return arith(op, k, l(e), r(e), e) }, &gtype{kind: k}
	case "/":
		if !isNum(lt.kind) || !isNum(rt.kind) {
			return c.fail()
		}
		// expr's "/" always yields a float.
		return func(e *genv) gval { return gval{k: gFloat, f: toFloat(l(e)) / toFloat(r(e))} }, &gtype{kind: gFloat}
	}
	return c.fail()
}

func isNum(k gkind) bool { return k == gInt || k == gUint || k == gFloat }

func toFloat(v gval) float64 {
	switch v.k {
	case gInt:
		return float64(v.i)
	case gUint:
		return float64(v.u)
	}
	return v.f
}

func toInt(v gval) int64 {
	switch v.k {
	case gUint:
		return int64(v.u)
	case gFloat:
		return int64(v.f)
	}
	return v.i
}

// numCmp compares numbers of any kind exactly (signed against unsigned
// included).
func numCmp(a, b gval) int {
	if a.k == gFloat || b.k == gFloat {
		x, y := toFloat(a), toFloat(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	if a.k == gUint && b.k == gUint {
		return cmpU(a.u, b.u)
	}
	if a.k == gInt && b.k == gInt {
		return cmpI(a.i, b.i)
	}
	if a.k == gInt { // int vs uint
		if a.i < 0 {
			return -1
		}
		return cmpU(uint64(a.i), b.u)
	}
	if b.i < 0 { // uint vs int
		return 1
	}
	return cmpU(a.u, uint64(b.i))
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpI(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpResult(op string, c int) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

var errDivZero = errors.New("integer divide by zero")

func arith(op string, k gkind, a, b gval, e *genv) gval {
	switch k {
	case gFloat:
		x, y := toFloat(a), toFloat(b)
		switch op {
		case "+":
			return gval{k: k, f: x + y}
		case "-":
			return gval{k: k, f: x - y}
		}
		return gval{k: k, f: x * y}
	case gUint:
		x, y := a.u, b.u
		switch op {
		case "+":
			return gval{k: k, u: x + y}
		case "-":
			return gval{k: k, u: x - y}
		case "%":
			if y == 0 {
				e.err = errDivZero
				return gval{k: k}
			}
			return gval{k: k, u: x % y}
		}
		return gval{k: k, u: x * y}
	}
	x, y := toInt(a), toInt(b)
	switch op {
	case "+":
		return gval{k: k, i: x + y}
	case "-":
		return gval{k: k, i: x - y}
	case "%":
		if y == 0 || (y == -1 && x == math.MinInt64) {
			e.err = errDivZero
			return gval{k: k}
		}
		return gval{k: k, i: x % y}
	}
	return gval{k: k, i: x * y}
}

// ---- settings ----

// SettingType is the type of a setting.
type SettingType uint8

const (
	SettingInt SettingType = iota + 1
	SettingDuration
	SettingString
	SettingBool
)

var settingTypeNames = [...]string{"", "int", "duration", "string", "bool"}

func (t SettingType) String() string {
	if int(t) < len(settingTypeNames) && t != 0 {
		return settingTypeNames[t]
	}
	return fmt.Sprintf("SettingType(%d)", uint8(t))
}

func (t SettingType) goType() reflect.Type {
	switch t {
	case SettingInt:
		return reflect.TypeFor[int64]()
	case SettingDuration:
		return reflect.TypeFor[time.Duration]()
	case SettingString:
		return reflect.TypeFor[string]()
	}
	return reflect.TypeFor[bool]()
}

// parse converts a command-line or config string to the setting's value.
func (t SettingType) parse(s string) (any, error) {
	switch t {
	case SettingInt:
		var v int64
		if _, err := fmt.Sscan(s, &v); err != nil || fmt.Sprint(v) != strings.TrimPrefix(s, "+") {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return v, nil
	case SettingDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration", s)
		}
		return d, nil
	case SettingBool:
		switch s {
		case "true", "1", "yes", "on":
			return true, nil
		case "false", "0", "no", "off":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean", s)
	}
	return s, nil
}
