// Package strictyaml decodes YAML that people write (image specs, the
// node's configuration, netboot files, deployments, channel documents)
// strictly, with errors a person can act on: every error is
// "file:line: message", an unknown key names the keys that are allowed
// there, and a value its type refuses names the key it belongs to.
//
// It walks the document (a yaml.Node) against the Go type before decoding:
// yaml.v3's own KnownFields says neither the allowed keys nor, for a value
// an UnmarshalText refuses, the line.
//
// Keys are what yaml.v3 decodes: a field's yaml tag name, or its name in
// lower case; "-" and unexported fields are not keys; ",inline" structs
// add their keys to the outer one. Map keys are free; their values are
// checked against the map's element type.
package strictyaml

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrEmpty is returned (wrapped, with the file) for a document with no
// content: nothing but blanks and comments.
var ErrEmpty = errors.New("empty document")

// Decode decodes the first YAML document of data into v (a pointer),
// strictly; file names data in errors. Fields v holds that the document
// does not set keep their values, so defaults can be filled in first.
func Decode(file string, data []byte, v any) error {
	_, err := DecodeLines(file, data, v)
	return err
}

// DecodeLines is Decode that also says where each key is, for errors found
// after decoding.
func DecodeLines(file string, data []byte, v any) (Lines, error) {
	lines := Lines{file: file, at: map[string]int{}}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return lines, fmt.Errorf("strictyaml: Decode of %s needs a non-nil pointer, not %T", file, v)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err == io.EOF {
		return lines, fmt.Errorf("%s: %w", file, ErrEmpty)
	} else if err != nil {
		return lines, lineErr(file, err)
	}
	if len(root.Content) == 0 {
		return lines, fmt.Errorf("%s: %w", file, ErrEmpty)
	}
	// yaml.Unmarshal would read the first of several documents and drop
	// the rest without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return lines, fmt.Errorf("%s:%d: a second YAML document: a file holds one", file, extra.Line)
	} else if err != io.EOF {
		return lines, lineErr(file, err)
	}
	doc := root.Content[0]
	w := walker{file: file, lines: lines.at}
	if err := w.check(doc, rv.Type().Elem(), ""); err != nil {
		return lines, err
	}
	if err := doc.Decode(v); err != nil {
		return lines, lineErr(file, err)
	}
	return lines, nil
}

// Lines maps key paths to the lines they are on in one file. A path is the
// keys from the top joined by dots, with [i] for list items:
// "kernel.package", "files[0]", "machines.52:54:00:12:34:56".
type Lines struct {
	file string
	at   map[string]int
}

// Line returns the line of the key at path.
func (l Lines) Line(path string) (int, bool) {
	n, ok := l.at[path]
	return n, ok
}

// Where is "file:line" for the key at path, or the file alone when the
// document does not have it.
func (l Lines) Where(path string) string {
	if n, ok := l.at[path]; ok {
		return fmt.Sprintf("%s:%d", l.file, n)
	}
	return l.file
}

// Errorf formats an error about the key at path, prefixed with Where(path).
func (l Lines) Errorf(path, format string, a ...any) error {
	return fmt.Errorf("%s: %s", l.Where(path), fmt.Sprintf(format, a...))
}

type walker struct {
	file  string
	lines map[string]int
}

var (
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// check walks node n against type t at key path, refusing unknown keys and
// values a TextUnmarshaler refuses, and records each key's line.
func (w walker) check(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		return w.check(n.Alias, t, path)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with no value sets nothing
	}
	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(yamlUnmarshaler):
		return nil // the type checks its own value
	case pt.Implements(textUnmarshaler):
		if n.Kind != yaml.ScalarNode {
			return w.errorf(n, "%s: want a single value, not a %s", name(path), kind(n))
		}
		// yaml.v3 drops the line from a TextUnmarshaler's error: check here.
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return w.errorf(n, "%s: %v", name(path), err)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.errorf(n, "%s must be a mapping of keys, not a %s", name(path), kind(n))
		}
		fields := map[string]reflect.Type{}
		keysOf(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				in := "at the top level"
				if path != "" {
					in = "in " + path
				}
				return w.errorf(k, "unknown key %q %s; allowed keys: %s", k.Value, in, strings.Join(sortedKeys(fields), ", "))
			}
			if err := w.key(k, v, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.errorf(n, "%s: want a mapping of keys, not a %s", name(path), kind(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := w.key(k, v, t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return w.errorf(n, "%s: want a list, not a %s", name(path), kind(n))
		}
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = c.Line
			if err := w.check(c, t.Elem(), p); err != nil {
				return err
			}
		}
	case t.Kind() != reflect.Interface && n.Kind != yaml.ScalarNode:
		return w.errorf(n, "%s: want a single value, not a %s", name(path), kind(n))
	}
	// Scalars of plain kinds are yaml.v3's to refuse, with their line.
	return nil
}

func (w walker) key(k, v *yaml.Node, t reflect.Type, path string) error {
	w.lines[path] = k.Line
	return w.check(v, t, path)
}

func (w walker) errorf(n *yaml.Node, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", w.file, n.Line, fmt.Sprintf(format, a...))
}

// keysOf adds the YAML keys of struct type t to fields, as yaml.v3 names
// them.
func keysOf(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				keysOf(ft, fields)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
}

func sortedKeys(m map[string]reflect.Type) []string {
	l := make([]string, 0, len(m))
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func name(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "single value"
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// lineErr turns yaml.v3's "yaml: line N: msg" (one or more lines of them)
// into "file:N: msg".
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
	return errors.New(strings.Join(out, "\n"))
}
