//go:build !unix

package inbox

import "os"

// lockFile is a no-op where flock is not available: two clients on one
// inbox are not detected there.
func lockFile(*os.File) error { return nil }
