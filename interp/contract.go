package interp

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// The contract checks hold every action list to what its Go actions
// declare (ActionSpec.Accepts, Sends, Fills, Reads): an action bound to a
// message it does not read, a setting it reads that the machine lacks or
// types otherwise, a message filled and never sent, a message sent that
// nothing filled.

// actionList is one action list of the machine and where it runs.
type actionList struct {
	state *State
	t     *Transition // nil for entry and exit lists
	what  string      // "entry", "exit" or "on.EVENT"
	acts  []*Action
}

// lists returns every action list of the machine, in file order.
func (m *Machine) lists() []actionList {
	var out []actionList
	for _, s := range m.States {
		if len(s.Entry) > 0 {
			out = append(out, actionList{state: s, what: "entry", acts: s.Entry})
		}
		if len(s.Exit) > 0 {
			out = append(out, actionList{state: s, what: "exit", acts: s.Exit})
		}
		s.each(func(t *Transition) {
			out = append(out, actionList{state: s, t: t, what: "on." + t.Event, acts: t.Actions})
		})
	}
	return out
}

// contracts runs the contract checks and narrows the settings to what
// their readers need.
func (l *loader) contracts() {
	m := l.m
	lists := m.lists()
	// Which actions fill each message (for sends in the handler of an
	// event those actions raise).
	fillersOf := map[string][]*Action{}
	for _, al := range lists {
		for _, a := range al.acts {
			if a.Kind == ActCall {
				for _, msg := range a.Spec.Fills {
					fillersOf[msg] = append(fillersOf[msg], a)
				}
			}
		}
	}
	readDone := map[string]bool{}
	typeDone := map[string]bool{}
	for _, al := range lists {
		for i, a := range al.acts {
			switch a.Kind {
			case ActCall:
				l.checkAccepts(al, a)
				for _, u := range a.Spec.Reads {
					l.checkRead(a, u, readDone, typeDone)
				}
				for _, msg := range a.Spec.Fills {
					l.checkFilledSent(al, i, a, msg)
				}
			case ActSend:
				l.checkSentFilled(al, i, a, fillersOf)
			}
		}
	}
	for _, s := range m.Settings {
		if err := s.Check(s.Default); err != nil {
			l.errf(s.defPos, "setting %q: default %v", s.Name, err)
		}
	}
}

func (l *loader) checkAccepts(al actionList, a *Action) {
	acc := a.Spec.Accepts
	if len(acc) == 0 {
		return
	}
	want := strings.Join(acc, ", ")
	switch {
	case al.t == nil:
		l.errf(a.Pos, "action %q reads the event it is bound to (it accepts %s); %s actions run under whatever event enters the state, so call it from the handler of %s instead", a.Name, want, al.what, want)
	case al.t.Event == EventAny:
		l.errf(a.Pos, "action %q is bound to on.\"*\" in state %q, but it accepts only %s", a.Name, al.state.Name, want)
	case !contains(acc, al.t.Event):
		l.errf(a.Pos, "action %q is bound to on.%s in state %q, but it accepts only %s", a.Name, al.t.Event, al.state.Name, want)
	}
}

func (l *loader) checkRead(a *Action, u SettingUse, readDone, typeDone map[string]bool) {
	m := l.m
	s, ok := m.Setting(u.Name)
	if !ok {
		k := a.Name + "\x00" + u.Name
		if !readDone[k] {
			readDone[k] = true
			l.errf(a.Pos, "action %q reads setting %q (%s), which the machine does not declare in [settings]", a.Name, u.Name, u.Type)
		}
		return
	}
	if s.Type != u.Type {
		if !typeDone[u.Name] {
			typeDone[u.Name] = true
			l.errf(s.defPos, "setting %q is %s %s, but action %q (line %d) reads it as %s %s", u.Name, article(s.Type), s.Type, a.Name, a.Pos.Line, article(u.Type), u.Type)
		}
		return
	}
	why := fmt.Sprintf("action %q", a.Name)
	if u.Why != "" {
		why += ": " + u.Why
	}
	s.narrow(u.Min, u.Max, why)
}

func article(t SettingType) string {
	if t == SettingInt {
		return "an"
	}
	return "a"
}

// checkFilledSent: a message an action fills must be sent after it in the
// same list, or by the handler of an event the action raises.
func (l *loader) checkFilledSent(al actionList, i int, a *Action, msg string) {
	for _, b := range al.acts[i+1:] {
		if b.Kind == ActSend && b.Message == msg {
			return
		}
	}
	for _, ev := range a.Spec.Raises {
		if l.m.someHandlerSends(ev, msg) {
			return
		}
	}
	var others []string
	for _, b := range al.acts[i+1:] {
		if b.Kind == ActSend {
			others = append(others, b.Message)
		}
	}
	also := ""
	if len(others) > 0 {
		also = " (it sends " + strings.Join(others, ", ") + " instead)"
	}
	l.errf(a.Pos, "action %q fills %s, but no \"send %s\" follows it in %s of state %q%s", a.Name, msg, msg, al.what, al.state.Name, also)
}

// someHandlerSends reports whether any handler of ev sends msg.
func (m *Machine) someHandlerSends(ev, msg string) bool {
	for _, s := range m.States {
		for _, t := range s.On[ev] {
			for _, a := range t.Actions {
				if a.Kind == ActSend && a.Message == msg {
					return true
				}
			}
		}
	}
	return false
}

// checkSentFilled: `send M` of a message with fields needs an action that
// filled M before it (in the list, or the action that raised the event
// being handled).
func (l *loader) checkSentFilled(al actionList, i int, a *Action, fillersOf map[string][]*Action) {
	e, ok := l.m.Event(a.Message)
	if !ok || e.Msg == nil {
		return
	}
	var fields []string
	for _, f := range e.Msg.Fields {
		if f.Const == nil {
			fields = append(fields, f.Name)
		}
	}
	if len(fields) == 0 || len(a.fields) > 0 {
		return // nothing to fill, or the send sets fields itself
	}
	for _, b := range al.acts[:i] {
		if b.Kind == ActCall && (contains(b.Spec.Fills, a.Message) || contains(b.Spec.Sends, a.Message)) {
			return
		}
	}
	if al.t != nil {
		for _, f := range fillersOf[a.Message] {
			if contains(f.Spec.Raises, al.t.Event) {
				return
			}
		}
	}
	l.errf(a.Pos, "send %s: nothing fills its fields (%s) in %s of state %q, so it goes out empty; call an action that fills %s before it", a.Message, strings.Join(fields, ", "), al.what, al.state.Name, a.Message)
}

// ---- whole-machine analysis ----

// analyse runs the checks over the whole machine: cycles with no way out,
// unconditional raise loops, and the protocol's grammar.
func (l *loader) analyse(reach map[*State]bool) {
	l.closedCycles(reach)
	l.raiseLoops(reach)
	l.grammar()
}

// closedCycles reports a set of two or more states that reach each other
// and nothing else, with no terminate and no final state: a session that
// enters it never ends. (One state alone is the dead-end check.)
func (l *loader) closedCycles(reach map[*State]bool) {
	m := l.m
	succ := func(s *State) []*State {
		var out []*State
		for _, row := range m.table[s.ID] {
			for _, t := range row {
				if t.Next != nil {
					out = append(out, t.Next)
				}
			}
		}
		return out
	}
	for _, comp := range tarjan(m.States, reach, succ) {
		if len(comp) < 2 {
			continue
		}
		in := map[*State]bool{}
		for _, s := range comp {
			in[s] = true
		}
		out := false
		for _, s := range comp {
			out = out || s.Final || terminates(s.Entry)
			for _, row := range m.table[s.ID] {
				for _, t := range row {
					if t.Next != nil && !in[t.Next] || terminates(t.Actions) {
						out = true
					}
				}
			}
		}
		if out {
			continue
		}
		sort.Slice(comp, func(i, j int) bool { return comp[i].ID < comp[j].ID })
		names := make([]string, len(comp))
		for i, s := range comp {
			names[i] = strconv.Quote(s.Name)
		}
		l.errf(comp[0].Pos, "states %s form a cycle with no way out: no transition leaves them and none terminates (mark one final = true if intended)", strings.Join(names, ", "))
	}
}

// tarjan returns the strongly connected components of the states in keep.
func tarjan(states []*State, keep map[*State]bool, succ func(*State) []*State) [][]*State {
	index := map[*State]int{}
	low := map[*State]int{}
	on := map[*State]bool{}
	var stack []*State
	var comps [][]*State
	var visit func(s *State)
	visit = func(s *State) {
		index[s] = len(index)
		low[s] = index[s]
		stack = append(stack, s)
		on[s] = true
		for _, n := range succ(s) {
			if !keep[n] {
				continue
			}
			if _, seen := index[n]; !seen {
				visit(n)
				low[s] = min(low[s], low[n])
			} else if on[n] {
				low[s] = min(low[s], index[n])
			}
		}
		if low[s] == index[s] {
			var comp []*State
			for {
				n := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[n] = false
				comp = append(comp, n)
				if n == s {
					break
				}
			}
			comps = append(comps, comp)
		}
	}
	for _, s := range states {
		if keep[s] {
			if _, seen := index[s]; !seen {
				visit(s)
			}
		}
	}
	return comps
}

// raiseLoops reports `raise` cycles that nothing stops: the handler taken
// has no guard and does not terminate, so the events chase each other
// until max_steps ends the instance.
func (l *loader) raiseLoops(reach map[*State]bool) {
	m := l.m
	type node struct{ s, ev int }
	type edge struct {
		to node
		a  *Action
	}
	edges := func(n node) []edge {
		alts := m.table[n.s][n.ev]
		if len(alts) == 0 || alts[0].guard != nil || terminates(alts[0].Actions) {
			return nil
		}
		t := alts[0]
		target := m.States[n.s]
		acts := t.Actions
		if t.Next != nil {
			target = t.Next
			if terminates(t.Next.Entry) {
				return nil
			}
			acts = append(append([]*Action{}, acts...), t.Next.Entry...)
		}
		var out []edge
		for _, a := range acts {
			if a.Kind == ActRaise && a.ev >= 0 {
				out = append(out, edge{node{target.ID, a.ev}, a})
			}
		}
		return out
	}
	const (
		white = iota
		grey
		black
	)
	color := map[node]int{}
	reported := map[*Action]bool{}
	var visit func(n node)
	visit = func(n node) {
		color[n] = grey
		for _, e := range edges(n) {
			switch color[e.to] {
			case white:
				visit(e.to)
			case grey:
				if !reported[e.a] {
					reported[e.a] = true
					l.errf(e.a.Pos, "unconditional raise loop: %q in state %q raises %s again and again (no guard, no terminate on the way); it runs until max_steps stops the instance", e.a.Name, m.States[n.s].Name, m.Events[e.to.ev].Name)
				}
			}
		}
		color[n] = black
	}
	for _, s := range m.States {
		if !reach[s] || s.Abstract {
			continue
		}
		for ev := range m.table[s.ID] {
			if n := (node{s.ID, ev}); color[n] == white {
				visit(n)
			}
		}
	}
}

// ---- guards ----

// guardIndexes finds constant list indexes in a guard (msg.mechanisms[1])
// that no len() test conjoined with them bounds: on a shorter list the
// guard fails at run time and raises "error". It returns, per unsafe
// index, its offset in the source and a description.
func guardIndexes(src string) []guardIssue {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	var out []guardIssue
	var visit func(n ast.Node, bounds map[string]int)
	visit = func(n ast.Node, bounds map[string]int) {
		switch n := n.(type) {
		case *ast.BinaryNode:
			if n.Operator == "&&" || n.Operator == "and" {
				// The right side runs only when the left holds: the left's
				// bounds protect it.
				visit(n.Left, bounds)
				inner := maps.Clone(bounds)
				lenBounds(n.Left, inner)
				visit(n.Right, inner)
				return
			}
			visit(n.Left, bounds)
			visit(n.Right, bounds)
		case *ast.MemberNode:
			visit(n.Node, bounds)
			if k, ok := constIndex(n.Property); ok {
				base := n.Node.String()
				need := k + 1
				if k < 0 {
					need = -k
				}
				if bounds[base] < need {
					out = append(out, guardIssue{off: leftmost(n), msg: fmt.Sprintf("%s indexes %s without a len(%s) >= %d test before it (&&): on a shorter list the guard fails at run time", n.String(), base, base, need)})
				}
				return
			}
			visit(n.Property, bounds)
		case *ast.UnaryNode:
			visit(n.Node, bounds)
		case *ast.BuiltinNode:
			for _, a := range n.Arguments {
				visit(a, bounds)
			}
		case *ast.CallNode:
			for _, a := range n.Arguments {
				visit(a, bounds)
			}
		case *ast.ConditionalNode:
			visit(n.Cond, bounds)
			inner := maps.Clone(bounds)
			lenBounds(n.Cond, inner)
			visit(n.Exp1, inner)
			visit(n.Exp2, bounds)
		}
	}
	visit(tree.Node, map[string]int{})
	return out
}

// leftmost is the source offset where a member chain (msg.a.b[0]) starts.
func leftmost(n ast.Node) int {
	for {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return n.Location().From
		}
		n = m.Node
	}
}

type guardIssue struct {
	off int
	msg string
}

func constIndex(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if i, ok := n.Node.(*ast.IntegerNode); ok && n.Operator == "-" {
			return -i.Value, true
		}
	}
	return 0, false
}

// lenBounds records, from a condition known true, the least length it
// proves for each list: len(x) > k, len(x) >= k, len(x) == k, and k < len(x)
// alike, through &&.
func lenBounds(n ast.Node, bounds map[string]int) {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return
	}
	if b.Operator == "&&" || b.Operator == "and" {
		lenBounds(b.Left, bounds)
		lenBounds(b.Right, bounds)
		return
	}
	lenOf := func(n ast.Node) (string, bool) {
		if c, ok := n.(*ast.BuiltinNode); ok && c.Name == "len" && len(c.Arguments) == 1 {
			return c.Arguments[0].String(), true
		}
		return "", false
	}
	op, l, r := b.Operator, b.Left, b.Right
	x, isLen := lenOf(l)
	if !isLen {
		if x, isLen = lenOf(r); !isLen {
			return
		}
		l, r = r, l
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}[op]
	}
	k, ok := constIndex(r)
	if !ok {
		return
	}
	least := -1
	switch op {
	case ">":
		least = k + 1
	case ">=", "==":
		least = k
	}
	if least > bounds[x] {
		bounds[x] = least
	}
}
