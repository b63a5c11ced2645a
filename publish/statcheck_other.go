//go:build !linux

package publish

// unchanged has no fast path on this platform.
func (r *Reader) unchanged() bool { return false }
