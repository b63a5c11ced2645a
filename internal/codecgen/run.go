package codecgen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RunConfig is what cmd/codecgen passes to Run.
type RunConfig struct {
	Model     string // model file, relative to the working directory
	Out       string // output .go file; "" with CheckOnly
	Package   string // Go package name; "" means the protocol name
	CheckOnly bool
}

// TestFileName returns the golden-test file written beside out.
func TestFileName(out string) string {
	return strings.TrimSuffix(out, ".go") + "_test.go"
}

// Run loads, validates and generates, writing files only when their content
// changes. Paths in the header and in error positions are relative to the
// module root (the directory of the nearest go.mod), so output is the same
// from any working directory.
func Run(cfg RunConfig) error {
	src, err := os.ReadFile(cfg.Model)
	if err != nil {
		return err
	}
	root, err := moduleRoot(filepath.Dir(cfg.Model))
	if err != nil {
		// Outside a module: paths are shown relative to the working directory.
		if root, err = os.Getwd(); err != nil {
			return err
		}
	}
	modelRel, err := relTo(root, cfg.Model)
	if err != nil {
		return err
	}
	m, err := Load(modelRel, src)
	if err != nil {
		return err
	}
	if cfg.CheckOnly {
		return nil
	}
	outRel, err := relTo(root, cfg.Out)
	if err != nil {
		return err
	}
	code, test, err := Generate(m, Config{Package: cfg.Package, Command: Command(modelRel, outRel, cfg.Package)})
	if err != nil {
		return err
	}
	if err := writeIfChanged(cfg.Out, code); err != nil {
		return err
	}
	return writeIfChanged(TestFileName(cfg.Out), test)
}

// Command is the canonical generating command recorded in headers.
func Command(modelRel, outRel, pkg string) string {
	c := "go run ./cmd/codecgen -model " + modelRel + " -o " + outRel
	if pkg != "" {
		c += " -pkg " + pkg
	}
	return c
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}

// moduleRoot finds the nearest directory at or above dir holding go.mod.
func moduleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("codecgen: no go.mod at or above %s", abs)
		}
	}
}

func relTo(root, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}
