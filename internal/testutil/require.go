package testutil

import (
	"os"
	"testing"
)

// Missing reports that a test cannot run because something outside Go
// (a Debian package, a tool) is missing. Under CI (the CI environment
// variable set, as .ci/run does) the test fails, so that CI cannot pass by
// skipping; elsewhere it skips, saying why.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: a test CI needs cannot be skipped)", why)
	}
	t.Skip(why)
}
