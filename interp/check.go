package interp

import (
	"sort"
	"strconv"
)

// buildTable resolves late event references and builds the dispatch table.
func (l *loader) buildTable() {
	m := l.m
	names := make([]string, 0, len(l.handled))
	for ev := range l.handled {
		names = append(names, ev)
	}
	sort.Strings(names)
	for _, ev := range names {
		if _, ok := m.Event(ev); !ok {
			for _, p := range l.handled[ev] {
				l.errf(p, "handler for event %q, which nothing raises (not a message, timer, [events] entry, `raise`, or action Raises)", ev)
			}
		}
	}
	for _, s := range m.States {
		for _, ts := range s.On {
			for _, t := range ts {
				if t.ev < 0 {
					if e, ok := m.Event(t.Event); ok {
						t.ev = e.ID
					}
				}
			}
		}
	}
	n := len(m.Events)
	m.table = make([][][]*Transition, len(m.States))
	for _, s := range m.States {
		row := make([][]*Transition, n)
		for _, e := range m.Events {
			if e.Kind == KindWildcard {
				continue
			}
			var alts []*Transition
			for p := s; p != nil; p = p.Parent {
				alts = append(alts, p.On[e.Name]...)
			}
			if e.Kind == KindMessage || e.Kind == KindMalformed {
				for p := s; p != nil; p = p.Parent {
					alts = append(alts, p.On[EventAny]...)
				}
			}
			row[e.ID] = alts
		}
		m.table[s.ID] = row
		s.row = make([][]alt, n)
		for ev, alts := range row {
			if len(alts) == 0 {
				continue
			}
			da := make([]alt, len(alts))
			for i, t := range alts {
				da[i] = alt{t: t, guard: t.guard}
				if t.guard != nil {
					da[i].fast = t.guard.specialize(s.Name, m.Events[ev].Name)
				}
			}
			s.row[ev] = da
		}
	}
}

// raises lists the events an action list may raise, with the action raising each.
func raises(acts []*Action) map[string]*Action {
	out := map[string]*Action{}
	for _, a := range acts {
		switch a.Kind {
		case ActRaise:
			if _, ok := out[a.Event]; !ok {
				out[a.Event] = a
			}
		case ActCall:
			for _, ev := range a.Spec.Raises {
				if _, ok := out[ev]; !ok {
					out[ev] = a
				}
			}
		}
	}
	return out
}

func terminates(acts []*Action) bool {
	for _, a := range acts {
		if a.Kind == ActTerminate {
			return true
		}
	}
	return false
}

func (m *Machine) handles(s *State, ev string) bool {
	e, ok := m.Event(ev)
	return ok && len(m.table[s.ID][e.ID]) > 0
}

// check runs the whole-machine checks: reachability, dead ends, raised
// events handled, unused superstates. It returns the reachable states.
func (l *loader) check() map[*State]bool {
	m := l.m
	if m.Initial == nil {
		return nil
	}
	// Reachability over effective (inherited) transitions.
	reach := map[*State]bool{m.Initial: true}
	work := []*State{m.Initial}
	for len(work) > 0 {
		s := work[len(work)-1]
		work = work[:len(work)-1]
		for _, row := range m.table[s.ID] {
			for _, t := range row {
				if t.Next != nil && !reach[t.Next] {
					reach[t.Next] = true
					work = append(work, t.Next)
				}
			}
		}
	}
	inherited := map[*State]bool{}
	for _, s := range m.States {
		if s.Parent != nil {
			inherited[s.Parent] = true
		}
	}
	for _, s := range m.States {
		switch {
		case s.Abstract && !inherited[s]:
			l.errf(s.Pos, "abstract state %q is never inherited", s.Name)
		case !s.Abstract && !reach[s]:
			l.errf(s.Pos, "state %q is unreachable from initial state %q", s.Name, m.Initial.Name)
		}
	}
	// Dead ends: a reachable state with no way out.
	for _, s := range m.States {
		if s.Abstract || !reach[s] || s.Final {
			continue
		}
		out := terminates(s.Entry)
		for _, row := range m.table[s.ID] {
			for _, t := range row {
				if t.Next != nil && t.Next != s || terminates(t.Actions) {
					out = true
				}
			}
		}
		if !out {
			l.errf(s.Pos, "state %q has no way out: no transition leaves it and none terminates (mark it final = true if intended)", s.Name)
		}
	}
	// Raised events must be handled where they are dispatched: in the
	// target state (after a successful transition) or in the source state
	// (an exception from a failed action).
	type key struct {
		a  *Action
		ev string
	}
	reported := map[key]bool{}
	report := func(a *Action, ev, where string) {
		k := key{a, ev}
		if reported[k] {
			return
		}
		reported[k] = true
		l.errf(a.Pos, "event %q raised by %s is not handled in state %s", ev, actionLabel(a), where)
	}
	for _, s := range m.States {
		if s.Abstract || !reach[s] {
			continue
		}
		for _, row := range m.table[s.ID] {
			for _, t := range row {
				target := s
				if t.Next != nil {
					target = t.Next
				}
				for ev, a := range raises(t.Actions) {
					if !m.handles(target, ev) && !m.handles(s, ev) {
						report(a, ev, strconv.Quote(target.Name))
					}
				}
				if t.Next != nil {
					for ev, a := range raises(t.Next.Entry) {
						if !m.handles(t.Next, ev) {
							report(a, ev, strconv.Quote(t.Next.Name))
						}
					}
				}
			}
		}
		for ev, a := range raises(s.Exit) {
			if !m.handles(s, ev) {
				report(a, ev, strconv.Quote(s.Name))
			}
		}
		for _, af := range s.After {
			if !m.handles(s, af.Event) {
				l.errf(af.Pos, "after event %q is not handled in state %q", af.Event, s.Name)
			}
		}
	}
	if m.Initial != nil {
		for ev, a := range raises(m.Initial.Entry) {
			if !m.handles(m.Initial, ev) {
				report(a, ev, strconv.Quote(m.Initial.Name))
			}
		}
	}
	return reach
}

func actionLabel(a *Action) string {
	if a.Kind == ActRaise {
		return strconv.Quote("raise " + a.Event)
	}
	return "action " + strconv.Quote(a.Name)
}
