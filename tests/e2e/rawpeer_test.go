package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
)

// rawPeer is a FileMQ client speaking ZMTP 3.0 (NULL, DEALER) over a bare
// TCP connection, written by hand: it reads only when told to, so it can
// play a peer that stalls.
type rawPeer struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func rawDial(t testing.TB, endpoint, identity string) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "tcp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &rawPeer{t: t, c: c, br: bufio.NewReader(c)}
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:32], "NULL")
	p.write(g)
	peer := make([]byte, 64)
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.br, peer); err != nil {
		t.Fatalf("raw peer: greeting: %v", err)
	}
	if peer[0] != 0xFF || peer[9] != 0x7F || peer[10] != 3 || strings.TrimRight(string(peer[12:32]), "\x00") != "NULL" {
		t.Fatalf("raw peer: unexpected greeting % x", peer)
	}
	ready := []byte("\x05READY")
	prop := func(name, value string) {
		ready = append(ready, byte(len(name)))
		ready = append(ready, name...)
		ready = binary.BigEndian.AppendUint32(ready, uint32(len(value)))
		ready = append(ready, value...)
	}
	prop("Socket-Type", "DEALER")
	prop("Identity", identity)
	p.write(frame(0x04, ready))
	if cmd, body := p.readFrame(); !cmd || !strings.HasPrefix(string(body), "\x05READY") {
		t.Fatalf("raw peer: want READY, got %q", body)
	}
	return p
}

// frame encodes one ZMTP frame; flags 0x04 = command, 0 = last message part.
func frame(flags byte, body []byte) []byte {
	if len(body) < 256 {
		return append([]byte{flags, byte(len(body))}, body...)
	}
	b := binary.BigEndian.AppendUint64([]byte{flags | 0x02}, uint64(len(body)))
	return append(b, body...)
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.c.Write(b); err != nil {
		p.t.Fatalf("raw peer: write: %v", err)
	}
}

// readFrame reads one frame: whether it is a command, and its body.
func (p *rawPeer) readFrame() (bool, []byte) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	flags, err := p.br.ReadByte()
	if err != nil {
		p.t.Fatalf("raw peer: read: %v", err)
	}
	var n uint64
	if flags&0x02 != 0 {
		var b [8]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			p.t.Fatalf("raw peer: read: %v", err)
		}
		n = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := p.br.ReadByte()
		if err != nil {
			p.t.Fatalf("raw peer: read: %v", err)
		}
		n = uint64(b)
	}
	if n > 64<<20 {
		p.t.Fatalf("raw peer: frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.br, body); err != nil {
		p.t.Fatalf("raw peer: read: %v", err)
	}
	return flags&0x04 != 0, body
}

// send encodes and sends one FileMQ message.
func (p *rawPeer) send(m codec.Message) {
	p.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(frame(0, b))
}

// recv reads the next FileMQ message (ZMTP commands such as PING skipped).
func (p *rawPeer) recv() codec.Message {
	p.t.Helper()
	for {
		cmd, body := p.readFrame()
		if cmd {
			continue
		}
		m, err := filemq.Decode(body, nil)
		if err != nil {
			p.t.Fatalf("raw peer: undecodable frame: %v", err)
		}
		return m
	}
}

// expect reads the next message and fails unless it has the given type.
func expect[T codec.Message](p *rawPeer) T {
	p.t.Helper()
	m := p.recv()
	v, ok := m.(T)
	if !ok {
		p.t.Fatalf("raw peer: got %s, want %T", m.Info().Name, *new(T))
	}
	return v
}

// subscribe opens a peering and subscribes to path with a resync.
func (p *rawPeer) subscribe(path string) {
	p.t.Helper()
	p.send(filemq.NewOhai())
	expect[*filemq.OhaiOk](p)
	ic := filemq.NewIcanhaz()
	ic.Path, ic.Options = path, map[string]string{"RESYNC": "1"}
	p.send(ic)
	expect[*filemq.IcanhazOk](p)
}

func (p *rawPeer) String() string { return fmt.Sprintf("raw peer %s", p.c.LocalAddr()) }
