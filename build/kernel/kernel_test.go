package kernel

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

// A kernel in LinuxKit's layout is pulled from a real (in-process) registry.
func TestResolveOCI(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	modules := tarOf(t, map[string]string{"lib/modules/6.1.0-oci/kernel/fs/a.ko": "KO", "lib/modules/6.1.0-oci/modules.builtin": ""})
	layerTar := tarOf(t, map[string]string{"kernel": "BZIMAGE", "kernel.tar": string(modules)})
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/gridnode/kernel:6.1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}

	k, err := Resolve(context.Background(), Source{OCI: ref}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(k.Vmlinuz); string(b) != "BZIMAGE" {
		t.Errorf("vmlinuz = %q", b)
	}
	if k.Release != "6.1.0-oci" || k.Origin.Kind != "oci" || !strings.HasPrefix(k.Origin.Version, "sha256:") {
		t.Errorf("kernel %+v", k)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "kernel/fs/a.ko")); err != nil {
		t.Error(err)
	}
}

func TestResolveDirErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Resolve(context.Background(), Source{Dir: dir}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "lib/modules/VERSION/kernel") {
		t.Errorf("empty folder: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "lib/modules/6.1.0-x/kernel"), 0o755)
	if _, err := Resolve(context.Background(), Source{Dir: dir}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no kernel image") {
		t.Errorf("no vmlinuz: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("K"), 0o644)
	k, err := Resolve(context.Background(), Source{Dir: dir}, t.TempDir())
	if err != nil || k.Release != "6.1.0-x" || len(k.Origin.SHA256) != 64 {
		t.Errorf("%+v %v", k, err)
	}
}
