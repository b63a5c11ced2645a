// Package tally is the codec of TALLY, the protocol spec/tutorial.md builds
// from scratch, generated from spec/tally.toml by internal/codecgen.
// Importing the package registers it as codec.Lookup("tally").
package tally

//go:generate go run ../../cmd/codecgen -model ../../spec/tally.toml -o tally_gen.go
