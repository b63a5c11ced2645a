// Command codecgen generates a Go codec from a message model (spec/*.toml;
// format in spec/model.md). It is run by `go generate ./...` from the
// doc.go of each codec package:
//
//	//go:generate go run ../../cmd/codecgen -model ../../spec/filemq.toml -o filemq_gen.go
//
// It writes the codec (-o) and its golden-vector test (-o with _test.go).
// Problems in the model are printed as file:line:col: message, all at once.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/fmq/fmq/internal/codecgen"
)

func main() {
	model := flag.String("model", "", "message model (TOML)")
	out := flag.String("o", "", "output Go file (its _test.go sibling is written too)")
	pkg := flag.String("pkg", "", "Go package name (default: the protocol name)")
	check := flag.Bool("check", false, "only validate the model")
	flag.Parse()
	if *model == "" || (*out == "" && !*check) || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: codecgen -model spec/x.toml -o codec/x/x_gen.go [-pkg name] | codecgen -check -model spec/x.toml")
		os.Exit(2)
	}
	if err := codecgen.Run(codecgen.RunConfig{Model: *model, Out: *out, Package: *pkg, CheckOnly: *check}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
