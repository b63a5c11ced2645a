package interp

import (
	"errors"
	"fmt"
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
	fast    func(*genv) bool
	// For a fast guard that reads state or event: the parsed expression
	// and the literal interner, to compile it again with those known (see
	// specialize).
	tree   ast.Node
	intern func(string) string
	reads  uint8 // identState|identEvent bits: which of them the guard reads
}

// Field order of env structs built by envType.
const (
	envMsg = iota
	envPeer
	envSettings
	envState
	envEvent
	envValue
	envVars
	envSessions
)

var anyType = reflect.TypeFor[any]()

func makeEnvType(msgT, peerT, settingsT reflect.Type) reflect.Type {
	return makeEnvTypeVars(msgT, peerT, settingsT, nil)
}

// emptyVarsT is the vars of a machine that declares none.
var emptyVarsT = reflect.TypeFor[*struct{}]()

// makeEnvTypeVars is makeEnvType with the machine's [vars] struct
// (a pointer type; nil: none).
func makeEnvTypeVars(msgT, peerT, settingsT, varsT reflect.Type) reflect.Type {
	if varsT == nil {
		varsT = emptyVarsT
	}
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
		{Name: "Vars", Type: varsT, Tag: `expr:"vars"`},
		{Name: "Sessions", Type: reflect.TypeFor[int64](), Tag: `expr:"sessions"`},
	}))
}

// guardError is a compile error with its 0-based line and column inside the
// expression, when known.
type guardError struct {
	line, col int
	msg       string
}

// compileGuard compiles a guard against envT. intern, if not nil, returns
// the machine's copy of a string literal (see fastCompiler).
func compileGuard(src string, envT reflect.Type, intern func(string) string) (*guard, *guardError) {
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
		c := &fastCompiler{env: envT.Elem(), intern: intern}
		if t := c.compile(tree.Node); t != nil && t.k == gBool {
			g.fast = t.b
			if c.reads != 0 {
				g.tree, g.intern, g.reads = tree.Node, intern, c.reads
			}
		}
	}
	return g, nil
}

// specialize returns the fast evaluator of the guard for a dispatch-table
// row, where the current state and event are known: `state` and `event`
// become literals and the comparisons and logic over them fold away
// (`peer.n > 0 && state == "open"` is `peer.n > 0` in state open). Guards
// that read neither, and VM guards, are returned as they are.
func (g *guard) specialize(state, event string) func(*genv) bool {
	if g.fast == nil || g.reads == 0 {
		return g.fast
	}
	c := &fastCompiler{env: g.envType.Elem(), intern: g.intern, known: true, state: state, event: event}
	if t := c.compile(g.tree); t != nil && t.k == gBool {
		return t.b
	}
	return nil // cannot happen (it compiled unspecialized); the VM reads state and event
}

// genv is what a guard evaluation reads; the engine fills one per dispatch.
type genv struct {
	inst     *instance // whose peer and settings these are
	msg      codec_Message
	peer     any
	settings reflect.Value // *settings struct
	st       *State
	ev       *EventInfo
	value    any
	bad      uint8 // why the fast evaluator failed (badNil...), 0: it did not

	// What the fast evaluator reads, resolved once per instance (peer,
	// settings) or message rather than once per field read: the structs
	// behind the pointers (invalid for a nil pointer) and the dynamic
	// types. bound says which are current; whoever changes msg or
	// peer/settings clears its bit.
	bound       uint8
	msgV, peerV reflect.Value
	setV        reflect.Value
	msgT, peerT reflect.Type
	// The fields of peer and settings read since they were bound, by
	// field.slot (a field owns the entry that names it): reflect's Field
	// costs more than the rest of a read, and they are the same for every
	// event of an instance.
	fields [16]struct {
		f *field
		v reflect.Value
	}
}

// bound bits of genv.
const (
	boundMsg uint8 = 1 << iota
	boundPeer
)

// deref returns the struct behind a pointer held in x (invalid when x is
// not a non-nil pointer) and x's dynamic type.
func deref(x any) (reflect.Value, reflect.Type) {
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}, reflect.TypeOf(x)
	}
	return v.Elem(), v.Type()
}

// root returns the struct and the dynamic type of msg, peer or settings,
// resolving them on first use.
func (e *genv) root(which int) (reflect.Value, reflect.Type) {
	switch which {
	case envMsg:
		if e.bound&boundMsg == 0 {
			e.msgV, e.msgT = deref(e.msg)
			e.bound |= boundMsg
		}
		return e.msgV, e.msgT
	case envVars:
		if e.inst == nil || !e.inst.vars.IsValid() {
			return reflect.Value{}, emptyVarsT
		}
		return e.inst.vars.Elem(), e.inst.vars.Type()
	}
	if e.bound&boundPeer == 0 {
		e.peerV, e.peerT = deref(e.peer)
		e.setV = e.settings.Elem()
		e.bound |= boundPeer
		e.fields = [len(e.fields)]struct {
			f *field
			v reflect.Value
		}{}
	}
	if which == envPeer {
		return e.peerV, e.peerT
	}
	return e.setV, e.settings.Type()
}

// sessions is the engine's live sessions (instances), the guard
// identifier `sessions`: a server's machine can limit its clients.
func (e *genv) sessions() int64 {
	if e.inst == nil || e.inst.live == nil {
		return 0
	}
	return int64(e.inst.live.Load())
}

// codec_Message avoids importing codec here just for the field type.
type codec_Message = any

// eval runs the guard. vmach is a reusable VM (single goroutine).
func (g *guard) eval(env *genv, vmach *vm.VM) (bool, error) {
	if g.fast != nil {
		env.bad = 0
		v := g.fast(env)
		if env.bad != 0 {
			return false, guardErr[env.bad]
		}
		return v, nil
	}
	out, err := vmach.Run(g.program, env.vmEnv(g.envType))
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// vmEnv fills a new env struct of type envT (a pointer type) from e, for
// expr's VM.
func (e *genv) vmEnv(envT reflect.Type) any {
	ev := reflect.New(envT.Elem())
	s := ev.Elem()
	setAny(s.Field(envMsg), e.msg)
	setAny(s.Field(envPeer), e.peer)
	s.Field(envSettings).Set(e.settings)
	s.Field(envState).SetString(e.st.Name)
	s.Field(envEvent).SetString(e.ev.Name)
	setAny(s.Field(envValue), e.value)
	if e.inst != nil && e.inst.vars.IsValid() && e.inst.vars.Type() == s.Field(envVars).Type() {
		s.Field(envVars).Set(e.inst.vars)
	}
	s.Field(envSessions).SetInt(e.sessions())
	return ev.Interface()
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
