package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/transport"
)

// flipAt is a proxy relay that, with flip set, inverts the byte at offset
// at of every stream it carries (inside the file's data, well past the
// CURVE handshake).
func flipAt(flip bool, at int64) testutil.Relay {
	return func(dst io.Writer, src io.Reader) {
		var off int64
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if flip && off <= at && at < off+int64(n) {
				buf[at-off] ^= 0x01
			}
			off += int64(n)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
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
			proxy := testutil.StartProxy(t, srv.Endpoint(), nil, flipAt(flip, 1<<20+12345))
			ep := proxy.Endpoint
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
			for proxy.Conns() < 3 { // cut twice, redialled twice
				select {
				case <-ctx.Done():
					t.Fatalf("only %d connections", proxy.Conns())
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
