package actions

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/codec/filemq"
	"github.com/fmq/fmq/interp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLookupIsACopy: a caller changing what Lookup gave it changes nothing
// for the next caller.
func TestLookupIsACopy(t *testing.T) {
	a := Lookup(filemq.ProtocolName, interp.RoleServer)
	if a == nil || len(a.Actions) == 0 {
		t.Fatal("no FILEMQ server library")
	}
	n := len(a.Actions)
	for name := range a.Actions {
		delete(a.Actions, name)
	}
	a.Actions["injected"] = interp.ActionSpec{}
	b := Lookup(filemq.ProtocolName, interp.RoleServer)
	if len(b.Actions) != n {
		t.Errorf("second Lookup sees %d actions, want %d", len(b.Actions), n)
	}
	if _, ok := b.Actions["injected"]; ok {
		t.Error("an action injected through one Lookup is seen by the next")
	}
}
