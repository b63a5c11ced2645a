package host

import (
	"testing"

	"go.uber.org/goleak"
)

// Servers and clients start goroutines (engine, socket pumps, watcher,
// transport): none may outlive Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
