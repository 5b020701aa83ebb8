package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gridnode/gridnode/internal/filehash"
	"github.com/gridnode/gridnode/internal/round"
)

// HelperPath is where the container helper sits in the image, beside /init.
const HelperPath = "bin/gridnode-container"

// CompileHelper builds the container helper (cmd/gridnode-container) from
// the source tree src into out: runc's libcontainer needs cgo (nsenter is C)
// and its seccomp support libseccomp, so this one program is linked with
// the C toolchain, statically (libseccomp.a from Debian's libseccomp-dev),
// trimmed, stripped, and with the build ID cleared so the same source gives
// the same bytes.
func CompileHelper(ctx context.Context, src, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-tags", "seccomp netgo osusergo",
		"-ldflags", "-s -w -buildid= -linkmode external -extldflags -static",
		"-o", out, "./cmd/gridnode-container")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build: compiling the container helper in %s: %v\n%s(it needs gcc and the static libseccomp of libseccomp-dev: run make deps)", src, err, stderr.String())
	}
	return nil
}

// compileHelper builds the container helper into the cache and records it
// in the manifest.
func (b *builder) compileHelper(ctx context.Context) (string, error) {
	out := filepath.Join(b.o.Cache, "node", "gridnode-container")
	if err := CompileHelper(ctx, b.o.Src, out); err != nil {
		return "", err
	}
	st, err := os.Stat(out)
	if err != nil {
		return "", err
	}
	sum, _ := filehash.SHA256(out)
	b.man.Inputs = append(b.man.Inputs, Input{Kind: "helper-binary", Name: "gridnode-container", SHA256: sum})
	b.step("compile  container helper %s", round.Bytes(uint64(st.Size())))
	return out, nil
}
