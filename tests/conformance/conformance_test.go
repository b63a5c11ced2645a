// Package conformance runs every script in this directory (spec/conformance.md)
// against fmq's own server and client, started in process.
//
//	go test ./tests/conformance                 all scripts
//	go test ./tests/conformance -run 'Script/credit' -v   one script, with its transcript
//
// A script marked "bug" that still fails is logged (the defect is known);
// one that passes fails the test, so the mark is removed once fixed.
package conformance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fmq/fmq/conform"

	"github.com/fmq/fmq/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScript(t *testing.T) {
	files, err := filepath.Glob("*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f, ".txtar"), func(t *testing.T) {
			t.Parallel()
			s, err := conform.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var tr testutil.LockedBuffer
			res := conform.RunInProcess(ctx, s, conform.Options{Work: t.TempDir(), Transcript: &tr})
			if testing.Verbose() || res.Failed() {
				t.Log("transcript:\n" + tr.String())
			}
			switch res.Status {
			case conform.Pass:
			case conform.Skip:
				t.Skip(res.Err)
			case conform.KnownBug:
				t.Logf("known bug still present: %s\n%v", res.Bug, res.Err)
			default:
				t.Error(res.String())
			}
		})
	}
}
