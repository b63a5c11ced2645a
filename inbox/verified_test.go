package inbox

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fmq/fmq/internal/chunksum"
)

// receiveVerified runs a transfer with a digest on every chunk (the last
// one's replaced by lastDigest when not empty).
func receiveVerified(t *testing.T, ib *Inbox, vpath string, content []byte, from int64, step int, headers map[string]string, corrupt int) error {
	t.Helper()
	p, err := ib.BeginVerified(vpath, from)
	if err != nil {
		return err
	}
	if !p.Verified() {
		t.Fatal("BeginVerified made a plain partial")
	}
	i := 0
	for off := from; off < int64(len(content)); off += int64(step) {
		end := min(off+int64(step), int64(len(content)))
		chunk := append([]byte(nil), content[off:end]...)
		d := chunksum.Of(chunk).String()
		if i == corrupt {
			chunk[0] ^= 1 // damaged after the server's digest
		}
		if err := p.WriteChunk(off, chunk, d, nil); err != nil {
			return err
		}
		i++
	}
	return p.Finish(headers)
}

func TestVerifiedTransfer(t *testing.T) {
	d := t.TempDir()
	ib := open(t, d)
	// Chunks below and above asyncHashMin: checked in line and on the hasher.
	content := []byte(strings.Repeat("0123456789abcdef", 40<<10))
	for _, step := range []int{1000, asyncHashMin + 7} {
		if err := receiveVerified(t, ib, "/v", content, 0, step, hdr(content), -1); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if readFile(t, filepath.Join(d, "v")) != string(content) {
			t.Fatal("content differs")
		}
		if e, _ := ib.Cached("/v"); e.SHA1 != sha(content) {
			t.Fatalf("cache has %q", e.SHA1)
		}
	}
	// Resume: the prefix written by a plain transfer is not read again; the
	// cache takes the server's SHA1.
	p, err := ib.Begin("/r", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(0, content[:5000]); err != nil {
		t.Fatal(err)
	}
	p.Abort(true)
	if err := receiveVerified(t, ib, "/r", content, 5000, 3000, hdr(content), -1); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(d, "r")) != string(content) {
		t.Fatal("resumed content differs")
	}
	// A zero-length file is one empty chunk with its digest.
	p, _ = ib.BeginVerified("/empty", 0)
	if err := p.WriteChunk(0, nil, chunksum.Of(nil).String(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(hdr(nil)); err != nil {
		t.Fatal(err)
	}
	// Mixing the two kinds of writes is refused.
	p, _ = ib.BeginVerified("/mix", 0)
	if err := p.WriteOwned(0, []byte("x"), nil); err == nil {
		t.Error("WriteOwned on a verified partial accepted")
	}
	p.Abort(false)
}

func TestVerifiedFailures(t *testing.T) {
	content := []byte(strings.Repeat("fmq chunk digest ", 30<<10))
	for _, c := range []struct {
		name    string
		step    int
		corrupt int
		headers map[string]string
		header  string
	}{
		{"bad chunk in line", 1000, 3, hdr(content), chunksum.Header},
		{"bad chunk on the hasher", asyncHashMin + 1, 1, hdr(content), chunksum.Header},
		{"bad last chunk", asyncHashMin + 1, 3, hdr(content), chunksum.Header},
		{"no SHA1 to record", 1000, -1, map[string]string{"SIZE": "510"}, "SHA1"},
		{"wrong size", 1000, -1, map[string]string{"SHA1": sha(content), "SIZE": "3"}, "SIZE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			ib := open(t, d)
			old := []byte("good old copy")
			if err := receive(t, ib, "/v", old, 0, 5, hdr(old)); err != nil {
				t.Fatal(err)
			}
			err := receiveVerified(t, ib, "/v", content, 0, c.step, c.headers, c.corrupt)
			var ve *VerifyError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Header, c.header) {
				t.Fatalf("err = %v", err)
			}
			checkRejected(t, ib, d, "v", old)
		})
	}
	// A chunk without a usable digest fails at once.
	ib := open(t, t.TempDir())
	for _, bad := range []string{"", "nothex"} {
		p, err := ib.BeginVerified("/m", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteChunk(0, []byte("abc"), bad, nil); !errors.Is(err, ErrVerify) {
			t.Fatalf("digest %q: %v", bad, err)
		}
	}
}

// checkRejected: after a failed verification of dir/name, the old copy
// (and its cache entry) is intact and no partial is left.
func checkRejected(t *testing.T, ib *Inbox, dir, name string, old []byte) {
	t.Helper()
	if readFile(t, filepath.Join(dir, name)) != string(old) {
		t.Fatal("old copy lost")
	}
	if exists(filepath.Join(dir, "."+name+PartSuffix)) {
		t.Fatal("rejected partial kept")
	}
	if e, _ := ib.Cached("/" + name); e.SHA1 != sha(old) {
		t.Fatal("cache changed")
	}
}
