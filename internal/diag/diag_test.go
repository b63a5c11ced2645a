package diag

import (
	"errors"
	"fmt"
	"testing"
)

func TestIndexTOML(t *testing.T) {
	src := `# comment
[a]
x = 1 # trailing
"quoted key" = 'lit'
s = """multi
line"""
e = "a\"b"
d.e = 2
[[t]]
arr = [ 1, [2, 3], { k = "v}", j = [4] } ]
[[t]]
y = "plain"
[t.sub]
z = true
`
	ix := IndexTOML(src)
	for _, tc := range []struct {
		path     []string
		key, val string
	}{
		{[]string{"a"}, "2:1", "2:1"},
		{[]string{"a", "x"}, "3:1", "3:5"},
		{[]string{"a", "quoted key"}, "4:1", "4:17"},
		{[]string{"a", "s"}, "5:1", "5:8"},
		{[]string{"a", "d", "e"}, "8:1", "8:7"},
		{[]string{"t", "0"}, "9:1", "9:1"},
		{[]string{"t", "0", "arr", "1", "1"}, "10:16", "10:16"},
		{[]string{"t", "0", "arr", "2", "k"}, "10:22", "10:27"},
		{[]string{"t", "0", "arr", "2", "j", "0"}, "10:37", "10:37"},
		{[]string{"t", "1", "y"}, "12:1", "12:6"},
		{[]string{"t", "1", "sub"}, "13:1", "13:1"},
		{[]string{"t", "1", "sub", "z"}, "14:1", "14:5"},
		{[]string{"t", "1", "sub", "nothing"}, "13:1", "13:1"}, // the nearest ancestor
	} {
		k, v := ix.Key(tc.path...), ix.Val(tc.path...)
		if got := fmt.Sprintf("%d:%d", k.Line, k.Col); got != tc.key {
			t.Errorf("key %v at %s, want %s", tc.path, got, tc.key)
		}
		if got := fmt.Sprintf("%d:%d", v.Line, v.Col); got != tc.val {
			t.Errorf("value %v at %s, want %s", tc.path, got, tc.val)
		}
	}
	if !ix.Plain("t", "1", "y") || ix.Plain("a", "e") || ix.Plain("a", "s") {
		t.Error("plain: a one-line string without escapes only")
	}
	n := 0
	ix.Keys(func([]string, Pos) { n++ })
	if n < 15 {
		t.Errorf("%d keys indexed", n)
	}
}

func TestErrorList(t *testing.T) {
	l := ErrorList{
		{File: "b.toml", Pos: Pos{Line: 1, Col: 1}, Msg: "b"},
		{File: "a.toml", Pos: Pos{Line: 2, Col: 3}, Msg: "late"},
		{File: "a.toml", Pos: Pos{Line: 2, Col: 1}, Msg: "early"},
		{File: "a.toml", Pos: Pos{Line: 2, Col: 1}, Msg: "early"},
		{File: "a.toml", Msg: "no position"},
		{File: "a.toml", Pos: Pos{Line: 4}, Msg: "line only"},
	}
	err := l.Err()
	want := "a.toml: no position\na.toml:2:1: early\na.toml:2:3: late\na.toml:4: line only\nb.toml:1:1: b"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	var el ErrorList
	if !errors.As(err, &el) || len(el) != 5 {
		t.Errorf("Err() = %T with %d entries", err, len(el))
	}
	if (ErrorList{}).Err() != nil {
		t.Error("empty list is not nil")
	}
}
