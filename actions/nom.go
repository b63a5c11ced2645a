package actions

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strconv"

	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// The talk's nom-protocol (spec/nom.toml), served by machines/nom_server.toml
// and eaten by machines/nom_client.toml. It is the second protocol of the
// project: it shows what adding a protocol takes (a model in spec/, a
// generated codec, two machine files and these few actions).
func init() {
	Register(nom.ProtocolName, interp.RoleServer, &interp.Library{
		Actions:  nomServerActions,
		PeerType: (*NomServerPeer)(nil),
		NewPeer:  func(string) any { return &NomServerPeer{} },
	})
	Register(nom.ProtocolName, interp.RoleClient, &interp.Library{
		Actions:  nomClientActions,
		PeerType: (*NomClientPeer)(nil),
		NewPeer:  func(string) any { return &NomClientPeer{} },
	})
}

// NomServerPeer is what the nom server remembers about one client.
// Guards read it as peer.Nickname, peer.Pieces, ...
type NomServerPeer struct {
	Nickname string
	Order    string // what the current order asks for
	Pieces   int    // pieces in the current order
	Served   int    // pieces of it served so far
	Serial   uint32 // serial of the next CHEEZBURGER
	Orders   int    // orders completed
}

// NomClientPeer is the nom client's state.
type NomClientPeer struct {
	Want   int // pieces ordered
	Got    int // pieces eaten
	Orders int // orders completed
}

// nomServerActions are the nom server's actions.
var nomServerActions = interp.Actions{
	"welcome peer": {Fn: welcomePeer, Accepts: []string{"OHAI"}, Doc: "Remember the client's nickname from OHAI."},
	"explain refusal": {Fn: explainRefusal, Fills: []string{"WTF"},
		Doc: "Fill WTF with why the message was refused: the event, and the decode error of a malformed frame."},
	"take order": {Fn: takeOrder, Raises: []string{"cook", "bad-order"}, Accepts: []string{"ICANHAZ"},
		Reads: []interp.SettingUse{{Name: "pieces", Type: interp.SettingInt, Min: interp.Int64(1)}, {Name: "max_pieces", Type: interp.SettingInt, Min: interp.Int64(1)}},
		Doc:   "Read an ICANHAZ into the peer's order (options.pieces, default settings.pieces) and start cooking."},
	"cook piece": {Fn: cookPiece, Fills: []string{"CHEEZBURGER"},
		Doc: "Fill the next CHEEZBURGER of the order: serial, body, and the body's SHA-1 prefix as digest."},
	"close order": {Fn: closeOrder, Doc: "Count the order as served and tell the application."},
}

func serverPeer(ctx *interp.Ctx) (*NomServerPeer, error) {
	p, ok := ctx.Peer().(*NomServerPeer)
	if !ok || p == nil {
		return nil, fmt.Errorf("nom server: peer value is %T, want *NomServerPeer", ctx.Peer())
	}
	return p, nil
}

func welcomePeer(ctx *interp.Ctx) error {
	p, err := serverPeer(ctx)
	if err != nil {
		return err
	}
	m, ok := ctx.Msg().(*nom.Ohai)
	if !ok {
		return fmt.Errorf("welcome peer: message is %T, want OHAI", ctx.Msg())
	}
	p.Nickname = m.Nickname
	ctx.Notify("welcome", p.Nickname)
	return nil
}

func explainRefusal(ctx *interp.Ctx) error {
	w := ctx.Out("WTF").(*nom.Wtf)
	switch {
	case ctx.Event() == interp.EventMalformed && ctx.Err() != nil:
		w.Reason, w.Code = truncate(ctx.Err().Error(), 255), 400
	case ctx.Event() == "bad-order":
		w.Reason, w.Code = truncate("bad order: "+errString(ctx.Err()), 255), 422
	case ctx.Event() == "OHAI" && ctx.State() == "start":
		w.Reason, w.Code = "say who you are: OHAI needs a nickname", 401
	default:
		w.Reason, w.Code = truncate(ctx.Event()+" was not expected in state "+ctx.State(), 255), 409
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "?"
	}
	var ex *interp.Exception
	if errors.As(err, &ex) && ex.Err != nil {
		return ex.Err.Error()
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func takeOrder(ctx *interp.Ctx) error {
	p, err := serverPeer(ctx)
	if err != nil {
		return err
	}
	m, ok := ctx.Msg().(*nom.Icanhaz)
	if !ok {
		return fmt.Errorf("take order: message is %T, want ICANHAZ", ctx.Msg())
	}
	pieces := int(ctx.Int("pieces"))
	if s, ok := m.Options["pieces"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || int64(n) > ctx.Int("max_pieces") {
			return &interp.Exception{Event: "bad-order", Err: fmt.Errorf("pieces=%q: want 1..%d", s, ctx.Int("max_pieces"))}
		}
		pieces = n
	}
	p.Order, p.Pieces, p.Served = m.What, pieces, 0
	ctx.Raise("cook")
	return nil
}

// food is the body of one piece: deterministic, so the client can check it.
func food(order string, serial uint32, toppings int) []byte {
	return fmt.Appendf(nil, "%s #%d (%d toppings)", order, serial, toppings)
}

func cookPiece(ctx *interp.Ctx) error {
	p, err := serverPeer(ctx)
	if err != nil {
		return err
	}
	c := ctx.Out("CHEEZBURGER").(*nom.Cheezburger)
	toppings := 0
	if m, ok := ctx.Msg().(*nom.Icanhaz); ok {
		toppings = len(m.Toppings)
	}
	c.Serial = p.Serial
	c.Body = food(p.Order, p.Serial, toppings)
	sum := sha1.Sum(c.Body)
	c.Digest = sum[:4]
	p.Serial++
	p.Served++
	return nil
}

func closeOrder(ctx *interp.Ctx) error {
	p, err := serverPeer(ctx)
	if err != nil {
		return err
	}
	p.Orders++
	ctx.Notify("served", fmt.Sprintf("%s: %s x%d", p.Nickname, p.Order, p.Served))
	return nil
}

// nomClientActions are the nom client's actions.
var nomClientActions = interp.Actions{
	"say hello": {Fn: sayHello, Fills: []string{"OHAI"}, Reads: []interp.SettingUse{{Name: "nickname", Type: interp.SettingString}}, Doc: "Fill OHAI with settings.nickname."},
	"place order": {Fn: placeOrder, Fills: []string{"ICANHAZ"},
		Reads: []interp.SettingUse{{Name: "order", Type: interp.SettingString}, {Name: "pieces", Type: interp.SettingInt, Min: interp.Int64(1)}},
		Doc:   "Fill ICANHAZ: what from the call's args (\"what\") or settings.order, pieces from settings.pieces."},
	"eat piece": {Fn: eatPiece, Raises: []string{"bad-food", "full"}, Accepts: []string{"CHEEZBURGER"},
		Doc: "Check a CHEEZBURGER's digest (bad-food if wrong), count it, raise full when the order is complete."},
	"report": {Fn: report, Doc: "Tell the application about the current event (and WTF's reason)."},
}

func clientPeer(ctx *interp.Ctx) (*NomClientPeer, error) {
	p, ok := ctx.Peer().(*NomClientPeer)
	if !ok || p == nil {
		return nil, fmt.Errorf("nom client: peer value is %T, want *NomClientPeer", ctx.Peer())
	}
	return p, nil
}

func sayHello(ctx *interp.Ctx) error {
	ctx.Out("OHAI").(*nom.Ohai).Nickname = ctx.String("nickname")
	return nil
}

func placeOrder(ctx *interp.Ctx) error {
	p, err := clientPeer(ctx)
	if err != nil {
		return err
	}
	what := ctx.String("order")
	if args, ok := ctx.Value().(map[string]any); ok {
		if w, ok := args["what"].(string); ok {
			what = w
		}
	}
	m := ctx.Out("ICANHAZ").(*nom.Icanhaz)
	m.What = what
	m.Toppings = []string{"cheese"}
	m.Options = map[string]string{"pieces": strconv.FormatInt(ctx.Int("pieces"), 10)}
	p.Want, p.Got = int(ctx.Int("pieces")), 0
	return nil
}

func eatPiece(ctx *interp.Ctx) error {
	p, err := clientPeer(ctx)
	if err != nil {
		return err
	}
	c, ok := ctx.Msg().(*nom.Cheezburger)
	if !ok {
		return fmt.Errorf("eat piece: message is %T, want CHEEZBURGER", ctx.Msg())
	}
	sum := sha1.Sum(c.Body)
	if string(sum[:4]) != string(c.Digest) {
		return &interp.Exception{Event: "bad-food", Err: fmt.Errorf("piece %d: digest %x, body hashes to %x", c.Serial, c.Digest, sum[:4])}
	}
	p.Got++
	ctx.Notify("piece", fmt.Sprintf("%d %s", c.Serial, c.Body))
	if p.Got >= p.Want {
		p.Orders++
		ctx.Raise("full")
	}
	return nil
}

func report(ctx *interp.Ctx) error {
	switch m := ctx.Msg().(type) {
	case *nom.Wtf:
		ctx.Notify(ctx.Event(), fmt.Sprintf("%d %s", m.Code, m.Reason))
	default:
		if ctx.Err() != nil {
			ctx.Notify(ctx.Event(), errString(ctx.Err()))
		} else {
			ctx.Notify(ctx.Event(), ctx.State())
		}
	}
	return nil
}
