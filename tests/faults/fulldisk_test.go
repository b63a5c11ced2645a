package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fmq/fmq/host"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test where the machine does not allow it (not root, no mount namespace).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk test needs one", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func resizeTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// fullDiskFixture publishes v1, syncs it into a 2 MiB tmpfs inbox, then
// publishes v2 (too big to sit next to v1 there) and returns the server
// serving v2.
func fullDiskFixture(t *testing.T) (pub, in string, v1, v2 tree, srv *host.Server) {
	pub = t.TempDir()
	v1 = makeTree(t, pub, 11, 1, 600_000, 600_000)
	in = filepath.Join(mountTmpfs(t, 2<<20), "inbox")
	first := startServer(t, pub, nil)
	p := start(t, syncArgs(first.Endpoint(), in)...)
	if _, err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("first sync: %v\n%s", err, tail(p.Stderr.String()))
	}
	sameTree(t, in, v1)
	first.Close()

	v2 = tree{}
	for name, b := range v1 {
		v2[name] = b
	}
	big := makeTree(t, t.TempDir(), 12, 1, 1_800_000, 1_800_000)
	for name, b := range big {
		if len(b) > 0 {
			v2[name] = b // same name as v1's file, new content, three times the size
		}
	}
	v2.write(t, pub)
	return pub, in, v1, v2, startServer(t, pub, nil)
}

// TestFullDiskClient: the client's inbox is a 2 MiB tmpfs; the new version
// of a file does not fit next to the old one. The sync must fail with a
// clear "disk full" error, keep the previous good copy under the real name
// (and no half file anywhere visible), and resume the kept partial once
// the file system has room again.
func TestFullDiskClient(t *testing.T) {
	_, in, v1, v2, srv := fullDiskFixture(t)
	p := start(t, syncArgs(srv.Endpoint(), in)...)
	s, err := p.wait(t, 60*time.Second)
	stderr := p.Stderr.String()
	if err == nil {
		t.Fatalf("sync into a full disk succeeded: %+v", s)
	}
	if !strings.Contains(stderr, "disk full") || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, "could not be stored") {
		t.Errorf("the error does not say the disk is full:\n%s", tail(stderr))
	}
	if s.Problems == 0 {
		t.Errorf("summary reports no problem: %+v", s)
	}
	st := checkInboxParts(t, in, v1, v2) // the previous good copy, byte for byte
	for name := range v1 {
		if _, ok := st.complete[name]; !ok {
			t.Errorf("previous copy of %q is gone", name)
		}
	}
	kept := st.partialSum
	if kept == 0 {
		t.Errorf("no partial kept for resume: %+v", st)
	}
	t.Logf("disk full: %d problems over %d sessions; previous copy kept; partial of %s kept", s.Problems, s.Sessions, fmtBytes(kept))

	resizeTmpfs(t, filepath.Dir(in), 8<<20)
	p = start(t, syncArgs(srv.Endpoint(), in)...)
	s, err = p.wait(t, 60*time.Second)
	if err != nil {
		t.Fatalf("sync after space returned: %v\n%s", err, tail(p.Stderr.String()))
	}
	sameTree(t, in, v2)
	if s.ResumedBytes != kept || s.Bytes != int64(len(biggest(v2)))-kept {
		t.Errorf("after space returned: %d bytes received, %d resumed; want the partial (%d) resumed and only the rest sent", s.Bytes, s.ResumedBytes, kept)
	}
}

func biggest(tr tree) []byte {
	var out []byte
	for _, b := range tr {
		if len(b) > len(out) {
			out = b
		}
	}
	return out
}

// TestFullDiskRunningClient: the same with a client that keeps running
// (fmqrun sync without --once, here in-process): once there is room again
// it must finish the file by itself, without a restart.
func TestFullDiskRunningClient(t *testing.T) {
	_, in, v1, v2, srv := fullDiskFixture(t)
	cl, err := host.StartClient(host.ClientConfig{Connect: srv.Endpoint(), Inbox: in, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for cl.Stats().Problems.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no write failure reported within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkInboxParts(t, in, v1, v2)
	resizeTmpfs(t, filepath.Dir(in), 8<<20)
	want := biggest(v2)
	name := ""
	for n, b := range v2 {
		if len(b) == len(want) {
			name = n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		got, _ := os.ReadFile(filepath.Join(in, filepath.FromSlash(name)))
		if bytes.Equal(got, want) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a running client did not finish %q within 20s after space returned (problems %d, sessions %d)", name, cl.Stats().Problems.Load(), cl.Sessions())
		case <-time.After(20 * time.Millisecond):
		}
	}
	sameTree(t, in, v2)
}
