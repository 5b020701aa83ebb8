package kernel

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/gridnode/gridnode/internal/loopback"
	"github.com/gridnode/gridnode/internal/untar"
)

// Caps on an OCI kernel image, which comes from a registry: the flattened
// image, the kernel in it and its modules tree (a LinuxKit kernel image is
// about 100 MB). Variables for the tests.
var (
	maxImage   int64 = 2 << 30
	maxKernel  int64 = 256 << 20
	maxEntries       = 200_000
)

// transport carries the pulls; tests put one that never dials.
var transport http.RoundTripper = remote.DefaultTransport

// fromOCI pulls an image in LinuxKit's kernel layout: a file /kernel (the
// bzImage) and /kernel.tar (a tar of lib/modules/VERSION). Plain HTTP is
// used for a registry on the loopback only (go-containerregistry would
// also fall back to it for private addresses and .local names); what was
// pulled is named by its digest in the kernel's Origin (the manifest).
func fromOCI(ctx context.Context, ref string, cache string) (*Kernel, error) {
	r, err := name.ParseReference(ref)
	if err == nil && loopback.Host(hostOf(r.Context().RegistryStr())) {
		r, err = name.ParseReference(ref, name.Insecure)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel oci %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
		remote.WithTransport(httpsOnly{transport}))
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
		stream := untar.Cap(rc, maxImage)
		tr := tar.NewReader(stream)
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
				if _, err := io.Copy(f, untar.Cap(tr, maxKernel)); err != nil {
					f.Close()
					return err
				}
				f.Close()
				seen["kernel"] = true
			case "kernel.tar":
				if _, err := untar.ExtractDir(tmp, tr, untar.Options{RootedLinks: true, TrimSlash: true, MaxBytes: maxImage, MaxEntries: maxEntries}); err != nil {
					return fmt.Errorf("kernel.tar: %w", err)
				}
				seen["kernel.tar"] = true
			}
		}
		// mutate.Extract ends its stream with a tar trailer even when a
		// layer failed, and puts the error after it: read to the end, or a
		// failed pull looks like an image without a kernel.
		if _, err := io.Copy(io.Discard, stream); err != nil {
			return err
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

// hostOf is the host of a registry's HOST[:PORT].
func hostOf(registry string) string {
	if h, _, err := net.SplitHostPort(registry); err == nil {
		return h
	}
	return strings.Trim(registry, "[]")
}

// httpsOnly refuses plain-HTTP requests to hosts other than the loopback,
// whatever asks for them: the registry's ping fallback, a redirect to a
// blob store, a token endpoint.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !loopback.Host(req.URL.Hostname()) {
		return nil, fmt.Errorf("plain HTTP to %s refused: kernels are pulled over HTTPS, except from a registry on the loopback", req.URL.Host)
	}
	return t.next.RoundTrip(req)
}
