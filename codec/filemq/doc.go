// Package filemq is the FILEMQ codec, generated from spec/filemq.toml by
// internal/codecgen (contract: spec/filemq.md; model format: spec/model.md).
//
// Every message is one Go type (Ohai, Nom, Cheezburger, ...) with Append,
// Decode and Length; Decode (or Protocol.Decode) turns any frame into the
// right type or a *codec.Error, and never panics. Decoded chunks alias the
// frame. Importing the package registers it as codec.Lookup("filemq").
package filemq

//go:generate go run ../../cmd/codecgen -model ../../spec/filemq.toml -o filemq_gen.go
