package interp

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/expr-lang/expr/ast"
)

// The allocation-free guard evaluator. A guard that uses only field
// accesses on msg, peer and settings, state, event, literals, comparisons,
// arithmetic, logic, len() and startsWith/endsWith/contains is compiled
// into typed closures. Fields are read through reflect by index paths
// resolved when the machine loads; before reading, the dynamic type of msg
// or peer is compared with the type the guard was checked against, so a
// mismatch is an error. Anything else runs on expr's VM.

type gkind uint8

const (
	gBool gkind = iota + 1
	gInt
	gUint
	gFloat
	gString
	gValue // a slice or map field read as it is (value expressions only)
)

type typed struct {
	k  gkind
	b  func(*genv) bool
	i  func(*genv) int64
	u  func(*genv) uint64
	f  func(*genv) float64
	s  func(*genv) string
	v  func(*genv) reflect.Value // gValue
	vt reflect.Type              // gValue: the field's type
	// konst marks a literal; its value is in the field of its kind, so
	// that comparisons with it need no closure call.
	konst bool
	ident uint8 // identState, identEvent: the bare identifier
	cb    bool
	ci    int64
	cu    uint64
	cf    float64
	cs    string
}

// Why a fast guard failed (genv.bad): a small code, so that clearing it
// before each guard is a plain byte store.
const (
	badNil uint8 = iota + 1
	badType
	badDivZero
)

// guardErr maps genv.bad to the error.
var guardErr = [...]error{badNil: errNilGuardValue, badType: errGuardType, badDivZero: errDivZero}

var (
	errNilGuardValue = errors.New("guard reads a field of a nil value")
	errGuardType     = errors.New("guard reads a value of another type than it was checked against")
	errDivZero       = errors.New("integer divide by zero")
)

type fastCompiler struct {
	env reflect.Type
	// intern returns the machine's own copy of a string literal (a state
	// name), so that comparing it with state finds equal strings at once.
	intern func(string) string
	// known: state and event are the literals state and event (a
	// dispatch-table row's), not read from the genv.
	known        bool
	state, event string
	reads        uint8 // identState|identEvent: the identifiers read
}

const (
	identState uint8 = 1 << iota
	identEvent
)

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

// field is a field of msg, peer or settings that a guard reads: the root
// (envMsg, envPeer, envSettings), the type the root was checked against (a
// pointer to a struct), and the field's index path inside that struct. It
// is read through reflect, which checks every access: the root's dynamic
// type is compared with the checked one first, so that a mismatch is an
// error and never a wrong read.
type field struct {
	root  int
	want  reflect.Type
	index []int
	t     reflect.Type // the field's type
	slot  uint32       // its entry in genv.fields (modulo their number)
}

// path resolves root.f1.f2... to a field. Only inline struct hops are
// accepted (no pointer hops, no methods).
func (c *fastCompiler) path(n ast.Node) (*field, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		i, found := fieldIndex(c.env, n.Value)
		if !found || (i != envMsg && i != envPeer && i != envSettings && i != envVars) {
			return nil, false
		}
		ft := c.env.Field(i).Type
		if ft.Kind() != reflect.Pointer || ft.Elem().Kind() != reflect.Struct {
			return nil, false
		}
		return &field{root: i, want: ft, t: ft}, true
	case *ast.MemberNode:
		prop, isStr := n.Property.(*ast.StringNode)
		if n.Optional || n.Method || !isStr {
			return nil, false
		}
		f, ok := c.path(n.Node)
		if !ok {
			return nil, false
		}
		t := f.t
		if _, isRoot := n.Node.(*ast.IdentifierNode); isRoot {
			if _, has := t.MethodByName(prop.Value); has {
				return nil, false
			}
			t = t.Elem()
		} else if t.Kind() != reflect.Struct {
			return nil, false
		} else if _, has := reflect.PointerTo(t).MethodByName(prop.Value); has {
			return nil, false
		}
		fi, found := fieldIndex(t, prop.Value)
		if !found {
			return nil, false
		}
		return &field{root: f.root, want: f.want, index: append(f.index[:len(f.index):len(f.index)], fi), t: t.Field(fi).Type,
			slot: fieldSlots.Add(1)}, true
	}
	return nil, false
}

// value returns the field's value in e; a nil or mistyped root sets e.bad
// and gives the zero Value.
func (f *field) value(e *genv) reflect.Value {
	if f.root == envMsg || f.root == envVars {
		return f.read(e)
	}
	c := &e.fields[f.slot%uint32(len(e.fields))]
	if c.f == f && e.bound&boundPeer != 0 {
		return c.v
	}
	v := f.read(e)
	if e.bad == 0 {
		c.f, c.v = f, v
	}
	return v
}

// fieldSlots numbers the fields guards read (field.slot).
var fieldSlots atomic.Uint32

// read resolves the field in e.
func (f *field) read(e *genv) reflect.Value {
	v, t := e.root(f.root)
	if t != f.want {
		e.bad = badType
		return reflect.Value{}
	}
	if !v.IsValid() {
		e.bad = badNil
		return reflect.Value{}
	}
	if len(f.index) == 1 {
		return v.Field(f.index[0])
	}
	return v.FieldByIndex(f.index)
}

// direct compiles the read of a slice or map field of msg, peer or vars
// (a chunk, a hash) as it is: a value expression assigns it to a message
// field without copying (the slice is lent until the send encodes it).
func (c *fastCompiler) direct(n ast.Node) *typed {
	if _, isMember := n.(*ast.MemberNode); !isMember {
		return nil
	}
	f, ok := c.path(n)
	if !ok || f.root == envSettings {
		return nil
	}
	switch f.t.Kind() {
	case reflect.Slice, reflect.Map:
		return &typed{k: gValue, vt: f.t, v: func(e *genv) reflect.Value { return f.value(e) }}
	}
	return nil
}

// leaf compiles the read of a field of a scalar kind.
func (c *fastCompiler) leaf(f *field) *typed {
	switch f.t.Kind() {
	case reflect.Bool:
		return &typed{k: gBool, b: func(e *genv) bool {
			if v := f.value(e); v.IsValid() {
				return v.Bool()
			}
			return false
		}}
	case reflect.String:
		return &typed{k: gString, s: func(e *genv) string {
			if v := f.value(e); v.IsValid() {
				return v.String()
			}
			return ""
		}}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &typed{k: gInt, i: func(e *genv) int64 {
			if v := f.value(e); v.IsValid() {
				return v.Int()
			}
			return 0
		}}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return &typed{k: gUint, u: func(e *genv) uint64 {
			if v := f.value(e); v.IsValid() {
				return v.Uint()
			}
			return 0
		}}
	case reflect.Float32, reflect.Float64:
		return &typed{k: gFloat, f: func(e *genv) float64 {
			if v := f.value(e); v.IsValid() {
				return v.Float()
			}
			return 0
		}}
	}
	return nil
}

func (c *fastCompiler) length(n ast.Node) *typed {
	switch a := n.(type) {
	case *ast.StringNode:
		return constInt(int64(len(a.Value)))
	case *ast.IdentifierNode:
		if a.Value == "state" || a.Value == "event" {
			s := c.compile(a)
			if s.konst { // known: a dispatch-table row's
				return constInt(int64(len(s.cs)))
			}
			if a.Value == "state" {
				return &typed{k: gInt, i: func(e *genv) int64 { return int64(len(e.st.Name)) }}
			}
			return &typed{k: gInt, i: func(e *genv) int64 { return int64(len(e.ev.Name)) }}
		}
	}
	f, ok := c.path(n)
	if !ok {
		return nil
	}
	switch f.t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return &typed{k: gInt, i: func(e *genv) int64 {
			if v := f.value(e); v.IsValid() {
				return int64(v.Len())
			}
			return 0
		}}
	}
	return nil
}

func (c *fastCompiler) compile(n ast.Node) *typed {
	switch n := n.(type) {
	case *ast.BoolNode:
		return constBool(n.Value)
	case *ast.IntegerNode:
		return constInt(int64(n.Value))
	case *ast.FloatNode:
		return constFloat(n.Value)
	case *ast.StringNode:
		v := n.Value
		if c.intern != nil {
			v = c.intern(v)
		}
		return constString(v)
	case *ast.IdentifierNode:
		switch n.Value {
		case "state":
			c.reads |= identState
			if c.known {
				return constString(c.state)
			}
			return &typed{k: gString, s: func(e *genv) string { return e.st.Name }, ident: identState}
		case "event":
			c.reads |= identEvent
			if c.known {
				return constString(c.event)
			}
			return &typed{k: gString, s: func(e *genv) string { return e.ev.Name }, ident: identEvent}
		case "sessions":
			return &typed{k: gInt, i: func(e *genv) int64 { return e.sessions() }}
		}
		return nil
	case *ast.MemberNode:
		f, ok := c.path(n)
		if !ok {
			return nil
		}
		return c.leaf(f)
	case *ast.UnaryNode:
		x := c.compile(n.Node)
		if x == nil {
			return nil
		}
		switch {
		case x.konst && n.Operator == "-" && x.k == gInt:
			return constInt(-x.ci)
		case x.konst && n.Operator == "-" && x.k == gFloat:
			return constFloat(-x.cf)
		case x.konst && (n.Operator == "!" || n.Operator == "not") && x.k == gBool:
			return constBool(!x.cb)
		case (n.Operator == "!" || n.Operator == "not") && x.k == gBool:
			f := x.b
			return &typed{k: gBool, b: func(e *genv) bool { return !f(e) }}
		case n.Operator == "-" && x.k == gInt:
			f := x.i
			return &typed{k: gInt, i: func(e *genv) int64 { return -f(e) }}
		case n.Operator == "-" && x.k == gFloat:
			f := x.f
			return &typed{k: gFloat, f: func(e *genv) float64 { return -f(e) }}
		case n.Operator == "+" && (x.k == gInt || x.k == gUint || x.k == gFloat):
			return x
		}
		return nil
	case *ast.BuiltinNode:
		if n.Name == "len" && len(n.Arguments) == 1 {
			return c.length(n.Arguments[0])
		}
		return nil
	case *ast.BinaryNode:
		return c.binary(n)
	}
	return nil
}

func isNum(k gkind) bool { return k == gInt || k == gUint || k == gFloat }

func constBool(v bool) *typed {
	return &typed{k: gBool, b: func(*genv) bool { return v }, konst: true, cb: v}
}

func constString(v string) *typed {
	return &typed{k: gString, s: func(*genv) string { return v }, konst: true, cs: v}
}

func constUint(v uint64) *typed {
	return &typed{k: gUint, u: func(*genv) uint64 { return v }, konst: true, cu: v}
}

// fold turns an operation on literals into a literal: it is evaluated
// once, here. One that fails (a division by zero) is left to fail at run
// time.
func fold(t *typed) *typed {
	if t == nil || t.konst {
		return t
	}
	var e genv
	var k *typed
	switch t.k {
	case gBool:
		k = constBool(t.b(&e))
	case gInt:
		k = constInt(t.i(&e))
	case gUint:
		k = constUint(t.u(&e))
	case gFloat:
		k = constFloat(t.f(&e))
	case gString:
		k = constString(t.s(&e))
	}
	if e.bad != 0 {
		return t
	}
	return k
}

func constInt(v int64) *typed {
	return &typed{k: gInt, i: func(*genv) int64 { return v }, konst: true, ci: v}
}

func constFloat(v float64) *typed {
	return &typed{k: gFloat, f: func(*genv) float64 { return v }, konst: true, cf: v}
}

// floatConst is a numeric literal as a float64.
func floatConst(t *typed) float64 {
	switch t.k {
	case gInt:
		return float64(t.ci)
	case gUint:
		return float64(t.cu)
	}
	return t.cf
}

func asFloat(t *typed) func(*genv) float64 {
	if t.konst {
		v := floatConst(t)
		return func(*genv) float64 { return v }
	}
	switch t.k {
	case gInt:
		f := t.i
		return func(e *genv) float64 { return float64(f(e)) }
	case gUint:
		f := t.u
		return func(e *genv) float64 { return float64(f(e)) }
	}
	return t.f
}

func asInt(t *typed) func(*genv) int64 {
	if t.k == gUint {
		f := t.u
		return func(e *genv) int64 { return int64(f(e)) }
	}
	return t.i
}

// flip is the operator that gives the same result with the operands swapped.
func flip(op string) string {
	switch op {
	case "<":
		return ">"
	case "<=":
		return ">="
	case ">":
		return "<"
	case ">=":
		return "<="
	}
	return op
}

// cmpConst compares a value with a literal without calling a closure for it.
func cmpConst[T int64 | uint64 | float64](op string, l func(*genv) T, v T) func(*genv) bool {
	switch op {
	case "==":
		return func(e *genv) bool { return l(e) == v }
	case "!=":
		return func(e *genv) bool { return l(e) != v }
	case "<":
		return func(e *genv) bool { return l(e) < v }
	case "<=":
		return func(e *genv) bool { return l(e) <= v }
	case ">":
		return func(e *genv) bool { return l(e) > v }
	}
	return func(e *genv) bool { return l(e) >= v }
}

// cmpConstString compares a string with a literal.
func cmpConstString(op string, l func(*genv) string, v string) func(*genv) bool {
	switch op {
	case "==":
		return func(e *genv) bool { return l(e) == v }
	case "!=":
		return func(e *genv) bool { return l(e) != v }
	case "<":
		return func(e *genv) bool { return l(e) < v }
	case "<=":
		return func(e *genv) bool { return l(e) <= v }
	case ">":
		return func(e *genv) bool { return l(e) > v }
	}
	return func(e *genv) bool { return l(e) >= v }
}

// cmpWithConst handles a comparison one of whose operands (r) is a numeric
// or string literal and the other (l) is not; op is as seen from l.
func (c *fastCompiler) cmpWithConst(op string, l, r *typed) *typed {
	switch {
	case l.k == gString && r.k == gString:
		v := r.cs
		switch {
		case l.ident == identState && op == "==":
			return &typed{k: gBool, b: func(e *genv) bool { return e.st.Name == v }}
		case l.ident == identState && op == "!=":
			return &typed{k: gBool, b: func(e *genv) bool { return e.st.Name != v }}
		case l.ident == identEvent && op == "==":
			return &typed{k: gBool, b: func(e *genv) bool { return e.ev.Name == v }}
		case l.ident == identEvent && op == "!=":
			return &typed{k: gBool, b: func(e *genv) bool { return e.ev.Name != v }}
		}
		return &typed{k: gBool, b: cmpConstString(op, l.s, v)}
	case !isNum(l.k) || !isNum(r.k):
		return nil
	case l.k == gFloat || r.k == gFloat:
		return &typed{k: gBool, b: cmpConst(op, asFloat(l), floatConst(r))}
	case l.k == gInt && r.k == gInt:
		return &typed{k: gBool, b: cmpConst(op, l.i, r.ci)}
	case l.k == gUint && r.k == gUint:
		return &typed{k: gBool, b: cmpConst(op, l.u, r.cu)}
	case l.k == gUint && r.k == gInt && r.ci >= 0:
		return &typed{k: gBool, b: cmpConst(op, l.u, uint64(r.ci))}
	}
	return nil // signed against unsigned with a negative literal: the general path
}

func cmpOrdered[T int64 | uint64 | float64 | string](op string, l, r func(*genv) T) func(*genv) bool {
	switch op {
	case "==":
		return func(e *genv) bool { return l(e) == r(e) }
	case "!=":
		return func(e *genv) bool { return l(e) != r(e) }
	case "<":
		return func(e *genv) bool { return l(e) < r(e) }
	case "<=":
		return func(e *genv) bool { return l(e) <= r(e) }
	case ">":
		return func(e *genv) bool { return l(e) > r(e) }
	}
	return func(e *genv) bool { return l(e) >= r(e) }
}

// cmpMixed compares a signed with an unsigned number exactly.
func cmpMixed(op string, l func(*genv) int64, r func(*genv) uint64, swap bool) func(*genv) bool {
	return func(e *genv) bool {
		a, b := l(e), r(e)
		c := -1
		if a >= 0 {
			switch {
			case uint64(a) > b:
				c = 1
			case uint64(a) == b:
				c = 0
			}
		}
		if swap {
			c = -c
		}
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
}

func (c *fastCompiler) binary(n *ast.BinaryNode) *typed {
	l, r := c.compile(n.Left), c.compile(n.Right)
	if l == nil || r == nil {
		return nil
	}
	// Logic with a literal operand folds, keeping the evaluation of a
	// non-literal left operand (it may fail: a nil read is an error).
	if l.k == gBool && r.k == gBool {
		switch n.Operator {
		case "&&", "and":
			switch {
			case l.konst && l.cb:
				return r
			case l.konst:
				return constBool(false)
			case r.konst && r.cb:
				return l
			}
		case "||", "or":
			switch {
			case l.konst && l.cb:
				return constBool(true)
			case l.konst:
				return r
			case r.konst && !r.cb:
				return l
			}
		}
	}
	t := c.binaryOp(n.Operator, l, r)
	if l.konst && r.konst {
		return fold(t)
	}
	return t
}

func (c *fastCompiler) binaryOp(op string, l, r *typed) *typed {
	switch op {
	case "&&", "and":
		if l.k != gBool || r.k != gBool {
			return nil
		}
		lf, rf := l.b, r.b
		return &typed{k: gBool, b: func(e *genv) bool { return lf(e) && e.bad == 0 && rf(e) }}
	case "||", "or":
		if l.k != gBool || r.k != gBool {
			return nil
		}
		lf, rf := l.b, r.b
		return &typed{k: gBool, b: func(e *genv) bool { return lf(e) || e.bad == 0 && rf(e) }}
	case "startsWith", "endsWith", "contains":
		if l.k != gString || r.k != gString {
			return nil
		}
		fn := strings.Contains
		if op == "startsWith" {
			fn = strings.HasPrefix
		} else if op == "endsWith" {
			fn = strings.HasSuffix
		}
		lf, rf := l.s, r.s
		return &typed{k: gBool, b: func(e *genv) bool { return fn(lf(e), rf(e)) }}
	case "==", "!=", "<", "<=", ">", ">=":
		if r.konst && !l.konst && r.k != gBool {
			if t := c.cmpWithConst(op, l, r); t != nil {
				return t
			}
		} else if l.konst && !r.konst && l.k != gBool {
			if t := c.cmpWithConst(flip(op), r, l); t != nil {
				return t
			}
		}
		switch {
		case l.k == gString && r.k == gString:
			return &typed{k: gBool, b: cmpOrdered(op, l.s, r.s)}
		case l.k == gBool && r.k == gBool && (op == "==" || op == "!="):
			lf, rf, want := l.b, r.b, op == "=="
			return &typed{k: gBool, b: func(e *genv) bool { return (lf(e) == rf(e)) == want }}
		case !isNum(l.k) || !isNum(r.k):
			return nil
		case l.k == gFloat || r.k == gFloat:
			return &typed{k: gBool, b: cmpOrdered(op, asFloat(l), asFloat(r))}
		case l.k == gUint && r.k == gUint:
			return &typed{k: gBool, b: cmpOrdered(op, l.u, r.u)}
		case l.k == gInt && r.k == gInt:
			return &typed{k: gBool, b: cmpOrdered(op, l.i, r.i)}
		case l.k == gInt:
			return &typed{k: gBool, b: cmpMixed(op, l.i, r.u, false)}
		default:
			return &typed{k: gBool, b: cmpMixed(op, r.i, l.u, true)}
		}
	case "+", "-", "*", "%":
		if !isNum(l.k) || !isNum(r.k) {
			return nil
		}
		switch {
		case l.k == gFloat || r.k == gFloat:
			if op == "%" {
				return nil
			}
			lf, rf := asFloat(l), asFloat(r)
			switch op {
			case "+":
				return &typed{k: gFloat, f: func(e *genv) float64 { return lf(e) + rf(e) }}
			case "-":
				return &typed{k: gFloat, f: func(e *genv) float64 { return lf(e) - rf(e) }}
			}
			return &typed{k: gFloat, f: func(e *genv) float64 { return lf(e) * rf(e) }}
		case l.k == gUint && r.k == gUint:
			lf, rf := l.u, r.u
			switch op {
			case "+":
				return &typed{k: gUint, u: func(e *genv) uint64 { return lf(e) + rf(e) }}
			case "-":
				return &typed{k: gUint, u: func(e *genv) uint64 { return lf(e) - rf(e) }}
			case "%":
				return &typed{k: gUint, u: func(e *genv) uint64 {
					a, b := lf(e), rf(e)
					if b == 0 {
						e.bad = badDivZero
						return 0
					}
					return a % b
				}}
			}
			return &typed{k: gUint, u: func(e *genv) uint64 { return lf(e) * rf(e) }}
		}
		lf, rf := asInt(l), asInt(r)
		switch op {
		case "+":
			return &typed{k: gInt, i: func(e *genv) int64 { return lf(e) + rf(e) }}
		case "-":
			return &typed{k: gInt, i: func(e *genv) int64 { return lf(e) - rf(e) }}
		case "%":
			return &typed{k: gInt, i: func(e *genv) int64 {
				a, b := lf(e), rf(e)
				if b == 0 || b == -1 && a == math.MinInt64 {
					e.bad = badDivZero
					return 0
				}
				return a % b
			}}
		}
		return &typed{k: gInt, i: func(e *genv) int64 { return lf(e) * rf(e) }}
	case "/": // expr's "/" always yields a float
		if !isNum(l.k) || !isNum(r.k) {
			return nil
		}
		lf, rf := asFloat(l), asFloat(r)
		return &typed{k: gFloat, f: func(e *genv) float64 { return lf(e) / rf(e) }}
	}
	return nil
}
