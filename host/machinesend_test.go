package host

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/publish"
)

// The embedded fmq_server.toml sends every CHEEZBURGER itself (next chunk
// prepares peer.Next, the machine sends it). A client sees exactly what the
// previous machine, whose Go action sent them, sent: the same messages,
// sequences, offsets, headers and bytes, chunk by chunk, with a credit
// smaller than the tree (a file cut at the credit boundary), with and
// without INLINE-EOF.
func TestMachineSendsWhatGoSent(t *testing.T) {
	pub := t.TempDir()
	old := time.Now().Add(-time.Hour)
	put := func(name string, n int) {
		p := filepath.Join(pub, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, bytes.Repeat([]byte(name[:1]), n))
		os.Chtimes(p, old, old)
	}
	put("big.bin", 2500)
	put("empty.txt", 0)
	for i := 0; i < 4; i++ {
		put(fmt.Sprintf("dir/f%d.txt", i), 100+i)
	}
	type got struct {
		seq, off           uint64
		op, eof            uint8
		name, hdr, content string
	}
	run := func(machine string, opts map[string]string) []got {
		srv, err := StartServer(ServerConfig{Machine: machine, Publish: []publish.Mount{{Dir: pub, Alias: "/"}},
			Bind: "tcp://127.0.0.1:0", Settings: map[string]string{"chunk_size": "1000"}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		c := dialRaw(t, srv.Endpoint(), "")
		c.send(filemq.NewOhai())
		c.expect("OHAI-OK")
		c.send(&filemq.Icanhaz{Path: "/", Options: opts})
		c.expect("ICANHAZ-OK")
		const total = 2500 + 100 + 101 + 102 + 103
		c.send(&filemq.Nom{Credit: 1800}) // big.bin is cut at 1800, the rest follows the second NOM
		var out []got
		var bytesIn int
		for {
			m := c.recv(10 * time.Second)
			cb, ok := m.(*filemq.Cheezburger)
			if !ok {
				t.Fatalf("%s: got %v after %d chunks", machine, m, len(out))
			}
			out = append(out, got{cb.Sequence, cb.Offset, cb.Operation, cb.EOF, cb.Filename, fmt.Sprint(cb.Headers), string(cb.Chunk)})
			bytesIn += len(cb.Chunk)
			if bytesIn == 1800 && cb.Offset+uint64(len(cb.Chunk)) == 1800 {
				c.send(&filemq.Nom{Credit: total})
			}
			if cb.Operation == actions.OpSynced {
				if bytesIn != total {
					t.Fatalf("%s: %d content bytes, want %d", machine, bytesIn, total)
				}
				return out
			}
		}
	}
	for _, opts := range []map[string]string{
		{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1", "CHUNK-DIGEST": "XXH3-128"},
		{"RESYNC": "1", "SYNCED": "1"},
	} {
		now := run("", opts)
		before := run("testdata/fmq_server_gosend.toml", opts)
		if len(now) != len(before) {
			t.Fatalf("%v: %d messages, the Go-sending machine sent %d", opts, len(now), len(before))
		}
		for i := range now {
			if now[i] != before[i] {
				t.Errorf("%v: message %d is %+v, the Go-sending machine sent %+v", opts, i, now[i], before[i])
			}
		}
		if now[len(now)-1].seq != uint64(len(now)-1) {
			t.Errorf("%v: sequences end at %d for %d messages", opts, now[len(now)-1].seq, len(now))
		}
	}
}
