// Package kernel resolves the kernel an image is built from — a Debian
// package, a local folder, or an OCI image in LinuxKit's layout — into a
// vmlinuz and its modules tree on local disk, cached by content.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridnode/gridnode/build/deb"
	"github.com/gridnode/gridnode/internal/filehash"
)

// Source names where the kernel comes from; exactly one field is set.
type Source struct {
	Package string `yaml:"package,omitempty" json:"package,omitempty"` // Debian package name (NAME or NAME=VERSION)
	Deb     string `yaml:"deb,omitempty" json:"deb,omitempty"`         // path to a linux-image .deb
	Dir     string `yaml:"dir,omitempty" json:"dir,omitempty"`         // folder with vmlinuz and lib/modules/VERSION
	OCI     string `yaml:"oci,omitempty" json:"oci,omitempty"`         // OCI image with /kernel and /kernel.tar
}

// Kernel is a resolved kernel.
type Kernel struct {
	Vmlinuz    string // path to the kernel image
	ModulesDir string // path to lib/modules/VERSION
	Release    string // uname -r
	// Origin describes the input for the manifest: name, version, sha256.
	Origin Origin
}

// Origin is where a kernel came from, for the manifest and the SBOM.
type Origin struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Path    string `json:"path,omitempty"`
}

// Resolve fetches and unpacks the kernel named by src, using cache.
func Resolve(ctx context.Context, src Source, cache string) (*Kernel, error) {
	switch {
	case src.Package != "":
		p, err := deb.Fetch(ctx, filepath.Join(cache, "debs"), src.Package)
		if err != nil {
			return nil, err
		}
		// A metapackage (linux-image-amd64) holds no kernel: follow it to the
		// versioned image it depends on.
		if !strings.Contains(p.Name, "-6.") && !strings.Contains(p.Name, "-5.") {
			if dep := p.DependsOn("linux-image-"); dep != "" {
				if p, err = deb.Fetch(ctx, filepath.Join(cache, "debs"), dep); err != nil {
					return nil, err
				}
			}
		}
		return fromDeb(p, cache)
	case src.Deb != "":
		p, err := deb.Open(src.Deb)
		if err != nil {
			return nil, err
		}
		return fromDeb(p, cache)
	case src.Dir != "":
		return fromDir(src.Dir, Origin{Kind: "dir", Name: src.Dir, Path: src.Dir})
	case src.OCI != "":
		return fromOCI(ctx, src.OCI, cache)
	}
	return nil, errors.New("kernel: no source; set one of package, deb, dir, oci")
}

func fromDeb(p *deb.Package, cache string) (*Kernel, error) {
	dir := filepath.Join(cache, "kernels", "deb-"+p.SHA256[:16])
	if err := unpackOnce(dir, p.Extract); err != nil {
		return nil, fmt.Errorf("kernel %s: unpacking: %w", p.Name, err)
	}
	k, err := fromDir(dir, Origin{Kind: "deb", Name: p.Name, Version: p.Version, SHA256: p.SHA256, Path: p.Path})
	if err != nil {
		return nil, fmt.Errorf("kernel package %s %s: %w", p.Name, p.Version, err)
	}
	return k, nil
}

// unpackOnce runs fill into dir unless a previous run completed there.
func unpackOnce(dir string, fill func(string) error) error {
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	os.RemoveAll(dir)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// fromDir finds vmlinuz (or boot/vmlinuz-*, or kernel) and lib/modules/* in dir.
func fromDir(dir string, o Origin) (*Kernel, error) {
	// Debian's packages carry no modules.dep (depmod writes it on install),
	// so a modules folder is recognised by its kernel/ tree.
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "kernel"))
	if len(mods) == 0 {
		mods, _ = filepath.Glob(filepath.Join(dir, "usr", "lib", "modules", "*", "kernel"))
	}
	if len(mods) != 1 {
		return nil, fmt.Errorf("%s: want exactly one lib/modules/VERSION/kernel, found %d", dir, len(mods))
	}
	mdir := filepath.Dir(mods[0])
	release := filepath.Base(mdir)
	var vmlinuz string
	for _, c := range []string{"vmlinuz", "boot/vmlinuz-" + release, "kernel", "bzImage"} {
		if st, err := os.Stat(filepath.Join(dir, c)); err == nil && st.Mode().IsRegular() {
			vmlinuz = filepath.Join(dir, c)
			break
		}
	}
	if vmlinuz == "" {
		return nil, fmt.Errorf("%s: no kernel image (vmlinuz, boot/vmlinuz-%s or kernel)", dir, release)
	}
	if o.Version == "" {
		o.Version = release
	}
	if o.SHA256 == "" {
		s, err := filehash.SHA256(vmlinuz)
		if err != nil {
			return nil, err
		}
		o.SHA256 = s
	}
	return &Kernel{Vmlinuz: vmlinuz, ModulesDir: mdir, Release: release, Origin: o}, nil
}
