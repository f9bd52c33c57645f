// Package proctest holds what the process-level harnesses share: the
// end-to-end, multi-host and fault tests and the demo build the module's
// commands with the go command, start them as child processes with a clean
// environment, wait for a node's "listening on" line and point clients at
// loopback addresses nothing listens on.
//
// It imports neither the testing package nor any command-line library, so
// that programs such as examples/demo can use it as well as tests.
package proctest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot returns the directory of the go.mod of the module that holds
// the working directory, as `go env GOMOD` reports it.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the module")
	}
	return filepath.Dir(gomod), nil
}

// ReadSources reads every directory, Go file, go.mod and go.sum of the
// module at root, skipping hidden directories, bin and testdata. A test
// that runs the module's binaries rather than importing the code it tests
// calls it so that `go test` does not replay a cached result after that
// code changed: the go command invalidates a cached test result when a
// file or directory that the test opened has changed.
func ReadSources(root string) error {
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		if e.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			_, err = os.ReadFile(path)
		}
		return err
	})
}

// Build runs `go build [-race] -o OUTDIR/ PKGS...` in root, so that every
// main package of pkgs lands in outDir under its own name. On failure the
// error holds the command line and the go command's output.
func Build(ctx context.Context, root, outDir string, race bool, pkgs ...string) error {
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", outDir+string(filepath.Separator))
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// BuildTemp builds pkgs of the module that holds the working directory
// into a new temporary directory named after pattern (as os.MkdirTemp
// takes it), after reading the module's sources with ReadSources. It
// returns the directory whenever it was created, even with an error, so
// that the caller can remove it.
func BuildTemp(ctx context.Context, pattern string, race bool, pkgs ...string) (dir string, err error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	if err := ReadSources(root); err != nil {
		return "", err
	}
	if dir, err = os.MkdirTemp("", pattern); err != nil {
		return "", err
	}
	return dir, Build(ctx, root, dir, race, pkgs...)
}
