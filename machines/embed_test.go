package machines

import (
	"os"
	"strings"
	"testing"
)

// A file named like an embedded machine in the working directory is used
// only when named; "embedded:NAME" (the hosts' default) never picks it up.
func TestSourceNoSilentPickUp(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("fmq_server.toml", []byte("# local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, src, err := Source(EmbeddedPrefix + "fmq_server.toml")
	if err != nil || name != "embedded:fmq_server.toml" || strings.HasPrefix(string(src), "# local") {
		t.Fatalf("embedded: %q %v %.20q", name, err, src)
	}
	name, src, err = Source("fmq_server.toml")
	if err != nil || name != "fmq_server.toml" || string(src) != "# local\n" {
		t.Fatalf("named file: %q %v %.20q", name, err, src)
	}
	name, _, err = Source("nom_client.toml")
	if err != nil || name != "embedded:nom_client.toml" {
		t.Fatalf("embedded fallback: %q %v", name, err)
	}
	if _, _, err := Source("embedded:nope.toml"); err == nil || !strings.Contains(err.Error(), "fmq_client.toml") {
		t.Fatalf("unknown embedded name: %v", err)
	}
}
