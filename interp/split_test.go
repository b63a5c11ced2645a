package interp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// splitSender records what the engine sends, whole or as head and tail.
type splitSender struct {
	whole, split [][]byte
	tails        []int
}

func (s *splitSender) Send(_ string, body []byte) error {
	s.whole = append(s.whole, append([]byte(nil), body...))
	return nil
}

func (s *splitSender) SendSplit(_ string, head, tail []byte) error {
	s.split = append(s.split, append(append([]byte(nil), head...), tail...))
	s.tails = append(s.tails, len(tail))
	return nil
}

// A large message whose last field is a chunk goes to a SplitSender as its
// head and the chunk (not copied into one frame); small ones, and every one
// when a wire log needs whole frames, go to Send.
func TestSendSplitLargeChunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quota.toml")
	if err := os.WriteFile(path, []byte(quotaMachine), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := interp.Load(path, interp.LoadOptions{Library: actions.Lookup})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("soup!", 40<<10) // 200 KiB: over the engine's small-frame size
	for _, wire := range []bool{false, true} {
		s := &splitSender{}
		opts := interp.Options{Sender: s, Settings: map[string]string{"max_orders": "5"}}
		var lines int
		if wire {
			opts.Wire = func(string) { lines++ }
		}
		e, err := interp.NewServer(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		if e.SplitSends() == wire {
			t.Fatalf("wire %v: SplitSends() = %v", wire, e.SplitSends())
		}
		for _, msg := range []interface{ Append([]byte) ([]byte, error) }{ohai("ada"), icanhaz("tea", nil), icanhaz(big, nil)} {
			b, err := msg.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			e.Input("a", b)
		}
		frames := s.whole
		if !wire {
			if len(s.split) != 1 || s.tails[0] != len(big) {
				t.Fatalf("split sends %d (tails %v), want 1 with the %d-byte chunk as its tail", len(s.split), s.tails, len(big))
			}
			frames = append(frames, s.split...)
		} else if len(s.split) != 0 || lines == 0 {
			t.Fatalf("with a wire log: %d split sends, %d wire lines", len(s.split), lines)
		}
		if len(frames) != 3 {
			t.Fatalf("wire %v: %d frames sent, want 3", wire, len(frames))
		}
		c, err := m.Proto.Decode(frames[2], nil)
		if err != nil {
			t.Fatal(err)
		}
		cb, ok := c.(*nom.Cheezburger)
		if !ok {
			t.Fatalf("wire %v: big order answered with %T", wire, c)
		}
		if string(cb.Body) != big || cb.Serial != 2 {
			t.Fatalf("wire %v: big order: %d-byte body, serial %d", wire, len(cb.Body), cb.Serial)
		}
	}
}
