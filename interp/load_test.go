package interp_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/actions"
	_ "github.com/fmq/fmq/codec/nom"
	"github.com/fmq/fmq/interp"
)

var loadOpts = interp.LoadOptions{Library: actions.Lookup}

func TestLoadNomMachines(t *testing.T) {
	for _, f := range []string{"../machines/nom_server.toml", "../machines/nom_client.toml"} {
		m, err := interp.Load(f, loadOpts)
		if err != nil {
			t.Fatalf("%s:\n%v", f, err)
		}
		if m.Initial == nil || len(m.States) < 3 {
			t.Fatalf("%s: bad machine %+v", f, m)
		}
	}
}

// TestBadMachines loads every file in testdata/bad and compares the whole
// error list with the file's "# want: LINE:COL: message" lines.
func TestBadMachines(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) < 25 {
		t.Fatalf("want at least 25 malformed machines, have %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(src), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, f+":"+w)
				}
			}
			if len(want) == 0 {
				t.Fatal("no # want: lines")
			}
			_, err = interp.Load(f, loadOpts)
			var list interp.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want an ErrorList, got %T %v", err, err)
			}
			got := strings.Split(list.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}
}
