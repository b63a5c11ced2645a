//go:build !linux

package publish

import "os"

// openBeneath: only Linux has openat2; files open through os.Root.
func openBeneath(*os.File, string) (*os.File, bool) { return nil, false }

func openDir(*os.Root) *os.File { return nil }
