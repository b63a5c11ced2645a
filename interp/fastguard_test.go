package interp

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
)

type fgPeer struct {
	I   int
	I8  int8
	I64 int64
	U   uint
	U8  uint8
	F   float64
	F32 float32
	S   string
	B   bool
	D   time.Duration
	Sl  []byte
	M   map[string]int
	In  struct{ X int32 }
}

type fgSettings struct {
	Limit int64         `expr:"limit"`
	Name  string        `expr:"name"`
	Wait  time.Duration `expr:"wait"`
}

// TestFastGuardMatchesVM checks the closure evaluator against expr's VM on
// the same guards and inputs: literals on either side, mixed signedness,
// floats, strings, interned state names, len, arithmetic.
func TestFastGuardMatchesVM(t *testing.T) {
	envT := makeEnvType(reflect.TypeFor[*fgPeer](), reflect.TypeFor[*fgPeer](), reflect.TypeFor[*fgSettings]())
	open := &State{Name: "open"}
	intern := func(s string) string {
		if s == open.Name {
			return open.Name
		}
		return s
	}
	guards := []string{
		"peer.I > settings.limit",
		"peer.I >= 0 && state == 'open'",
		"state == 'open'", "state != 'open'", "'open' == state", "state < 'p'", "'p' > state",
		"event == 'HUGZ'", "len(state) == 4",
		"peer.I == 3", "3 == peer.I", "3 < peer.I", "3 <= peer.I", "-1 <= peer.I", "-1 >= peer.I", "0 > peer.I", "3 > peer.U", "3 >= peer.U", "1 >= peer.F", "1 > peer.F", "peer.I < -1", "-1 > peer.I", "peer.I <= 0", "0 >= peer.I", "peer.I != 7",
		"peer.I8 > -5", "peer.I64 >= 9223372036854775807", "peer.I64 < -9223372036854775807",
		"peer.U > 3", "3 < peer.U", "peer.U >= -1", "peer.U == 0", "-1 < peer.U", "peer.U8 != 255",
		"peer.U > peer.I", "peer.I < peer.U",
		"peer.F > 1", "1.5 <= peer.F", "peer.F == 0.25", "peer.F32 < 0.5", "peer.F != peer.I",
		"peer.S == 'abc'", "peer.S != 'abc'", "peer.S >= 'b'", "'b' > peer.S", "peer.S startsWith 'ab'", "peer.S contains 'c'",
		"peer.B", "!peer.B", "peer.B == true", "true != peer.B",
		"peer.D > settings.wait", "settings.wait >= peer.D",
		"len(peer.Sl) > 2", "len(peer.M) == 1", "len(peer.S) + 1 > 3",
		"peer.In.X % 3 == 1", "peer.I * 2 - 1 > 4", "peer.I / 2 > 1", "-peer.I < 0",
		"peer.I > 2 || peer.S == 'x'", "not (peer.I > 2)",
		"settings.name == 'srv' && peer.U8 < 10",
		"msg.I > 2", "2 >= msg.I", "msg.I64 <= settings.limit", "settings.limit < msg.I", "event != 'OHAI'", "msg.U8 == 255", "msg.F < 1.5", "msg.I64 != 0", "msg.I == peer.I",
		"state == 'open' && peer.I > 2", "peer.I > 2 && state == 'open'", "peer.I > 2 && state != 'open'", "state == 'closed' || peer.B",
		"peer.B || event == 'HUGZ'", "!(state == 'open')", "1 + 2 > peer.I", "peer.I8 > -5 && true", "false || peer.B",
		"(state == 'open' || event == 'OHAI') && (peer.S == 'abc' || state == 'closed')", "len(event) * 2 > peer.I",
		"settings.limit > 1", "1 < settings.limit", "settings.limit >= 2", "settings.limit >= 3", "settings.limit <= 2", "settings.limit < 2", "settings.limit != 2", "settings.limit == 2", "msg.I >= 3", "msg.I <= -1", "msg.I < 7", "msg.I != 3", "msg.I == 3", "msg.U >= 4", "msg.F >= 1.5", "settings.limit == peer.I",
	}
	peers := []*fgPeer{
		{},
		{I: 3, I8: -6, I64: math.MaxInt64, U: 4, U8: 255, F: 1.5, F32: 0.25, S: "abc", B: true, D: 6 * time.Second, Sl: []byte{1, 2, 3}, M: map[string]int{"a": 1}},
		{I: -2, I8: 127, I64: math.MinInt64, U: math.MaxInt64, // above MaxInt64 the VM wraps, the fast path compares exactly
			U8: 3, F: 0.25, F32: 1, S: "b", D: -1, In: struct{ X int32 }{-5}},
		{I: -1, I8: -5, U: 3, U8: 10, F: 1, F32: 0.5, S: "ab", D: 5 * time.Second},
		{I: 7, I64: -9223372036854775807, U: 7, F: math.NaN(), S: "x", In: struct{ X int32 }{4}},
	}
	states := []*State{open, {Name: "opem"}, {Name: "closed"}}
	events := []*EventInfo{{Name: "HUGZ"}, {Name: "OHAI"}}
	set := reflect.New(reflect.TypeFor[fgSettings]())
	*set.Interface().(*fgSettings) = fgSettings{Limit: 2, Name: "srv", Wait: 5 * time.Second}
	var vmach vm.VM
	for _, src := range guards {
		g, ge := compileGuard(src, envT, intern)
		if ge != nil {
			t.Fatalf("%s: %s", src, ge.msg)
		}
		if g.fast == nil {
			t.Errorf("%s: not compiled to the fast evaluator", src)
			continue
		}
		slow := &guard{src: src, program: g.program, envType: g.envType}
		for pi, p := range peers {
			for _, st := range states {
				for _, ev := range events {
					env := &genv{msg: peers[(pi+1)%len(peers)], peer: p, settings: set, st: st, ev: ev}
					got, gerr := g.eval(env, &vmach)
					want, werr := slow.eval(env, &vmach)
					// The dispatch table's copy: state and event known.
					spec := &guard{src: src, fast: g.specialize(st.Name, ev.Name)}
					if spec.fast == nil {
						t.Fatalf("%s: no specialized evaluator for %s/%s", src, st.Name, ev.Name)
					}
					sgot, serr := spec.eval(&genv{msg: env.msg, peer: p, settings: set}, &vmach)
					if sgot != got || (serr == nil) != (gerr == nil) {
						t.Errorf("%s peer %d state %s event %s: specialized %v (%v), fast %v (%v)", src, pi, st.Name, ev.Name, sgot, serr, got, gerr)
					}
					if gerr != nil || werr != nil {
						if (gerr == nil) != (werr == nil) {
							t.Errorf("%s peer %d state %s: fast err %v, vm err %v", src, pi, st.Name, gerr, werr)
						}
						continue
					}
					if got != want {
						t.Errorf("%s peer %d state %s event %s: fast %v, vm %v", src, pi, st.Name, ev.Name, got, want)
					}
				}
			}
		}
	}
}

// TestFastGuardBadRoot checks the typed errors for a nil or mistyped peer.
func TestFastGuardBadRoot(t *testing.T) {
	envT := makeEnvType(reflect.TypeFor[*fgPeer](), reflect.TypeFor[*fgPeer](), reflect.TypeFor[*fgSettings]())
	set := reflect.New(reflect.TypeFor[fgSettings]())
	for _, src := range []string{"peer.I > 1", "peer.F > 1", "peer.S == 'a'", "peer.B", "len(peer.Sl) > 0", "peer.U8 > 1", "1 < peer.I", "peer.I > settings.limit",
		"msg.I > 1", "msg.F > 1", "msg.S == 'a'", "msg.B", "len(msg.Sl) > 0", "msg.U8 > 1", "1 < msg.I", "msg.I > settings.limit",
		"peer.I > 1 && state == 'open'", "peer.I > 1 || state == 'open'"} {
		g, ge := compileGuard(src, envT, nil)
		if ge != nil || g.fast == nil {
			t.Fatalf("%s: not fast (%v)", src, ge)
		}
		for _, tc := range []struct {
			peer any
			want error
		}{
			{(*fgPeer)(nil), errNilGuardValue},
			{nil, errGuardType},
			{&fgSettings{}, errGuardType},
			{(*fgSettings)(nil), errGuardType},
		} {
			env := &genv{msg: tc.peer, peer: tc.peer, settings: set, st: &State{}, ev: &EventInfo{}}
			if _, err := g.eval(env, nil); !errors.Is(err, tc.want) {
				t.Errorf("%s with peer %T(%v): err %v, want %v", src, tc.peer, tc.peer, err, tc.want)
			}
			spec := &guard{src: src, fast: g.specialize("open", "HUGZ")}
			if _, err := spec.eval(&genv{msg: tc.peer, peer: tc.peer, settings: set}, nil); !errors.Is(err, tc.want) {
				t.Errorf("%s specialized, with peer %T(%v): err %v, want %v", src, tc.peer, tc.peer, err, tc.want)
			}
		}
	}
}
