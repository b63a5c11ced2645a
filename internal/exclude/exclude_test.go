package exclude

import "testing"

func TestMatchPath(t *testing.T) {
	m, err := Compile([]string{"*.tmp", ".git/", "/build", "docs/*.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"a.tmp":          true,
		"/deep/x/a.tmp":  true,
		"a.tmp.txt":      false,
		".git/config":    true, // under an excluded directory
		"x/.git/HEAD":    true,
		".git":           false, // a file named .git: the pattern is for directories
		"build":          true,
		"build/out.o":    true,
		"x/build/out.o":  false, // anchored at the root
		"docs/a.pdf":     true,
		"docs/sub/a.pdf": false,
		"src/main.go":    false,
	} {
		if got := m.MatchPath(rel); got != want {
			t.Errorf("MatchPath(%q) = %v, want %v", rel, got, want)
		}
	}
	var none *Matcher
	if none.MatchPath("a.tmp") || !none.Empty() {
		t.Error("a nil Matcher excludes")
	}
	for _, bad := range []string{"/", "[", "//"} {
		if _, err := Compile([]string{bad}); err == nil {
			t.Errorf("Compile(%q): no error", bad)
		}
	}
}
