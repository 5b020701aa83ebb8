package kernel

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/gridnode/gridnode/internal/untar"
)

// fromOCI pulls an image in LinuxKit's kernel layout: a file /kernel (the
// bzImage) and /kernel.tar (a tar of lib/modules/VERSION).
func fromOCI(ctx context.Context, ref string, cache string) (*Kernel, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("kernel oci %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, fmt.Errorf("kernel oci %q: pulling: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "kernels", "oci-"+digest.Hex[:16])
	err = unpackOnce(dir, func(tmp string) error {
		rc := mutate.Extract(img)
		defer rc.Close()
		tr := tar.NewReader(rc)
		seen := map[string]bool{}
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			switch strings.TrimPrefix(filepath.Clean("/"+h.Name), "/") {
			case "kernel":
				f, err := os.Create(filepath.Join(tmp, "vmlinuz"))
				if err != nil {
					return err
				}
				if _, err := io.Copy(f, tr); err != nil {
					f.Close()
					return err
				}
				f.Close()
				seen["kernel"] = true
			case "kernel.tar":
				if _, err := untar.ExtractDir(tmp, tr, untar.Options{RootedLinks: true, TrimSlash: true}); err != nil {
					return fmt.Errorf("kernel.tar: %w", err)
				}
				seen["kernel.tar"] = true
			}
		}
		if !seen["kernel"] || !seen["kernel.tar"] {
			return fmt.Errorf("image has no /kernel and /kernel.tar (LinuxKit kernel layout)")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel oci %q: %w", ref, err)
	}
	return fromDir(dir, Origin{Kind: "oci", Name: r.Context().String(), Version: digest.String(), SHA256: digest.Hex})
}
