package release

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/spec"
)

// BuildOptions say what release Build makes.
type BuildOptions struct {
	Spec    *spec.Spec // the image spec; its version is replaced by Version
	Version string     // the release version, in file names, the manifest and the SBOM
	Out     string     // the release folder (dist/); it must be missing or empty
	Cache   string     // the builder's cache folder
	Src     string     // the gridnode source tree the node program is compiled from
	Epoch   time.Time  // SOURCE_DATE_EPOCH
	// Key signs the release document (release.json); nil writes it
	// unsigned, and says so on Warn.
	Key ed25519.PrivateKey
	// Progress gets one line per step; nil is quiet. Warn gets the
	// builder's warnings; nil discards them.
	Progress, Warn io.Writer
}

// Released is what Build wrote.
type Released struct {
	Dir   string
	Build *build.Result
	SBOM  string   // path of the SPDX document
	Files []string // every file of the release, slash-separated, sorted
}

// SBOMName is the SPDX document's name in a release folder.
func SBOMName(version string) string { return "gridnode-" + version + ".spdx.json" }

var versionRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// Build makes a release folder: every boot format of the spec (kernel,
// initramfs and command line, UKI, hybrid ISO, USB image, PXE bundle), the
// build manifest, an SPDX 2.3 SBOM (the Go modules linked into the node
// program, read from its build information, and every Debian package the
// build took files from: kernel, firmware, boot loaders), SHA256SUMS, and
// release.json, the release document signed with o.Key.
// Same inputs and epoch, same bytes.
func Build(ctx context.Context, o BuildOptions) (*Released, error) {
	if !versionRE.MatchString(o.Version) {
		return nil, fmt.Errorf("release: version %q: use letters, digits and . _ + - (it goes into file names)", o.Version)
	}
	if o.Spec == nil {
		return nil, errors.New("release: no image spec")
	}
	if ents, err := os.ReadDir(o.Out); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("release: %s is not empty; remove it first (a release folder holds one release only)", o.Out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("release: %w", err)
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Unix(0, 0).UTC()
	}
	s := *o.Spec
	s.Version = o.Version
	res, err := build.Build(ctx, build.Options{
		Spec: &s, Out: o.Out, Cache: o.Cache, Src: o.Src, Epoch: o.Epoch,
		Formats: build.FormatNames(), Progress: o.Progress, Warn: o.Warn,
	})
	if err != nil {
		return nil, err
	}

	// The Debian packages, from the manifest (the kernel is there as kind
	// kernel-deb, the others as deb), with the architecture of the opened
	// package where the builder kept it.
	arch := map[string]string{}
	for _, d := range res.Debs {
		arch[d.SHA256] = d.Arch
	}
	var debs []Deb
	for _, in := range res.Manifest.Inputs {
		if in.Kind != "deb" && in.Kind != "kernel-deb" {
			continue
		}
		if in.SHA256 == "" || in.Version == "" {
			return nil, fmt.Errorf("release: the manifest lists Debian package %s without version or checksum", in.Name)
		}
		debs = append(debs, Deb{Name: in.Name, Version: in.Version, Arch: arch[in.SHA256], SHA256: in.SHA256})
	}
	sbom := filepath.Join(o.Out, SBOMName(o.Version))
	f, err := os.Create(sbom)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	err = SBOM(f, SBOMInput{Version: o.Version, Epoch: o.Epoch, NodeBinary: res.NodeBinary, Debs: debs})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "sbom     %s: %d Debian packages and the node program's Go modules\n", filepath.Base(sbom), len(debs))
	}
	if err := Checksums(o.Out); err != nil {
		return nil, err
	}
	if err := Sign(o.Out, o.Version, o.Key); err != nil {
		return nil, err
	}
	if o.Key == nil && o.Warn != nil {
		fmt.Fprintf(o.Warn, "release %s is unsigned: no release key given (make release RELEASE_KEY=FILE, or --key); release push refuses it without --unsigned, and nodes accept only signed releases\n", o.Version)
	}
	files, err := releaseFiles(o.Out, true)
	if err != nil {
		return nil, err
	}
	// Every file the same mode, so an archive of the folder is reproducible
	// too (the PXE writer sets its files' times; the rest are new).
	for _, name := range files {
		p := filepath.Join(o.Out, filepath.FromSlash(name))
		if err := os.Chmod(p, 0o644); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		if err := os.Chtimes(p, o.Epoch, o.Epoch); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
	}
	return &Released{Dir: o.Out, Build: res, SBOM: sbom, Files: files}, nil
}
