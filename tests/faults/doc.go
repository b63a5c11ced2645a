// Package faults holds fault-injection tests of the FileMQ stack (issue 6,
// "faults lose nothing"): a client killed with SIGKILL mid-sync and
// restarted, a server killed and restarted, a full disk on the client, a
// published file changing while it is sent, a hundred clients at once, and
// a server fed arbitrary frames (FuzzServerFrames). The package has no code
// of its own; everything is in its tests.
package faults
