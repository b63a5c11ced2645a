package interp

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// CheckPair checks a client and a server machine of one protocol as a
// pair: every message one side may send is handled (by its own handler,
// not only a wildcard) somewhere in the other, and each side's expiry
// outlasts a heartbeat that keeps it fed. Problems are positioned in the
// machine that must change. The machines may be given in either order.
func CheckPair(a, b *Machine) error {
	cli, srv := a, b
	if a.Role == RoleServer {
		cli, srv = b, a
	}
	var errs ErrorList
	if cli.Role != RoleClient || srv.Role != RoleServer {
		return ErrorList{{File: a.File, Msg: fmt.Sprintf("a pair is one client and one server machine, not a %s and a %s", a.Role, b.Role)}}
	}
	if cli.Protocol != srv.Protocol {
		return ErrorList{{File: b.File, Msg: fmt.Sprintf("the client speaks %s and the server %s", cli.Protocol, srv.Protocol)}}
	}
	errs = append(errs, unheard(srv, cli)...)
	errs = append(errs, unheard(cli, srv)...)
	errs = append(errs, starved(srv, cli)...)
	errs = append(errs, starved(cli, srv)...)
	return errs.Err()
}

// sent lists the messages a machine may send, with where it first does.
func (m *Machine) sent() map[string]*Action {
	out := map[string]*Action{}
	note := func(msg string, a *Action) {
		if _, ok := out[msg]; !ok {
			out[msg] = a
		}
	}
	for _, al := range m.lists() {
		for _, a := range al.acts {
			switch a.Kind {
			case ActSend:
				note(a.Message, a)
			case ActCall:
				for _, msg := range a.Spec.Sends {
					note(msg, a)
				}
			}
		}
	}
	return out
}

// unheard reports the messages from may send that to handles nowhere
// but in a wildcard.
func unheard(from, to *Machine) ErrorList {
	var errs ErrorList
	handled := map[string]bool{}
	for _, s := range to.States {
		for _, ev := range s.onKeys {
			handled[ev] = true
		}
	}
	sent := from.sent()
	names := make([]string, 0, len(sent))
	for msg := range sent {
		names = append(names, msg)
	}
	sort.Strings(names)
	for _, msg := range names {
		if !handled[msg] {
			a := sent[msg]
			errs = append(errs, &Error{File: from.File, Pos: a.Pos, Msg: fmt.Sprintf("the %s sends %s, which %s (%s) handles in no state (only a wildcard would see it)", from.Role, msg, to.Name, to.File)})
		}
	}
	return errs
}

// starved reports an expiry of m that the pair's heartbeats do not
// refresh in time: m expires a silent peer after m.Expiry, and hears from
// it at least every min(peer heartbeat, m's own heartbeat, which the peer
// answers). Without heartbeats, idle sessions are meant to expire.
func starved(m, peer *Machine) ErrorList {
	exp := m.Expiry.def(m)
	if exp <= 0 {
		return nil
	}
	var beats []string
	feed := time.Duration(0)
	for _, x := range []struct {
		who string
		mm  *Machine
	}{{"its own heartbeat (answered)", m}, {peer.Name + "'s heartbeat", peer}} {
		h := x.mm.Heartbeat.def(x.mm)
		if h > 0 {
			beats = append(beats, fmt.Sprintf("%s %s", x.who, h))
			if feed == 0 || h < feed {
				feed = h
			}
		}
	}
	if feed == 0 || feed < exp {
		return nil // no heartbeat: idle sessions are meant to expire
	}
	why := strings.Join(beats, ", ")
	return ErrorList{{File: m.File, Pos: m.Expiry.where(m), Msg: fmt.Sprintf("expiry %s of the %s is not longer than what keeps an idle %s alive (%s): idle sessions are dropped", exp, m.Role, peerRole(m.Role), why)}}
}

// def is the duration's value with the machine's default settings.
func (d Duration) def(m *Machine) time.Duration {
	if d.Setting != "" {
		if s, ok := m.Setting(d.Setting); ok {
			if v, ok := s.Default.(time.Duration); ok {
				return v
			}
		}
		return 0
	}
	return d.Lit
}

// where is the position that sets the duration: the setting's default,
// or the literal.
func (d Duration) where(m *Machine) Pos {
	if d.Setting != "" {
		if s, ok := m.Setting(d.Setting); ok {
			return s.defPos
		}
	}
	return d.pos
}
