package interp_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/internal/chunksum"
	"github.com/fmq/fmq/interp"
)

// Frames delivered with DeliverOwned are released once nothing references
// them: after their dispatch, or, for a chunk the client's action hands to
// the inbox (Ctx.Hold), once the inbox has written and hashed it. Each
// release here scribbles over the frame, as the transport's reuse would:
// the file must still arrive intact and verified, and every frame must be
// released exactly once.
func TestDeliverOwnedReleasesAfterUse(t *testing.T) {
	for _, verified := range []bool{false, true} {
		name := "sha1"
		if verified {
			name = "chunk-digests"
		}
		t.Run(name, func(t *testing.T) {
			m, err := interp.Load("../machines/fmq_client.toml", loadOpts)
			if err != nil {
				t.Fatal(err)
			}
			ib := openTestInbox(t)
			now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			peer := actions.NewFMQClientPeer(ib, []string{"/"})
			e, err := interp.NewClient(m, interp.Options{
				NewPeer: func(string) any { return peer },
				Now:     func() time.Time { return now },
				Sender:  interp.SenderFunc(func(string, []byte) error { return nil }),
			})
			if err != nil {
				t.Fatal(err)
			}
			var released, delivered atomic.Int64
			var outstanding sync.WaitGroup // frames not released yet
			deliver := func(msg interface{ Append([]byte) ([]byte, error) }) {
				b, err := msg.Append(nil)
				if err != nil {
					t.Fatal(err)
				}
				delivered.Add(1)
				outstanding.Add(1)
				var once atomic.Bool
				e.DeliverOwned("", b, func() {
					if !once.CompareAndSwap(false, true) {
						t.Error("frame released twice")
					}
					for i := range b {
						b[i] = 0xAA
					}
					released.Add(1)
					outstanding.Done()
				})
				e.Tick(now)
			}
			e.Start()
			if err := e.Call("connect", nil); err != nil {
				t.Fatal(err)
			}
			e.Tick(now)
			deliver(&filemq.OhaiOk{})
			deliver(&filemq.IcanhazOk{})
			if got := released.Load(); got != 2 {
				t.Fatalf("%d of the 2 control frames released after their dispatch", got)
			}
			content := make([]byte, 5<<18+12345)
			for i := range content {
				content[i] = byte(i*31 + i>>9)
			}
			sum := sha1.Sum(content)
			const chunk = 1 << 18 // hashed on the inbox's hasher goroutine
			var seq uint64
			for off := 0; off < len(content); off += chunk {
				part := content[off:min(off+chunk, len(content))]
				h := map[string]string{}
				last := off+chunk >= len(content)
				if verified {
					h[chunksum.Header] = chunksum.Of(part).String()
				}
				if last {
					h["SHA1"] = hex.EncodeToString(sum[:])
					h["SIZE"] = strconv.Itoa(len(content))
				}
				var eof uint8
				if last {
					eof = 1
				}
				deliver(&filemq.Cheezburger{Sequence: seq, Operation: actions.OpCreate, Filename: "/f.bin", Offset: uint64(off), EOF: eof, Headers: h, Chunk: part})
				seq++
			}
			allReleased := make(chan struct{})
			go func() { outstanding.Wait(); close(allReleased) }()
			select {
			case <-allReleased:
			case <-time.After(10 * time.Second):
			}
			if r, d := released.Load(), delivered.Load(); r != d {
				t.Fatalf("%d of %d frames released", r, d)
			}
			got, err := os.ReadFile(filepath.Join(ib.Dir(), "f.bin"))
			if err != nil {
				t.Fatalf("file not installed: %v (problems %d)", err, peer.Stats.Problems.Load())
			}
			if !bytes.Equal(got, content) {
				t.Fatal("file differs")
			}
			e.Call("stop", nil)
			e.Tick(now)
		})
	}
}
