package interp_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fmq/fmq/actions"
	"github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

// batchSender records sends, holds and flushes in order.
type batchSender struct{ log []string }

func (s *batchSender) Send(peer string, _ []byte) error {
	s.log = append(s.log, "send "+peer)
	return nil
}
func (s *batchSender) Hold(peer string)  { s.log = append(s.log, "hold "+peer) }
func (s *batchSender) Flush(peer string) { s.log = append(s.log, "flush "+peer) }

// A Batcher is asked to hold a peer's messages from the second one a
// macrostep sends on, and to flush them when the macrostep ends; a
// macrostep that sends one message neither holds nor flushes.
func TestBatcherHoldsAMacrostepsBurst(t *testing.T) {
	src := strings.Replace(quotaMachine, `on.HUGZ = { do = ["send HUGZ-OK"] }`,
		`on.HUGZ = { do = ["send HUGZ-OK", "send HUGZ-OK", "send HUGZ-OK"] }`, 1)
	if src == quotaMachine {
		t.Fatal("test machine not patched")
	}
	path := filepath.Join(t.TempDir(), "quota.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := interp.Load(path, interp.LoadOptions{Library: actions.Lookup})
	if err != nil {
		t.Fatal(err)
	}
	s := &batchSender{}
	e, err := interp.NewServer(m, interp.Options{Sender: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []interface{ Append([]byte) ([]byte, error) }{ohai("ada"), nom.NewHugz(), icanhaz("tea", nil)} {
		b, err := msg.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Input("a", b)
	}
	want := []string{
		"send a",                                          // OHAI-OK alone
		"send a", "hold a", "send a", "send a", "flush a", // three HUGZ-OK
		"send a", // CHEEZBURGER alone
	}
	if !slices.Equal(s.log, want) {
		t.Fatalf("sender saw %q, want %q", s.log, want)
	}
}
