package deployment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and checks the deployment file at path.
func Load(path string) (Deployment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Deployment{}, fmt.Errorf("deployment file: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes a deployment file strictly, fills defaults in and validates
// it; every error names file and line.
func Parse(file string, data []byte) (Deployment, error) {
	var d Deployment
	if err := decodeYAML(file, data, &d); err != nil {
		return Deployment{}, err
	}
	d.Normalize()
	if err := d.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Deployment{}, fmt.Errorf("%s:%d: %v", file, lineOf(data, fe.Path), err)
		}
		return Deployment{}, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// decodeYAML decodes data, named file in errors, into v strictly: a key v
// has no field for is refused with the keys allowed there, a value of the
// wrong kind with what is wanted, and every error reads "file:line:
// message". It is this package's one YAML decoder, written so that the
// project's shared strict-YAML package can replace it in this one place.
func decodeYAML(file string, data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return fmt.Errorf("%s: the file is empty", file)
	} else if err != nil {
		return yamlErr(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("%s:%d: a second YAML document: a file holds one", file, extra.Line)
	} else if err != io.EOF {
		return yamlErr(file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := checkKeys(file, root, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if err := root.Decode(v); err != nil {
		return yamlErr(file, err)
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks n against type t: a mapping must only have keys of t's
// yaml fields, a struct must be a mapping and a slice a list.
func checkKeys(file string, n *yaml.Node, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	where := at
	if where == "" {
		where = "the top level"
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s:%d: %s: want a mapping of keys", file, n.Line, where)
		}
		fields := map[string]reflect.Type{}
		var allowed []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
				allowed = append(allowed, name)
			}
		}
		slices.Sort(allowed)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("%s:%d: unknown key %q in %s; allowed keys: %s", file, k.Line, k.Value, where, strings.Join(allowed, ", "))
			}
			if err := checkKeys(file, n.Content[i+1], ft, strings.TrimPrefix(at+"."+k.Value, ".")); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s:%d: %s: want a list", file, n.Line, where)
		}
		for i, c := range n.Content {
			if err := checkKeys(file, c, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s:%d: %s: want a mapping of keys", file, n.Line, where)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s:%d: %s.%s: want a single value", file, v.Line, at, n.Content[i].Value)
			}
		}
	}
	return nil
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): `)

// yamlErr turns yaml.v3's errors ("yaml: line N: msg", and the list of an
// unmarshal error) into "file:N: msg" lines.
func yamlErr(file string, err error) error {
	var lines []string
	if te, ok := err.(*yaml.TypeError); ok {
		lines = te.Errors
	} else {
		lines = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if m := yamlLineRe.FindStringSubmatch(l); m != nil {
			lines[i] = fmt.Sprintf("%s:%s: %s", file, m[1], l[len(m[0]):])
		} else {
			lines[i] = file + ": " + l
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// lineOf finds the line of a field path ("workloads[0].ports[1]", "name")
// in a YAML file, or of the closest enclosing field found; 1 when none is.
func lineOf(data []byte, path string) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 1
	}
	n, line := doc.Content[0], doc.Content[0].Line
	for _, seg := range strings.Split(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			key = seg[:i]
			idx, _ = strconv.Atoi(seg[i+1 : len(seg)-1])
		}
		next := (*yaml.Node)(nil)
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next, line = n.Content[i+1], n.Content[i].Line
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n, line = n.Content[idx], n.Content[idx].Line
		}
	}
	return line
}
