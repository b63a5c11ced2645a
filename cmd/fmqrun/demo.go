package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/fmq/fmq/host"
	"github.com/fmq/fmq/publish"
)

//go:embed demo
var demoFS embed.FS

func init() {
	register(&command{
		Name:    "demo",
		Usage:   "[--keep] [--size BYTES]",
		Summary: "publish an embedded sample tree and sync it end to end on 127.0.0.1",
		Run:     runDemo,
	})
}

func runDemo(ctx context.Context, env *Env, args []string) int {
	fl := newFlags(env, "demo")
	fl.SetOutput(env.Stderr)
	keep := fl.Bool("keep", false, "keep the temporary directories and print where they are")
	size := fl.Int64("size", 24<<20, "size of the generated large file, bytes")
	fl.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fmqrun demo [flags]\n\nServes an embedded sample tree and syncs it into a temporary inbox over 127.0.0.1,\nthen checks both trees are identical (SHA-256).\n\nflags:\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil || fl.NArg() > 0 {
		return flagExit(err)
	}
	if *size < 0 || *size > 1<<40 {
		fmt.Fprintf(env.Stderr, "fmqrun demo: --size %d: want 0 to 1 TiB of bytes\n", *size)
		return 2
	}
	if err := demo(ctx, env, *size, *keep); err != nil {
		fmt.Fprintln(env.Stderr, "fmqrun demo:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, env *Env, size int64, keep bool) error {
	work, err := os.MkdirTemp("", "fmq-demo-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(env.Stdout, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	pub, in := filepath.Join(work, "published"), filepath.Join(work, "inbox")
	if err := writeDemoTree(pub, size); err != nil {
		return err
	}
	srv, err := host.StartServer(host.ServerConfig{Publish: []publish.Mount{{Dir: pub, Alias: "/"}}, Bind: "tcp://127.0.0.1:0", Logger: quietLogger(env)})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(env.Stdout, "serving %s on %s (%d files)\n", pub, srv.Endpoint(), srv.Tree().Len())
	sum, err := syncRun(ctx, env, host.ClientConfig{Connect: srv.Endpoint(), Subscribe: []string{"/"}, Inbox: in, Once: true, Logger: quietLogger(env)}, "auto", 0, quietLogger(env))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "synced %d files, %s, in %s\n", sum.Files, humanBytes(sum.Bytes), time.Duration(sum.ElapsedMS)*time.Millisecond)
	a, err := treeDigests(pub)
	if err != nil {
		return err
	}
	b, err := treeDigests(in)
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("inbox holds %d files, published %d", len(b), len(a))
	}
	for name, d := range a {
		if !bytes.Equal(b[name], d) {
			return fmt.Errorf("%s differs after sync", name)
		}
	}
	fmt.Fprintf(env.Stdout, "trees identical: %d files, SHA-256 checked\n", len(a))
	return nil
}

// writeDemoTree copies the embedded tree and adds generated binary files.
func writeDemoTree(dir string, size int64) error {
	err := fs.WalkDir(demoFS, "demo", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := demoFS.ReadFile(p)
		if err != nil {
			return err
		}
		return writeDemoFile(filepath.Join(dir, p[len("demo/"):]), data)
	})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	gen := func(n int64) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for i := range 20 {
		if err := writeDemoFile(filepath.Join(dir, "photos", fmt.Sprintf("img%02d.raw", i)), gen(int64(4096+i*1000))); err != nil {
			return err
		}
	}
	if err := writeDemoFile(filepath.Join(dir, "big", "archive.bin"), gen(size)); err != nil {
		return err
	}
	// Published files must have settled: date them in the past.
	old := time.Now().Add(-time.Minute)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
}

func writeDemoFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// treeDigests maps every visible regular file under dir to its SHA-256.
func treeDigests(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name()[0] == '.' && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = sum[:]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quietLogger shows warnings and errors only.
func quietLogger(env *Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncWriter{w: env.Stderr}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
