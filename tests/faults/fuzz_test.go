package faults

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec"
	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/interp"
	"github.com/fmq/fmq/publish"
)

// The server fuzz target drives the server machine's engine directly (no
// sockets: thousands of inputs a second) with a fake Sender. An input is a
// list of frames from up to four misbehaving peers, each record being
//
//	flags (1 octet) | length (2 octets, big-endian) | body
//
// where flags&3 picks the peer and flags&4 prefixes the body with the
// FILEMQ signature (so that the fuzzer reaches the decoder and the
// machine rather than the signature check). Between those frames a
// well-behaved peer opens a session, subscribes with RESYNC and SYNCED, and
// grants credit; at the end it must have received the whole published tree,
// intact, then the synced marker. The server must never panic.

const goodPeer = "good"

func fuzzRecord(flags byte, body []byte) []byte {
	out := []byte{flags, 0, 0}
	binary.BigEndian.PutUint16(out[1:], uint16(len(body)))
	return append(out, body...)
}

func encode(tb testing.TB, m codec.Message) []byte {
	b, err := m.Append(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fakeSender keeps a copy of every frame per peer.
type fakeSender struct{ frames map[string][][]byte }

func (s *fakeSender) Send(peer string, body []byte) error {
	s.frames[peer] = append(s.frames[peer], bytes.Clone(body))
	return nil
}

type serverFixture struct {
	machine *interp.Machine
	shared  *actions.FMQServer
	tree    tree
}

func newServerFixture(tb testing.TB) *serverFixture {
	pub := tb.TempDir()
	tr := tree{
		"a.txt":         []byte("hello, fuzz\n"),
		"dir/big.bin":   bytes.Repeat([]byte("0123456789abcdef"), 1000), // 16000 bytes: four chunks
		"dir/empty.dat": nil,
	}
	tr.write(tb, pub)
	pt, err := publish.New([]publish.Mount{{Dir: filepath.Clean(pub), Alias: "/"}}, publish.Options{Settle: -1, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pt.Close() })
	m, err := host.LoadMachine("fmq_server.toml")
	if err != nil {
		tb.Fatal(err)
	}
	return &serverFixture{machine: m, shared: actions.NewFMQServer(pt, nil), tree: tr}
}

// run feeds one input and checks the well-behaved peer's session.
func (fx *serverFixture) run(t *testing.T, data []byte) {
	snd := &fakeSender{frames: map[string][][]byte{}}
	eng, err := interp.NewServer(fx.machine, interp.Options{
		Sender:   snd,
		Settings: map[string]string{"chunk_size": "4096"},
		NewPeer:  func(string) any { return actions.NewFMQServerPeer(fx.shared) },
		Shared:   fx.shared,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ohai := encode(t, filemq.NewOhai())
	ican := filemq.NewIcanhaz()
	ican.Path = "/"
	ican.Options = map[string]string{"RESYNC": "1", "SYNCED": "1"}
	nom := filemq.NewNom()
	nom.Credit = 6000
	good := [][]byte{ohai, encode(t, ican), encode(t, nom)}

	eng.Input(goodPeer, good[0])
	step := 1
	for n := 0; len(data) >= 3 && n < 64; n++ {
		flags := data[0]
		size := int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		size = min(size, len(data))
		body := data[:size]
		data = data[size:]
		if flags&4 != 0 {
			body = append([]byte{0xAA, 0xA3}, body...)
		}
		eng.Input(fmt.Sprintf("bad%d", flags&3), body)
		if step < len(good) {
			eng.Input(goodPeer, good[step])
			step++
		}
	}
	for ; step < len(good); step++ {
		eng.Input(goodPeer, good[step])
	}
	// Grant credit until the synced marker arrives (bounded: the tree is
	// 16 KB and each NOM grants 6000 bytes).
	files := map[string][]byte{}
	done := map[string]bool{}
	seen, synced := 0, false
	for round := 0; round < 20 && !synced; round++ {
		for ; seen < len(snd.frames[goodPeer]); seen++ {
			synced = fx.checkFrame(t, snd.frames[goodPeer], seen, files, done) || synced
		}
		if !synced {
			eng.Input(goodPeer, good[2])
		}
	}
	if !synced {
		t.Fatalf("the well-behaved peer never got the synced marker; it received %d frames", len(snd.frames[goodPeer]))
	}
	for name, want := range fx.tree {
		vp := "/" + name
		if !done[vp] || !bytes.Equal(files[vp], want) {
			t.Fatalf("the well-behaved peer got %q incomplete or wrong (%d bytes, done %v)", vp, len(files[vp]), done[vp])
		}
	}
	if len(done) != len(fx.tree) {
		t.Fatalf("the well-behaved peer got files %v, want %d files", sortedKeys(done), len(fx.tree))
	}
}

// checkFrame decodes the i-th frame sent to the good peer and applies it;
// it reports the synced marker.
func (fx *serverFixture) checkFrame(t *testing.T, frames [][]byte, i int, files map[string][]byte, done map[string]bool) bool {
	m, err := filemq.Decode(frames[i], nil)
	if err != nil {
		t.Fatalf("frame %d to the well-behaved peer does not decode: %v", i, err)
	}
	switch i {
	case 0:
		if _, ok := m.(*filemq.OhaiOk); !ok {
			t.Fatalf("first frame to the well-behaved peer is %s, want OHAI-OK", m.Info().Name)
		}
		return false
	case 1:
		if _, ok := m.(*filemq.IcanhazOk); !ok {
			t.Fatalf("second frame to the well-behaved peer is %s, want ICANHAZ-OK", m.Info().Name)
		}
		return false
	}
	c, ok := m.(*filemq.Cheezburger)
	if !ok {
		t.Fatalf("frame %d to the well-behaved peer is %s, want CHEEZBURGER", i, m.Info().Name)
	}
	if c.Sequence != uint64(i-2) {
		t.Fatalf("CHEEZBURGER sequence %d, want %d", c.Sequence, i-2)
	}
	switch c.Operation {
	case actions.OpSynced:
		return true
	case actions.OpCreate:
		if int(c.Offset) != len(files[c.Filename]) {
			t.Fatalf("%q: chunk at offset %d after %d bytes", c.Filename, c.Offset, len(files[c.Filename]))
		}
		files[c.Filename] = append(files[c.Filename], c.Chunk...)
		if c.EOF == 1 {
			done[c.Filename] = true
		}
		return false
	}
	t.Fatalf("unexpected operation %d", c.Operation)
	return false
}

func fuzzSeeds(tb testing.TB) [][]byte {
	strip := func(b []byte) []byte { return b[2:] } // flags&4 adds the signature back
	ohai := encode(tb, filemq.NewOhai())
	bad := filemq.NewOhai()
	bad.Version = 1
	ican := filemq.NewIcanhaz()
	ican.Path = "/dir"
	ican.Options = map[string]string{"RESYNC": "1", "SYNCED": "1", "INLINE-EOF": "1"}
	ican.Cache = map[string]string{"/a.txt": "00", "big.bin": "0000000000000000000000000000000000000000@99999999"}
	nom := filemq.NewNom()
	nom.Credit = 1<<64 - 1
	badPath := filemq.NewIcanhaz()
	badPath.Path = "../etc"
	y := filemq.NewYarly()
	y.Mechanism, y.Response = "PLAIN", []byte("\x00u\x00p")
	var seeds [][]byte
	session := func(peer byte, bodies ...[]byte) []byte {
		var out []byte
		for _, b := range bodies {
			out = append(out, fuzzRecord(peer|4, strip(b))...)
		}
		return out
	}
	seeds = append(seeds,
		nil,
		session(0, ohai, encode(tb, ican), encode(tb, nom)),
		session(1, ohai, encode(tb, nom), encode(tb, ican)),
		session(2, encode(tb, bad), ohai, ohai),
		session(3, ohai, encode(tb, badPath), encode(tb, filemq.NewHugz()), encode(tb, filemq.NewKthxbai())),
		session(0, encode(tb, y), encode(tb, filemq.NewHugzOk()), encode(tb, filemq.NewCheezburger())),
		append(session(0, ohai, encode(tb, ican)), fuzzRecord(1, []byte{0xAA, 0xA3, 0x07, 0xff})...),
		fuzzRecord(2, []byte{0xAA}),
		fuzzRecord(4|3, []byte{0x05, 0xff, 0xff, 0xff, 0xff}),
	)
	return seeds
}

// FuzzServerFrames: arbitrary frames from misbehaving peers never panic the
// server and never disturb a well-behaved peer's session.
func FuzzServerFrames(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	fx := newServerFixture(f)
	f.Fuzz(func(t *testing.T, data []byte) { fx.run(t, data) })
}
