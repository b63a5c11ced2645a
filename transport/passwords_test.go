package transport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordFile(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	text := "# logins\n\nada:lovelace\n  # indented comment\nbob:" + string(hash) + "\ncolon:a:b:c\r\nempty:\n"
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	pf, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if pf.Len() != 4 {
		t.Fatalf("%d logins", pf.Len())
	}
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{
		{"ada", "lovelace", true}, {"ada", "Lovelace", false}, {"ada", "", false},
		{"bob", "s3cret", true}, {"bob", string(hash), false},
		{"colon", "a:b:c", true}, {"empty", "", true}, {"empty", "x", false},
		{"eve", "", false}, {"", "", false},
	} {
		if got := pf.Check(c.user, c.pass); got != c.ok {
			t.Errorf("Check(%q, %q) = %v", c.user, c.pass, got)
		}
	}
}

func TestPasswordFileErrors(t *testing.T) {
	text := "ok:1\nno colon here\n:nouser\nok:2\nbad:$2a$10$short\n" + strings.Repeat("u", 256) + ":p\n"
	_, err := ParsePasswords(strings.NewReader(text), "pw.txt")
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{"pw.txt:2: missing ':'", "pw.txt:3: empty login", `pw.txt:4: duplicate login "ok"`, "pw.txt:5: bad bcrypt hash", "pw.txt:6: login or password longer"}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("errors:\n%v", err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d: %q, want prefix %q", i, lines[i], w)
		}
	}
	if _, err := LoadPasswordFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}
