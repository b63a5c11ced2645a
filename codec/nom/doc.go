// Package nom is the codec of the talk's nom-protocol, generated from
// spec/nom.toml by internal/codecgen. fmq does not speak it: it exists to
// show the generator is generic (other signature, ids and field types).
// Importing the package registers it as codec.Lookup("nom").
package nom

//go:generate go run ../../cmd/codecgen -model ../../spec/nom.toml -o nom_gen.go
