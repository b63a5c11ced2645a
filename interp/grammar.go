package interp

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/fmq/fmq/codec"
)

// The protocol grammar (the model's ABNF, codec.GrammarOf) says which
// messages must be answered: "C:ICANHAZ ( S:ICANHAZ-OK / S:RTFM )" means a
// server that receives ICANHAZ sends ICANHAZ-OK or RTFM next. The checker
// holds every handler of such a request to it.

// gnode is a node of a parsed grammar.
type gnode struct {
	kind  byte // 't' terminal, 'r' rule reference, 's' sequence, 'a' alternation, '*' repetition, '?' option
	dir   codec.Direction
	name  string // message (terminal) or rule (reference)
	kids  []*gnode
	ruleN int // for 'r': index of the rule
}

// grammarInfo is what the checker needs from a grammar: for every
// terminal ("C:ICANHAZ"), the terminals that may follow it and whether the
// conversation may end after it.
type grammarInfo struct {
	follow map[string]map[string]bool
	end    map[string]bool
}

func termKey(d codec.Direction, msg string) string {
	if d == codec.FromClient {
		return "C:" + msg
	}
	return "S:" + msg
}

type gparser struct {
	toks []string
	i    int
	err  error
}

func tokenizeGrammar(src string) []string {
	var toks []string
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ';': // ABNF comment
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\n':
			// A rule starts at column 0 with NAME =.
			j := i + 1
			if j < len(src) && (unicode.IsLetter(rune(src[j]))) {
				toks = append(toks, "\n")
			}
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.ContainsRune("()[]/=*", rune(c)):
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(src) && !strings.ContainsRune("()[]/=*; \t\r\n", rune(src[j])) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		}
	}
	return toks
}

func (p *gparser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *gparser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, args...)
	}
	p.i = len(p.toks)
}

func (p *gparser) alternation() *gnode {
	n := &gnode{kind: 'a', kids: []*gnode{p.sequence()}}
	for p.peek() == "/" {
		p.i++
		n.kids = append(n.kids, p.sequence())
	}
	return n
}

func (p *gparser) sequence() *gnode {
	n := &gnode{kind: 's'}
	for {
		switch t := p.peek(); t {
		case "", "/", ")", "]", "\n":
			return n
		}
		n.kids = append(n.kids, p.repetition())
	}
}

func (p *gparser) repetition() *gnode {
	t := p.peek()
	// ABNF repeat prefixes: *x, n*x, n*mx: only "may repeat" matters here.
	if t == "*" || (len(t) > 0 && t[0] >= '0' && t[0] <= '9') {
		p.i++
		if t != "*" && p.peek() == "*" {
			p.i++
		}
		if p.peek() != "" && p.peek()[0] >= '0' && p.peek()[0] <= '9' {
			p.i++
		}
		return &gnode{kind: '*', kids: []*gnode{p.element()}}
	}
	return p.element()
}

func (p *gparser) element() *gnode {
	t := p.peek()
	p.i++
	switch {
	case t == "(":
		n := p.alternation()
		if p.peek() != ")" {
			p.fail("missing )")
		}
		p.i++
		return n
	case t == "[":
		n := p.alternation()
		if p.peek() != "]" {
			p.fail("missing ]")
		}
		p.i++
		return &gnode{kind: '?', kids: []*gnode{n}}
	case strings.HasPrefix(t, "C:"):
		return &gnode{kind: 't', dir: codec.FromClient, name: t[2:]}
	case strings.HasPrefix(t, "S:"):
		return &gnode{kind: 't', dir: codec.FromServer, name: t[2:]}
	case t != "" && !strings.ContainsAny(t, "()[]/=*\n"):
		return &gnode{kind: 'r', name: t}
	}
	p.fail("unexpected %q", t)
	return &gnode{kind: 's'}
}

// parseGrammar reads the grammar's rules (the first is the conversation)
// and computes what may follow every terminal.
func parseGrammar(src string) (*grammarInfo, error) {
	p := &gparser{toks: tokenizeGrammar(strings.TrimSpace(src))}
	var names []string
	var bodies []*gnode
	for p.peek() != "" && p.err == nil {
		if p.peek() == "\n" {
			p.i++
			continue
		}
		name := p.peek()
		p.i++
		if p.peek() != "=" {
			p.fail("rule %q: want NAME = ...", name)
			break
		}
		p.i++
		names = append(names, name)
		bodies = append(bodies, p.alternation())
	}
	if p.err != nil {
		return nil, p.err
	}
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}
	var resolve func(n *gnode) error
	resolve = func(n *gnode) error {
		if n.kind == 'r' {
			i, ok := idx[n.name]
			if !ok {
				return fmt.Errorf("unknown rule %q", n.name)
			}
			n.ruleN = i
		}
		for _, k := range n.kids {
			if err := resolve(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range bodies {
		if err := resolve(b); err != nil {
			return nil, err
		}
	}
	a := &gan{bodies: bodies, nullR: make([]bool, len(bodies)), firstR: make([]map[string]bool, len(bodies))}
	for i := range a.firstR {
		a.firstR[i] = map[string]bool{}
	}
	for changed := true; changed; {
		changed = false
		for i, b := range bodies {
			f, nl := a.first(b)
			for k := range f {
				if !a.firstR[i][k] {
					a.firstR[i][k], changed = true, true
				}
			}
			if nl && !a.nullR[i] {
				a.nullR[i], changed = true, true
			}
		}
	}
	g := &grammarInfo{follow: map[string]map[string]bool{}, end: map[string]bool{}}
	followR := make([]map[string]bool, len(bodies))
	endR := make([]bool, len(bodies))
	for i := range followR {
		followR[i] = map[string]bool{}
	}
	if len(bodies) > 0 {
		endR[0] = true
	}
	for changed := true; changed; {
		changed = false
		for i, b := range bodies {
			if a.walk(b, followR[i], endR[i], g, followR, endR) {
				changed = true
			}
		}
	}
	return g, nil
}

// gan holds the FIRST and nullable sets of the rules.
type gan struct {
	bodies []*gnode
	nullR  []bool
	firstR []map[string]bool
}

func (a *gan) first(n *gnode) (map[string]bool, bool) {
	switch n.kind {
	case 't':
		return map[string]bool{termKey(n.dir, n.name): true}, false
	case 'r':
		return a.firstR[n.ruleN], a.nullR[n.ruleN]
	case '*', '?':
		f, _ := a.first(n.kids[0])
		return f, true
	case 'a':
		out, nl := map[string]bool{}, false
		for _, k := range n.kids {
			f, knl := a.first(k)
			for x := range f {
				out[x] = true
			}
			nl = nl || knl
		}
		return out, nl
	}
	out := map[string]bool{} // sequence
	for _, k := range n.kids {
		f, knl := a.first(k)
		for x := range f {
			out[x] = true
		}
		if !knl {
			return out, false
		}
	}
	return out, true
}

// walk propagates what follows n (follow, and whether the conversation may
// end) down to its terminals and referenced rules; it reports a change.
func (a *gan) walk(n *gnode, follow map[string]bool, end bool, g *grammarInfo, followR []map[string]bool, endR []bool) bool {
	changed := false
	add := func(dst map[string]bool, src map[string]bool) {
		for k := range src {
			if !dst[k] {
				dst[k], changed = true, true
			}
		}
	}
	switch n.kind {
	case 't':
		k := termKey(n.dir, n.name)
		if g.follow[k] == nil {
			g.follow[k] = map[string]bool{}
		}
		add(g.follow[k], follow)
		if end && !g.end[k] {
			g.end[k], changed = true, true
		}
	case 'r':
		add(followR[n.ruleN], follow)
		if end && !endR[n.ruleN] {
			endR[n.ruleN], changed = true, true
		}
	case '?':
		changed = a.walk(n.kids[0], follow, end, g, followR, endR) || changed
	case '*':
		f, _ := a.first(n.kids[0])
		both := map[string]bool{}
		for k := range f {
			both[k] = true
		}
		for k := range follow {
			both[k] = true
		}
		changed = a.walk(n.kids[0], both, end, g, followR, endR) || changed
	case 'a':
		for _, k := range n.kids {
			changed = a.walk(k, follow, end, g, followR, endR) || changed
		}
	case 's':
		f, e := follow, end
		for i := len(n.kids) - 1; i >= 0; i-- {
			k := n.kids[i]
			changed = a.walk(k, f, e, g, followR, endR) || changed
			kf, knl := a.first(k)
			nf := map[string]bool{}
			for x := range kf {
				nf[x] = true
			}
			if knl {
				for x := range f {
					nf[x] = true
				}
			} else {
				e = false
			}
			f = nf
		}
	}
	return changed
}

// answers returns, for a machine of role, the messages the grammar wants
// sent in reply to each message it receives (only where nothing else may
// come next).
func (g *grammarInfo) answers(role string) map[string][]string {
	in, own := peerRole(role), ownRole(role)
	out := map[string][]string{}
	for k, f := range g.follow {
		if len(f) == 0 || g.end[k] {
			continue
		}
		var msg string
		if in == codec.FromClient {
			msg = strings.TrimPrefix(k, "C:")
		} else {
			msg = strings.TrimPrefix(k, "S:")
		}
		if msg == k {
			continue
		}
		var want []string
		ok := true
		for x := range f {
			if !strings.HasPrefix(x, termKey(own, "")) {
				ok = false
				break
			}
			want = append(want, x[2:])
		}
		if ok {
			sort.Strings(want)
			out[msg] = want
		}
	}
	return out
}

// grammar checks that every handler of a request the grammar wants
// answered sends one of the answers.
func (l *loader) grammar() {
	m := l.m
	if m.Proto == nil || m.Role == "" {
		return
	}
	src := codec.GrammarOf(m.Proto)
	if src == "" {
		return
	}
	g, err := parseGrammar(src)
	if err != nil {
		l.errf(l.ix.val("machine", "protocol"), "the grammar of protocol %s does not parse: %v", m.Protocol, err)
		return
	}
	answers := g.answers(m.Role)
	for _, s := range m.States {
		for _, ev := range s.onKeys {
			want := answers[ev]
			if len(want) == 0 {
				continue
			}
			for _, t := range s.On[ev] {
				if !m.answers(t, want, map[string]bool{}) {
					l.errf(t.Pos, "on.%s in state %q never answers %s: the %s grammar wants %s sent next (neither this handler, its next state's entry nor a handler of an event it raises sends it or terminates)",
						ev, s.Name, ev, m.Protocol, orList(want))
				}
			}
		}
	}
}

func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// answers reports whether taking t sends one of want (its actions, the
// next state's entry, or a handler of an event it raises) or ends the
// session.
func (m *Machine) answers(t *Transition, want []string, seen map[string]bool) bool {
	acts := t.Actions
	target := t.From
	if t.Next != nil {
		acts = append(append([]*Action{}, acts...), t.Next.Entry...)
		target = t.Next
	}
	for _, a := range acts {
		switch a.Kind {
		case ActTerminate:
			return true // the conversation ends here
		case ActSend:
			if contains(want, a.Message) {
				return true
			}
		case ActCall:
			for _, s := range a.Spec.Sends {
				if contains(want, s) {
					return true
				}
			}
		case ActRaise:
			k := target.Name + "\x00" + a.Event
			if seen[k] {
				continue
			}
			seen[k] = true
			for _, alt := range m.Alternatives(target.Name, a.Event) {
				if m.answers(alt, want, seen) {
					return true
				}
			}
		}
	}
	return false
}
