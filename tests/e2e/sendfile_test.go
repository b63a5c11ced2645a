package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/transport"
)

// A large file whose chunk digests the server knows goes out from the file
// (sendfile, file sections) to a client that checks chunk digests, and
// arrives byte-exact, its last chunk short; under CURVE, and on a server
// whose wire trace wants whole frames, the same file is read (no section)
// and arrives byte-exact too.
func TestLargeFileSentFromFile(t *testing.T) {
	data := content(31, 7_300_001)
	for _, name := range []string{"null", "curve", "wire"} {
		curve, wire := name == "curve", name == "wire"
		t.Run(name, func(t *testing.T) {
			pub := t.TempDir()
			writeFile(t, pub, "big.bin", data)
			var opts []serverOpt
			var ctr transport.Options
			if curve {
				kp, err := transport.NewCurveKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, func(c *host.ServerConfig) { c.Transport.CurveServer = &transport.CurveServer{Keys: kp} })
				ctr.CurveClient = &transport.CurveClient{ServerKey: kp.Public}
			}
			if wire {
				opts = append(opts, func(c *host.ServerConfig) { c.Wire = func(string) {} })
			}
			srv := startServer(t, pub, "", opts...)
			// The version's digests, as a transfer before this one left them.
			if _, err := srv.Tree().Digest("/big.bin"); err != nil {
				t.Fatal(err)
			}
			inbox := t.TempDir()
			cl := startClient(t, host.ClientConfig{Connect: srv.Endpoint(), Inbox: inbox, Once: true, Transport: ctr})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := cl.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(inbox, "big.bin")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("big.bin differs (err %v)", err)
			}
			st := srv.Transport().Stats()
			if (curve || wire) && st.Sections != 0 {
				t.Fatalf("%d sections sent from the file (%s)", st.Sections, name)
			}
			if name == "null" && st.Sections != 8 {
				t.Fatalf("%d chunks sent from the file, want the 7 full ones and the short last one", st.Sections)
			}
		})
	}
}
