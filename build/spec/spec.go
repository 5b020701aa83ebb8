// Package spec reads image specifications: the YAML a release engineer edits
// (images/node.yaml). Decoding is strict (internal/strictyaml): an unknown
// key or a bad value is an error naming the file, the line and what is
// allowed.
package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/build/kernel"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/internal/strictyaml"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// Spec is one image specification.
type Spec struct {
	// Version of the image, used in file names and the manifest.
	Version string `yaml:"version,omitempty"`
	// Kernel says where the kernel comes from.
	Kernel kernel.Source `yaml:"kernel"`
	// Drivers are module names and groups (virtio, storage, nics, filesystems).
	Drivers []string `yaml:"drivers"`
	// Firmware lists Debian firmware packages to take declared firmware from.
	Firmware Firmware `yaml:"firmware,omitempty"`
	// Files are extra files put in the initramfs.
	Files []File `yaml:"files,omitempty"`
	// Cmdline is the default kernel command line.
	Cmdline string `yaml:"cmdline,omitempty"`
	// Flavour is node or debug.
	Flavour string `yaml:"flavour,omitempty"`
	// Node is the configuration baked into the image.
	Node config.Node `yaml:"node,omitempty"`
	// ReleaseKeys are the public release keys (gridnode release keygen
	// prints one) whose signatures the image's node accepts on channel
	// documents and releases. None: the node accepts no upgrade.
	ReleaseKeys []string `yaml:"release_keys,omitempty"`
	// TLSRoots are PEM files of CA certificates (relative to the spec)
	// that the image's node trusts besides the public roots: a farm's own
	// registrar or registry behind a private CA. Baked in as
	// /etc/gridnode/roots.pem (internal/roots).
	TLSRoots []string `yaml:"tls_roots,omitempty"`

	// File is the path the spec was read from; Dir its folder, against
	// which relative paths in the spec are resolved.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`
	// lines says where each key is, for errors found after decoding.
	lines strictyaml.Lines
}

// Firmware names the firmware packages.
type Firmware struct {
	Packages []string `yaml:"packages,omitempty"`
}

// File is an extra file: Src on the build machine (relative to the spec),
// Dst in the image, Mode (octal, default 0644).
type File struct {
	Src  string `yaml:"src"`
	Dst  string `yaml:"dst"`
	Mode string `yaml:"mode,omitempty"`
}

// Load reads and checks the spec at path.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and checks a spec; file names it in errors.
func Parse(file string, b []byte) (*Spec, error) {
	s := &Spec{File: file, Dir: filepath.Dir(file), Node: config.Default()}
	lines, err := strictyaml.DecodeLines(file, b, s)
	if errors.Is(err, strictyaml.ErrEmpty) {
		return nil, fmt.Errorf("%s: empty spec; it needs at least kernel and drivers", file)
	}
	if err != nil {
		return nil, err
	}
	s.lines = lines
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// Errorf formats an error about key (a key path: "drivers", "files[2]"),
// prefixed with the file and line of key.
func (s *Spec) Errorf(key, format string, a ...any) error {
	return s.lines.Errorf(key, format, a...)
}

func (s *Spec) check() error {
	n := 0
	for _, v := range []string{s.Kernel.Package, s.Kernel.Deb, s.Kernel.Dir, s.Kernel.OCI} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return s.Errorf("kernel", "kernel: set exactly one of package, deb, dir, oci (found %d)", n)
	}
	if s.Kernel.Deb != "" {
		s.Kernel.Deb = s.Path(s.Kernel.Deb)
	}
	if s.Kernel.Dir != "" {
		s.Kernel.Dir = s.Path(s.Kernel.Dir)
	}
	if len(s.Drivers) == 0 {
		return s.Errorf("drivers", "drivers: empty; list module names or groups (virtio, storage, nics, filesystems)")
	}
	if s.Flavour == "" {
		s.Flavour = config.FlavourNode
	}
	if s.Flavour != config.FlavourNode && s.Flavour != config.FlavourDebug {
		return s.Errorf("flavour", "flavour %q: allowed values are node, debug", s.Flavour)
	}
	s.Node.Flavour = s.Flavour
	if err := s.Node.Validate(); err != nil {
		return s.Errorf("node", "node: %v", err)
	}
	if s.Version == "" {
		s.Version = "dev"
	}
	if !regexp.MustCompile(`^[A-Za-z0-9._+-]+$`).MatchString(s.Version) {
		return s.Errorf("version", "version %q: use letters, digits and . _ + -", s.Version)
	}
	for i, k := range s.ReleaseKeys {
		if _, err := doc.ParsePublicKey(k); err != nil {
			return s.Errorf(fmt.Sprintf("release_keys[%d]", i), "release_keys: %v", err)
		}
	}
	for i, p := range s.TLSRoots {
		b, err := os.ReadFile(s.Path(p))
		if err == nil {
			_, err = roots.ParsePEM(b)
		}
		if err != nil {
			return s.Errorf(fmt.Sprintf("tls_roots[%d]", i), "tls_roots: %s: %v (want a PEM file of CA certificates)", p, err)
		}
	}
	for i, f := range s.Files {
		key := fmt.Sprintf("files[%d]", i)
		if f.Src == "" || !strings.HasPrefix(f.Dst, "/") {
			return s.Errorf(key, "files: each needs src and an absolute dst")
		}
		if f.Mode != "" {
			if _, err := strconv.ParseUint(f.Mode, 8, 32); err != nil {
				return s.Errorf(key, "files: mode %q is not octal (e.g. 0755)", f.Mode)
			}
		}
	}
	return nil
}

// Path resolves p against the spec's folder.
func (s *Spec) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Keys returns the spec's release keys, parsed (check has checked them).
func (s *Spec) Keys() []doc.PublicKey {
	keys, _ := doc.ParsePublicKeys(s.ReleaseKeys)
	return keys
}
