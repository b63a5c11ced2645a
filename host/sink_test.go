package host

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/internal/testutil"
	"github.com/fmq/fmq/transport"
)

// The no-disk sink of BenchmarkFanoutSink receives a whole tree from a
// real server (large chunks dropped unread, small frames read), with
// small credit refills, and counts exactly the tree's bytes and files.
func TestSinkReceivesTheTree(t *testing.T) {
	pub := t.TempDir()
	sizes := map[string]int64{"empty": 0, "small": 100, "edge": 4096, "mid/a": 70_000, "big": 3_000_123}
	var total int64
	for name, n := range sizes {
		os.MkdirAll(filepath.Dir(filepath.Join(pub, name)), 0o755)
		bigFile(t, pub, name, n)
		total += n
	}
	srv := startTestServer(t, pub, map[string]string{"chunk_size": "65536"})
	defer srv.Close()
	z, err := testutil.DialZMTP(srv.Endpoint(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	res, err := testutil.Sink(z, "/", 200_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != total || res.Files != int64(len(sizes)) {
		t.Fatalf("sink received %d bytes, %d files; want %d bytes, %d files", res.Bytes, res.Files, total, len(sizes))
	}
}

// A server that gets the stream wrong fails the sink: a CHEEZBURGER out
// of sequence, a chunk not where the last one ended, a new file before the
// last one's end.
func TestSinkRefusesABrokenStream(t *testing.T) {
	chunk := make([]byte, 10_000) // over 4 KiB: the unread-chunk path
	burger := func(seq uint64, name string, off uint64, eof uint8, n int) *filemq.Cheezburger {
		return &filemq.Cheezburger{Sequence: seq, Operation: 1, Filename: name, Offset: off, EOF: eof, Chunk: chunk[:n],
			Headers: map[string]string{"SIZE": "20000"}}
	}
	synced := &filemq.Cheezburger{Operation: 3, Filename: "/", EOF: 1}
	for _, c := range []struct {
		name string
		msgs []*filemq.Cheezburger
		want string
	}{
		{"sequence", []*filemq.Cheezburger{burger(0, "/a", 0, 0, 10_000), burger(2, "/a", 10_000, 1, 10_000)}, "sequence 2, want 1"},
		{"offset", []*filemq.Cheezburger{burger(0, "/a", 0, 0, 10_000), burger(1, "/a", 12_000, 1, 10_000)}, "at 12000, want 10000"},
		{"unfinished", []*filemq.Cheezburger{burger(0, "/a", 0, 0, 10_000), burger(1, "/b", 0, 1, 100)}, "started before"},
		{"whole", []*filemq.Cheezburger{burger(0, "/a", 0, 0, 10_000), burger(1, "/a", 10_000, 1, 100)}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := transport.Listen("tcp://127.0.0.1:0", transport.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			served := make(chan error, 1)
			go func() { served <- fakeServer(r, append(c.msgs, synced)) }()
			z, err := testutil.DialZMTP(r.Endpoint(), "")
			if err != nil {
				t.Fatal(err)
			}
			defer z.Close()
			res, err := testutil.Sink(z, "/", 1<<20, nil)
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("a good stream failed: %v", err)
			case c.want == "" && (res.Bytes != 10_100 || res.Files != 1):
				t.Fatalf("good stream: %+v", res)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v (%+v), want an error with %q", err, res, c.want)
			}
		})
	}
}

// fakeServer answers OHAI and ICANHAZ, waits for the NOM, then sends msgs
// with the sequence numbers they carry (the synced marker's is its place).
func fakeServer(r *transport.Router, msgs []*filemq.Cheezburger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 { // OHAI, ICANHAZ, NOM
		var m transport.Msg
		select {
		case m = <-r.Recv():
		case <-ctx.Done():
			return ctx.Err()
		}
		dec, err := filemq.Decode(m.Body, nil)
		if err != nil {
			return err
		}
		var reply codec.Message
		switch dec.(type) {
		case *filemq.Ohai:
			reply = filemq.NewOhaiOk()
		case *filemq.Icanhaz:
			reply = filemq.NewIcanhazOk()
		}
		if reply != nil {
			if err := fakeSend(r, m.Peer, reply); err != nil {
				return err
			}
		}
		if _, ok := dec.(*filemq.Nom); ok {
			for i, c := range msgs {
				if c.Operation == 3 {
					c.Sequence = uint64(i)
				}
				fakeSend(r, m.Peer, c) // the sink may have left at a fault already

			}
		}
	}
	return nil
}

func fakeSend(r *transport.Router, peer string, m codec.Message) error {
	b, err := m.Append(nil)
	if err == nil {
		err = r.Send(peer, b)
	}
	return err
}
