package filemq

import (
	"testing"

	"github.com/expr-lang/expr"
)

// TestExprFieldNames: guards written against model field names work on the
// generated types (the interpreter compiles guards like these).
func TestExprFieldNames(t *testing.T) {
	type env struct {
		Msg *Cheezburger `expr:"msg"`
	}
	prog, err := expr.Compile(`msg.eof == 1 && msg.filename == "/a" && msg.offset + len(msg.chunk) == 7 && msg.headers.SIZE == "7"`,
		expr.Env(env{}), expr.AsBool())
	if err != nil {
		t.Fatal(err)
	}
	m := &Cheezburger{EOF: 1, Filename: "/a", Offset: 4, Chunk: []byte("abc"), Headers: map[string]string{"SIZE": "7"}}
	out, err := expr.Run(prog, env{Msg: m})
	if err != nil || out != true {
		t.Fatalf("guard = %v, %v", out, err)
	}
	if _, err := expr.Compile(`msg.EOF == 1`, expr.Env(env{})); err == nil {
		t.Error("Go field name accepted; guards must use model names")
	}
}
