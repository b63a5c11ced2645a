package transport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawPeer speaks ZMTP by hand, to play hostile or broken peers.
type rawPeer struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func rawDial(t testing.TB, ep string) *rawPeer {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, br: bufio.NewReader(c)}
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.c.Write(b); err != nil {
		p.t.Fatalf("raw write: %v", err)
	}
}

// greet sends our greeting and reads the server's.
func (p *rawPeer) greet(mech string) greeting {
	p.t.Helper()
	p.write(appendGreeting(nil, mech, false))
	var b [greetingLen]byte
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.br, b[:]); err != nil {
		p.t.Fatalf("raw greeting: %v", err)
	}
	g, err := parseGreeting(b[:])
	if err != nil {
		p.t.Fatal(err)
	}
	return g
}

func (p *rawPeer) readCmd() (string, []byte) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	flags, err := p.br.ReadByte()
	if err != nil {
		p.t.Fatalf("raw read command: %v", err)
	}
	hdr := []byte{flags}
	rest := make([]byte, headerLen(flags)-1)
	if _, err := io.ReadFull(p.br, rest); err != nil {
		p.t.Fatal(err)
	}
	h, err := parseFrameHeader(append(hdr, rest...), 1<<20, 1<<20)
	if err != nil {
		p.t.Fatal(err)
	}
	body := make([]byte, h.Size)
	if _, err := io.ReadFull(p.br, body); err != nil {
		p.t.Fatal(err)
	}
	if !h.command() {
		p.t.Fatalf("want a command, got a message frame %q", body)
	}
	name, data, err := parseCommand(body)
	if err != nil {
		p.t.Fatal(err)
	}
	return name, data
}

// handshakeNULL completes a NULL handshake as a DEALER.
func (p *rawPeer) handshakeNULL(id string) {
	p.t.Helper()
	p.greet(mechNULL)
	props := []property{{propSocketType, "DEALER"}}
	if id != "" {
		props = append(props, property{propIdentity, id})
	}
	p.write(appendCommand(nil, "READY", appendMetadata(nil, props...)))
	if name, _ := p.readCmd(); name != "READY" {
		p.t.Fatalf("got %s, want READY", name)
	}
}

func (p *rawPeer) sendMsg(body []byte) {
	p.write(append(appendFrameHeader(nil, 0, len(body)), body...))
}

// expectCut waits until the server closes the connection.
func (p *rawPeer) expectCut(within time.Duration) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, p.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.t.Fatalf("server did not cut the connection within %v", within)
	}
}
