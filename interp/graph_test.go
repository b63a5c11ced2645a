package interp_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/interp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphGolden(t *testing.T) {
	for _, f := range []string{"../machines/nom_server.toml", "../machines/nom_client.toml", "testdata/sem_server.toml"} {
		lib := loadOpts
		if strings.Contains(f, "sem_") {
			lib = interp.LoadOptions{Library: semLib}
		}
		m, err := interp.Load(f, lib)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".toml")
		for ext, write := range map[string]func(*bytes.Buffer, *interp.Machine) error{
			"dot": func(b *bytes.Buffer, m *interp.Machine) error { return interp.WriteDot(b, m) },
			"mmd": func(b *bytes.Buffer, m *interp.Machine) error { return interp.WriteMermaid(b, m) },
		} {
			var b, again bytes.Buffer
			if err := write(&b, m); err != nil {
				t.Fatal(err)
			}
			if err := write(&again, m); err != nil || again.String() != b.String() {
				t.Errorf("%s.%s: output not stable", base, ext)
			}
			golden := filepath.Join("testdata/graph", base+"."+ext)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("%s differs from golden:\n%s", golden, b.String())
			}
		}
	}
}
