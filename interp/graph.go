package interp

import (
	"fmt"
	"io"
	"strings"
)

// Graphs are drawn only from a loaded (checked) machine, never from a
// half-parsed file. Output is stable: states, handlers and alternatives
// come in file order.

// edgeLabel is "EVENT [guard] / action, action".
func edgeLabel(t *Transition) string {
	var b strings.Builder
	b.WriteString(t.Event)
	if t.When != "" {
		b.WriteString(" [" + t.When + "]")
	}
	if len(t.Actions) > 0 {
		b.WriteString(" / " + actionNames(t.Actions))
	}
	return b.String()
}

// drawnAction is an action as graphs show it: a Go action that sends
// messages itself (its contract's Sends) shows them, "deliver chunks ⇒
// CHEEZBURGER", so that the data traffic is on the graph.
func drawnAction(a *Action) string {
	if a.Kind == ActCall && len(a.Spec.Sends) > 0 {
		return a.Name + " ⇒ " + strings.Join(a.Spec.Sends, ", ")
	}
	return a.Name
}

func (m *Machine) children(p *State) []*State {
	var out []*State
	for _, s := range m.States {
		if s.Parent == p {
			out = append(out, s)
		}
	}
	return out
}

// each calls f for every transition declared in s, in file order.
func (s *State) each(f func(t *Transition)) {
	for _, ev := range s.onKeys {
		for _, t := range s.On[ev] {
			f(t)
		}
	}
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// WriteDot writes the machine as a Graphviz digraph: superstates are
// clusters holding the states that inherit them, guards label the edges,
// transitions that stay are listed inside their state's box.
func WriteDot(w io.Writer, m *Machine) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(m.Name))
	fmt.Fprintf(&b, "  label=%s;\n  labelloc=t;\n  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
		dotQuote(m.Name+" ("+m.Role+", protocol "+m.Protocol+")"))
	b.WriteString("  \"(start)\" [shape=point];\n")
	var node func(s *State, indent string)
	node = func(s *State, indent string) {
		var stays []string
		s.each(func(t *Transition) {
			if t.Next == nil && !terminates(t.Actions) {
				stays = append(stays, edgeLabel(t))
			}
		})
		label := s.Name
		if len(s.Entry) > 0 {
			label += "\nentry / " + actionNames(s.Entry)
		}
		if len(s.Exit) > 0 {
			label += "\nexit / " + actionNames(s.Exit)
		}
		for _, a := range s.After {
			label += "\nafter " + a.Dur.String() + " -> " + a.Event
		}
		for _, st := range stays {
			label += "\n" + st
		}
		style := ""
		switch {
		case s.Abstract:
			style = ", style=\"rounded,dashed\""
		case s.Final:
			style = ", peripheries=2"
		}
		kids := m.children(s)
		if len(kids) == 0 {
			fmt.Fprintf(&b, "%s%s [label=%s%s];\n", indent, dotQuote(s.Name), dotQuote(label), style)
			return
		}
		fmt.Fprintf(&b, "%ssubgraph %s {\n%s  label=%s;\n%s  style=dashed;\n", indent, dotQuote("cluster_"+s.Name), indent, dotQuote(s.Name), indent)
		fmt.Fprintf(&b, "%s  %s [label=%s%s];\n", indent, dotQuote(s.Name), dotQuote(label), style)
		for _, k := range kids {
			node(k, indent+"  ")
		}
		fmt.Fprintf(&b, "%s}\n", indent)
	}
	for _, s := range m.States {
		if s.Parent == nil {
			node(s, "  ")
		}
	}
	terminal := false
	fmt.Fprintf(&b, "  \"(start)\" -> %s;\n", dotQuote(m.Initial.Name))
	for _, s := range m.States {
		s.each(func(t *Transition) {
			switch {
			case t.Next != nil:
				fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(s.Name), dotQuote(t.Next.Name), dotQuote(edgeLabel(t)))
			case terminates(t.Actions):
				terminal = true
				fmt.Fprintf(&b, "  %s -> \"(end)\" [label=%s];\n", dotQuote(s.Name), dotQuote(edgeLabel(t)))
			}
		})
	}
	if terminal {
		b.WriteString("  \"(end)\" [shape=doublecircle, label=\"\", width=0.2];\n")
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func actionNames(acts []*Action) string {
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = drawnAction(a)
	}
	return strings.Join(names, ", ")
}

// mermaidID makes a state name safe as a Mermaid identifier.
func mermaidID(s string) string { return strings.NewReplacer("-", "_").Replace(s) }

func mermaidText(s string) string {
	return strings.NewReplacer(":", "#58;", ";", "#59;", "<", "#60;", ">", "#62;", "&", "#38;", "\n", " ", "\"", "'").Replace(s)
}

// WriteMermaid writes the machine as a Mermaid stateDiagram-v2; superstates
// are composite states.
func WriteMermaid(w io.Writer, m *Machine) error {
	var b strings.Builder
	b.WriteString("---\ntitle: " + m.Name + " (" + m.Role + ", protocol " + m.Protocol + ")\n---\nstateDiagram-v2\n")
	var node func(s *State, indent string)
	node = func(s *State, indent string) {
		id := mermaidID(s.Name)
		if id != s.Name {
			fmt.Fprintf(&b, "%sstate \"%s\" as %s\n", indent, s.Name, id)
		}
		kids := m.children(s)
		if len(kids) > 0 {
			fmt.Fprintf(&b, "%sstate %s {\n", indent, id)
			for _, k := range kids {
				node(k, indent+"  ")
			}
			fmt.Fprintf(&b, "%s}\n", indent)
		}
		if s.Doc != "" {
			fmt.Fprintf(&b, "%s%s : %s\n", indent, id, mermaidText(s.Doc))
		}
		s.each(func(t *Transition) {
			if t.Next == nil && !terminates(t.Actions) {
				fmt.Fprintf(&b, "%s%s : %s\n", indent, id, mermaidText(edgeLabel(t)))
			}
		})
	}
	for _, s := range m.States {
		if s.Parent == nil {
			node(s, "  ")
		}
	}
	fmt.Fprintf(&b, "  [*] --> %s\n", mermaidID(m.Initial.Name))
	for _, s := range m.States {
		s.each(func(t *Transition) {
			switch {
			case t.Next != nil:
				fmt.Fprintf(&b, "  %s --> %s : %s\n", mermaidID(s.Name), mermaidID(t.Next.Name), mermaidText(edgeLabel(t)))
			case terminates(t.Actions):
				fmt.Fprintf(&b, "  %s --> [*] : %s\n", mermaidID(s.Name), mermaidText(edgeLabel(t)))
			}
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}
