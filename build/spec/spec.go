// Package spec reads image specifications: the YAML a release engineer edits
// (images/node.yaml). Decoding is strict: an unknown key or a bad value is an
// error naming the file, the line and what is allowed.
package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/build/kernel"
	"github.com/gridnode/gridnode/node/config"
	"gopkg.in/yaml.v3"
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

	// File is the path the spec was read from; Dir its folder, against
	// which relative paths in the spec are resolved.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`
	// Lines maps a key path ("drivers", "kernel") to its line, for errors
	// found after decoding.
	Lines map[string]int `yaml:"-"`
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
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, lineErr(file, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty spec; it needs at least kernel and drivers", file)
	}
	doc := root.Content[0]
	s := &Spec{File: file, Dir: filepath.Dir(file), Lines: map[string]int{}}
	if err := checkKeys(file, doc, reflect.TypeOf(*s), "", s.Lines); err != nil {
		return nil, err
	}
	s.Node = config.Default()
	if err := doc.Decode(s); err != nil {
		return nil, lineErr(file, err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Spec) at(key string) string {
	if l, ok := s.Lines[key]; ok {
		return fmt.Sprintf("%s:%d", s.File, l)
	}
	return s.File
}

// Errorf formats an error about key, prefixed with the file and line of key.
func (s *Spec) Errorf(key, format string, a ...any) error {
	return fmt.Errorf("%s: %s", s.at(key), fmt.Sprintf(format, a...))
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

var yamlLine = regexp.MustCompile(`line (\d+): `)

// lineErr turns yaml.v3's "yaml: line N: msg" into "file:N: msg".
func lineErr(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := yamlLine.FindStringSubmatchIndex(l); m != nil && m[0] == 0 {
			out = append(out, fmt.Sprintf("%s:%s: %s", file, l[m[2]:m[3]], l[m[1]:]))
		} else if l != "" {
			out = append(out, file+": "+l)
		}
	}
	return fmt.Errorf("%s", strings.Join(out, "\n"))
}

// checkKeys walks a mapping node against struct type t and refuses keys the
// struct does not have, naming the allowed ones; it records each key's line.
func checkKeys(file string, n *yaml.Node, t reflect.Type, prefix string, lines map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case isText(t) && n.Kind == yaml.ScalarNode:
		// yaml.v3 drops the line from a TextUnmarshaler's error: check here.
		v := reflect.New(t).Interface().(interface{ UnmarshalText([]byte) error })
		if err := v.UnmarshalText([]byte(n.Value)); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", file, n.Line, prefix, err)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && !isText(t):
		fields := map[string]reflect.Type{}
		var allowed []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			allowed = append(allowed, name)
		}
		sort.Strings(allowed)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			where := strings.TrimPrefix(prefix+"."+k.Value, ".")
			if !ok {
				in := "at the top level"
				if prefix != "" {
					in = "in " + prefix
				}
				return fmt.Errorf("%s:%d: unknown key %q %s; allowed keys: %s", file, k.Line, k.Value, in, strings.Join(allowed, ", "))
			}
			lines[where] = k.Line
			if err := checkKeys(file, v, ft, where, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			where := fmt.Sprintf("%s[%d]", prefix, i)
			lines[where] = c.Line
			if err := checkKeys(file, c, t.Elem(), where, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind != yaml.MappingNode && !isText(t):
		return fmt.Errorf("%s:%d: %s must be a mapping of keys", file, n.Line, prefix)
	}
	return nil
}

func isText(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeOf((*interface{ UnmarshalText([]byte) error })(nil)).Elem())
}
