//go:build !linux

package inbox

import (
	"errors"
	"os"
	"time"
)

// lutimes is not implemented here: a link keeps the time it was made.
func lutimes(*os.Root, string, string, time.Time) error { return errors.ErrUnsupported }
