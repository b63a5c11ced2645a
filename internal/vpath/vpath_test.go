package vpath

import (
	"strings"
	"testing"
)

func TestProblem(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxComponent+1)
	for p, want := range map[string]string{
		"/": "", "/a": "", "/a/b.txt": "", "/photos/2024/x-y_z": "", "/a b/ü": "",
		"":                                    "empty",
		"a":                                   "start with",
		"/a/":                                 "not clean",
		"/a//b":                               "not clean",
		"/a/./b":                              `"." component`,
		"/../etc":                             `".." component`,
		"/a/..":                               `".." component`,
		"/.secret":                            "hidden",
		"/a/.b":                               "hidden",
		"/a\\b":                               "backslash",
		"/a\x00":                              "NUL",
		"/a\nb":                               "control",
		"/a\x7f":                              "control",
		long:                                  "longer than 240",
		"/" + strings.Repeat("a/", MaxPath/2): "longer than 4096",
	} {
		got := Problem(p)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("Problem(%.40q) = %q, want %q", p, got, want)
		}
		if err := Check(p); (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%.40q) = %v", p, err)
		}
	}
}
