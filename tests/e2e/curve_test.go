package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/transport"
)

// flipProxy relays TCP connections to target; with flip set it inverts one
// byte of every server-to-client stream, at offset at (inside the file's
// data, well past the CURVE handshake).
type flipProxy struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  []net.Conn
}

func startFlipProxy(t *testing.T, target string, flip bool, at int64) (*flipProxy, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flipProxy{ln: ln}
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
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() {
				defer p.wg.Done()
				defer c.Close()
				var off int64
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if flip && off <= at && at < off+int64(n) {
						buf[at-off] ^= 0x01
					}
					off += int64(n)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p, "tcp://" + ln.Addr().String()
}

// A byte flipped in a data frame under CURVE: the connection ends, the
// client's redials meet the same fate, and no byte of a tampered frame
// reaches the inbox (no file; a partial holds only genuine bytes). The
// same proxy without the flip delivers the file.
func TestCurveTamperedDataNeverReachesInbox(t *testing.T) {
	kp, err := transport.NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pub := t.TempDir()
	data := content(13, 3<<20)
	writeFile(t, pub, "big.bin", data)
	srv := startServer(t, pub, "", func(c *host.ServerConfig) {
		c.Transport.CurveServer = &transport.CurveServer{Keys: kp}
	})
	for _, flip := range []bool{false, true} {
		name := "intact"
		if flip {
			name = "flipped"
		}
		t.Run(name, func(t *testing.T) {
			proxy, ep := startFlipProxy(t, srv.Endpoint(), flip, 1<<20+12345)
			inbox := t.TempDir()
			cl := startClient(t, host.ClientConfig{Connect: ep, Inbox: inbox, Once: true,
				Transport: transport.Options{CurveClient: &transport.CurveClient{ServerKey: kp.Public}}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if !flip {
				if err := cl.Wait(ctx); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(filepath.Join(inbox, "big.bin")); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("big.bin through the intact proxy: %v", err)
				}
				return
			}
			for proxy.conns.Load() < 3 { // cut twice, redialled twice
				select {
				case <-ctx.Done():
					t.Fatalf("only %d connections", proxy.conns.Load())
				case <-cl.Done():
					t.Fatalf("client ended: %v", cl.Err())
				case <-time.After(10 * time.Millisecond):
				}
			}
			cl.Close()
			if _, err := os.Stat(filepath.Join(inbox, "big.bin")); !os.IsNotExist(err) {
				t.Fatalf("big.bin in the inbox despite the tampered frame: %v", err)
			}
			filepath.WalkDir(inbox, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".fmqpart") {
					return nil
				}
				part, _ := os.ReadFile(p)
				if len(part) > len(data) || !bytes.Equal(part, data[:len(part)]) {
					t.Errorf("%s: %d bytes, not a prefix of the file", p, len(part))
				}
				return nil
			})
		})
	}
}
