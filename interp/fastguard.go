package interp

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"unsafe"

	"github.com/expr-lang/expr/ast"
)

// The allocation-free guard evaluator. A guard that uses only field
// accesses on msg, peer and settings, state, event, literals, comparisons,
// arithmetic, logic, len() and startsWith/endsWith/contains is compiled
// into typed closures. Fields are read at offsets computed when the
// machine loads; before reading, the dynamic type of msg or peer is
// compared with the type the guard was checked against, so a mismatch is
// an error and never a wild read. Anything else runs on expr's VM.

type gkind uint8

const (
	gBool gkind = iota + 1
	gInt
	gUint
	gFloat
	gString
)

type typed struct {
	k gkind
	b func(*genv) bool
	i func(*genv) int64
	u func(*genv) uint64
	f func(*genv) float64
	s func(*genv) string
	// konst marks a literal; its value is in the field of its kind, so
	// that comparisons with it need no closure call.
	konst bool
	// fld describes a numeric field read (root, offset, Go kind), so that a
	// comparison can read it in its own closure.
	fld   *fieldRef
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
	zeroBuf          [64]byte // what a failed read reads
)

type fastCompiler struct {
	env reflect.Type
	// intern returns the machine's own copy of a string literal (a state
	// name), so that comparing it with state finds equal pointers.
	intern func(string) string
	// known: state and event are the literals state and event (a
	// dispatch-table row's), not read from the genv.
	known        bool
	state, event string
	reads        uint8 // identState|identEvent: the identifiers read
}

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

// path resolves root.f1.f2... to the root (envMsg, envPeer, envSettings),
// the byte offset of the leaf inside the root's struct, and its type. Only
// inline struct hops are accepted (no pointer hops, no methods).
func (c *fastCompiler) path(n ast.Node) (root int, off uintptr, t reflect.Type, ok bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		i, found := fieldIndex(c.env, n.Value)
		if !found || (i != envMsg && i != envPeer && i != envSettings) {
			return 0, 0, nil, false
		}
		ft := c.env.Field(i).Type
		if ft.Kind() != reflect.Pointer || ft.Elem().Kind() != reflect.Struct {
			return 0, 0, nil, false
		}
		return i, 0, ft, true
	case *ast.MemberNode:
		prop, isStr := n.Property.(*ast.StringNode)
		if n.Optional || n.Method || !isStr {
			return 0, 0, nil, false
		}
		root, off, t, ok := c.path(n.Node)
		if !ok {
			return 0, 0, nil, false
		}
		if _, isRoot := n.Node.(*ast.IdentifierNode); isRoot {
			if _, has := t.MethodByName(prop.Value); has {
				return 0, 0, nil, false
			}
			t = t.Elem()
		} else if t.Kind() != reflect.Struct {
			return 0, 0, nil, false
		} else if _, has := reflect.PointerTo(t).MethodByName(prop.Value); has {
			return 0, 0, nil, false
		}
		fi, found := fieldIndex(t, prop.Value)
		if !found {
			return 0, 0, nil, false
		}
		f := t.Field(fi)
		return root, off + f.Offset, f.Type, true
	}
	return 0, 0, nil, false
}

// eface is the layout of an interface{} value.
type eface struct {
	typ, data unsafe.Pointer
}

// typeWord is the type word an interface holding a value of type t carries.
func typeWord(t reflect.Type) unsafe.Pointer {
	v := reflect.Zero(t).Interface()
	return (*eface)(unsafe.Pointer(&v)).typ
}

// fail records why a field of a root of type want could not be read.
func (e *genv) fail(v *eface, want unsafe.Pointer) {
	if v.typ == want {
		e.bad = badNil
	} else {
		e.bad = badType
	}
}

// rootIface returns which genv interface holds the root (msg or peer).
func rootIface(e *genv, root int) *eface {
	if root == envMsg {
		return (*eface)(unsafe.Pointer(&e.msg))
	}
	return (*eface)(unsafe.Pointer(&e.peer))
}

// base returns a function giving the address of the leaf; a read through a
// nil or mistyped root gives zeroBuf and sets e.bad.
func (c *fastCompiler) base(root int, off uintptr) func(*genv) unsafe.Pointer {
	if root == envSettings {
		return func(e *genv) unsafe.Pointer { return unsafe.Add(e.setPtr, off) }
	}
	want := typeWord(c.env.Field(root).Type)
	return func(e *genv) unsafe.Pointer {
		v := rootIface(e, root)
		if v.typ != want || v.data == nil {
			e.fail(v, want)
			return unsafe.Pointer(&zeroBuf)
		}
		return unsafe.Add(v.data, off)
	}
}

type number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr | ~float32 | ~float64
}

// readNum reads a numeric field of type T as R in one closure: the root's
// type check, the load and the conversion.
func readNum[T number, R int64 | uint64 | float64](c *fastCompiler, root int, off uintptr) func(*genv) R {
	switch root {
	case envSettings:
		return func(e *genv) R { return R(*(*T)(unsafe.Add(e.setPtr, off))) }
	case envMsg:
		want := typeWord(c.env.Field(root).Type)
		return func(e *genv) R {
			v := (*eface)(unsafe.Pointer(&e.msg))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return 0
			}
			return R(*(*T)(unsafe.Add(v.data, off)))
		}
	}
	want := typeWord(c.env.Field(root).Type)
	return func(e *genv) R {
		v := (*eface)(unsafe.Pointer(&e.peer))
		if v.typ != want || v.data == nil {
			e.fail(v, want)
			return 0
		}
		return R(*(*T)(unsafe.Add(v.data, off)))
	}
}

const (
	identState uint8 = 1 << iota
	identEvent
)

type fieldRef struct {
	root int
	off  uintptr
	kind reflect.Kind
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

func toCmpOp(op string) cmpOp {
	switch op {
	case "==":
		return opEq
	case "!=":
		return opNe
	case "<":
		return opLt
	case "<=":
		return opLe
	case ">":
		return opGt
	}
	return opGe
}

// cmpFieldConst compares a numeric field (type T, read as R) with a literal
// in one closure (the root's type check, the load, the comparison), one
// closure per operator: a switch on the operator inside the closure cost
// more than the closure call it saved.
func cmpFieldConst[T number, R int64 | uint64 | float64](c *fastCompiler, f *fieldRef, op cmpOp, k R) func(*genv) bool {
	off := f.off
	var want unsafe.Pointer
	if f.root != envSettings {
		want = typeWord(c.env.Field(f.root).Type)
	}
	switch f.root {
	case envSettings:
		switch op {
		case opEq:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) == k }
		case opNe:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) != k }
		case opLt:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) < k }
		case opLe:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) <= k }
		case opGt:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) > k }
		case opGe:
			return func(e *genv) bool { return R(*(*T)(unsafe.Add(e.setPtr, off))) >= k }
		}
	case envMsg:
		switch op {
		case opEq:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) == k
			}
		case opNe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) != k
			}
		case opLt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) < k
			}
		case opLe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) <= k
			}
		case opGt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) > k
			}
		case opGe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) >= k
			}
		}
	case envPeer:
		switch op {
		case opEq:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) == k
			}
		case opNe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) != k
			}
		case opLt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) < k
			}
		case opLe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) <= k
			}
		case opGt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) > k
			}
		case opGe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.peer))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return R(*(*T)(unsafe.Add(v.data, off))) >= k
			}
		}
	}
	return nil
}

// fusedConst returns the one-closure comparison of field f with literal k
// for the common field kinds, or nil.
func fusedConst[R int64 | uint64 | float64](c *fastCompiler, f *fieldRef, op cmpOp, k R) func(*genv) bool {
	switch f.kind {
	case reflect.Int:
		return cmpFieldConst[int](c, f, op, k)
	case reflect.Int32:
		return cmpFieldConst[int32](c, f, op, k)
	case reflect.Int64:
		return cmpFieldConst[int64](c, f, op, k)
	case reflect.Uint:
		return cmpFieldConst[uint](c, f, op, k)
	case reflect.Uint8:
		return cmpFieldConst[uint8](c, f, op, k)
	case reflect.Uint32:
		return cmpFieldConst[uint32](c, f, op, k)
	case reflect.Uint64:
		return cmpFieldConst[uint64](c, f, op, k)
	case reflect.Float64:
		return cmpFieldConst[float64](c, f, op, k)
	}
	return nil
}

// cmpFieldSetting compares a signed field (type T) of msg or peer with an
// int64 setting (int or duration) in one closure, one closure per operator.
func cmpFieldSetting[T ~int | ~int8 | ~int16 | ~int32 | ~int64](c *fastCompiler, f *fieldRef, op cmpOp, soff uintptr) func(*genv) bool {
	off := f.off
	want := typeWord(c.env.Field(f.root).Type)
	if f.root == envMsg {
		switch op {
		case opEq:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) == *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		case opNe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) != *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		case opLt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) < *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		case opLe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) <= *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		case opGt:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) > *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		case opGe:
			return func(e *genv) bool {
				v := (*eface)(unsafe.Pointer(&e.msg))
				if v.typ != want || v.data == nil {
					e.fail(v, want)
					return false
				}
				return int64(*(*T)(unsafe.Add(v.data, off))) >= *(*int64)(unsafe.Add(e.setPtr, soff))
			}
		}
	}
	switch op {
	case opEq:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) == *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	case opNe:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) != *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	case opLt:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) < *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	case opLe:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) <= *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	case opGt:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) > *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	case opGe:
		return func(e *genv) bool {
			v := (*eface)(unsafe.Pointer(&e.peer))
			if v.typ != want || v.data == nil {
				e.fail(v, want)
				return false
			}
			return int64(*(*T)(unsafe.Add(v.data, off))) >= *(*int64)(unsafe.Add(e.setPtr, soff))
		}
	}
	return nil
}

// fusedSetting returns the one-closure comparison of a msg or peer int
// field l with an int64 setting r, or nil.
func (c *fastCompiler) fusedSetting(op string, l, r *typed) func(*genv) bool {
	if l.fld == nil || r.fld == nil || l.fld.root == envSettings || r.fld.root != envSettings || r.fld.kind != reflect.Int64 {
		return nil
	}
	o, soff := toCmpOp(op), r.fld.off
	switch l.fld.kind {
	case reflect.Int:
		return cmpFieldSetting[int](c, l.fld, o, soff)
	case reflect.Int32:
		return cmpFieldSetting[int32](c, l.fld, o, soff)
	case reflect.Int64:
		return cmpFieldSetting[int64](c, l.fld, o, soff)
	}
	return nil
}

func (c *fastCompiler) leaf(root int, off uintptr, t reflect.Type) *typed {
	l := c.leafRead(root, off, t)
	if l != nil && isNum(l.k) {
		l.fld = &fieldRef{root: root, off: off, kind: t.Kind()}
	}
	return l
}

func (c *fastCompiler) leafRead(root int, off uintptr, t reflect.Type) *typed {
	switch t.Kind() {
	case reflect.Bool:
		at := c.base(root, off)
		return &typed{k: gBool, b: func(e *genv) bool { return *(*bool)(at(e)) }}
	case reflect.String:
		at := c.base(root, off)
		return &typed{k: gString, s: func(e *genv) string { return *(*string)(at(e)) }}
	case reflect.Int:
		return &typed{k: gInt, i: readNum[int, int64](c, root, off)}
	case reflect.Int8:
		return &typed{k: gInt, i: readNum[int8, int64](c, root, off)}
	case reflect.Int16:
		return &typed{k: gInt, i: readNum[int16, int64](c, root, off)}
	case reflect.Int32:
		return &typed{k: gInt, i: readNum[int32, int64](c, root, off)}
	case reflect.Int64:
		return &typed{k: gInt, i: readNum[int64, int64](c, root, off)}
	case reflect.Uint:
		return &typed{k: gUint, u: readNum[uint, uint64](c, root, off)}
	case reflect.Uint8:
		return &typed{k: gUint, u: readNum[uint8, uint64](c, root, off)}
	case reflect.Uint16:
		return &typed{k: gUint, u: readNum[uint16, uint64](c, root, off)}
	case reflect.Uint32:
		return &typed{k: gUint, u: readNum[uint32, uint64](c, root, off)}
	case reflect.Uint64:
		return &typed{k: gUint, u: readNum[uint64, uint64](c, root, off)}
	case reflect.Uintptr:
		return &typed{k: gUint, u: readNum[uintptr, uint64](c, root, off)}
	case reflect.Float32:
		return &typed{k: gFloat, f: readNum[float32, float64](c, root, off)}
	case reflect.Float64:
		return &typed{k: gFloat, f: readNum[float64, float64](c, root, off)}
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
	root, off, t, ok := c.path(n)
	if !ok {
		return nil
	}
	at := c.base(root, off)
	switch t.Kind() {
	case reflect.String:
		return &typed{k: gInt, i: func(e *genv) int64 { return int64(len(*(*string)(at(e)))) }}
	case reflect.Slice: // every slice header has the same layout
		return &typed{k: gInt, i: func(e *genv) int64 { return int64(len(*(*[]byte)(at(e)))) }}
	case reflect.Map:
		return &typed{k: gInt, i: func(e *genv) int64 {
			p := at(e)
			if e.bad != 0 {
				return 0
			}
			return int64(reflect.NewAt(t, p).Elem().Len())
		}}
	case reflect.Array:
		v := int64(t.Len())
		return &typed{k: gInt, i: func(*genv) int64 { return v }}
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
		}
		return nil
	case *ast.MemberNode:
		root, off, t, ok := c.path(n)
		if !ok {
			return nil
		}
		return c.leaf(root, off, t)
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

// eqString is s == v with the pointer test inline: literals naming a state
// share the state's string, so state == 'name' rarely needs memequal.
func eqString(s, v string) bool {
	return len(s) == len(v) && (unsafe.StringData(s) == unsafe.StringData(v) || s == v)
}

// cmpConstString compares a string with a literal.
func cmpConstString(op string, l func(*genv) string, v string) func(*genv) bool {
	switch op {
	case "==":
		return func(e *genv) bool { return eqString(l(e), v) }
	case "!=":
		return func(e *genv) bool { return !eqString(l(e), v) }
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
			return &typed{k: gBool, b: func(e *genv) bool { return eqString(e.st.Name, v) }}
		case l.ident == identState && op == "!=":
			return &typed{k: gBool, b: func(e *genv) bool { return !eqString(e.st.Name, v) }}
		case l.ident == identEvent && op == "==":
			return &typed{k: gBool, b: func(e *genv) bool { return eqString(e.ev.Name, v) }}
		case l.ident == identEvent && op == "!=":
			return &typed{k: gBool, b: func(e *genv) bool { return !eqString(e.ev.Name, v) }}
		}
		return &typed{k: gBool, b: cmpConstString(op, l.s, v)}
	case !isNum(l.k) || !isNum(r.k):
		return nil
	case l.k == gFloat || r.k == gFloat:
		if l.fld != nil && l.k == gFloat {
			if f := fusedConst(c, l.fld, toCmpOp(op), floatConst(r)); f != nil {
				return &typed{k: gBool, b: f}
			}
		}
		return &typed{k: gBool, b: cmpConst(op, asFloat(l), floatConst(r))}
	case l.k == gInt && r.k == gInt:
		if l.fld != nil {
			if f := fusedConst(c, l.fld, toCmpOp(op), r.ci); f != nil {
				return &typed{k: gBool, b: f}
			}
		}
		return &typed{k: gBool, b: cmpConst(op, l.i, r.ci)}
	case l.k == gUint && r.k == gUint:
		return &typed{k: gBool, b: cmpConst(op, l.u, r.cu)}
	case l.k == gUint && r.k == gInt && r.ci >= 0:
		if l.fld != nil {
			if f := fusedConst(c, l.fld, toCmpOp(op), uint64(r.ci)); f != nil {
				return &typed{k: gBool, b: f}
			}
		}
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
			if f := c.fusedSetting(op, l, r); f != nil {
				return &typed{k: gBool, b: f}
			}
			if f := c.fusedSetting(flip(op), r, l); f != nil {
				return &typed{k: gBool, b: f}
			}
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
