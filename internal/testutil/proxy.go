package testutil

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay copies one direction of a proxied connection, from src to dst,
// until either fails; the proxy closes dst when it returns.
type Relay func(dst io.Writer, src io.Reader)

// Copy is the Relay that changes nothing.
func Copy(dst io.Writer, src io.Reader) { io.Copy(dst, src) }

// Proxy relays every TCP connection made to Endpoint to a target, each
// direction through a Relay, so a test can watch or tamper with the bytes
// between two peers. Connections are closed and goroutines joined at the
// test's cleanup.
type Proxy struct {
	Endpoint string // "tcp://127.0.0.1:PORT"
	ln       net.Listener
	conns    atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	open     []net.Conn
}

// Conns is the number of connections accepted and relayed so far.
func (p *Proxy) Conns() int64 { return p.conns.Load() }

// StartProxy listens on 127.0.0.1 and relays to target ("tcp://host:port"
// or "host:port"): up carries the client's bytes to the server, down the
// server's to the client (nil: Copy).
func StartProxy(t testing.TB, target string, up, down Relay) *Proxy {
	t.Helper()
	if up == nil {
		up = Copy
	}
	if down == nil {
		down = Copy
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Endpoint: "tcp://" + ln.Addr().String(), ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
			if err != nil {
				c.Close()
				continue
			}
			p.conns.Add(1)
			p.mu.Lock()
			p.open = append(p.open, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); up(s, c); s.Close() }()
			go func() { defer p.wg.Done(); down(c, s); c.Close() }()
		}
	}()
	return p
}
