//go:build !linux

// The benchmark harness measures through Linux interfaces (/proc, rusage
// of reaped children, statfs, uname); elsewhere it only says so.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "bench: the harness runs on Linux only (this is %s/%s)\n", runtime.GOOS, runtime.GOARCH)
	os.Exit(2)
}
