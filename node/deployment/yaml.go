package deployment

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gridnode/gridnode/internal/strictyaml"
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
	lines, err := strictyaml.DecodeLines(file, data, &d)
	if err != nil {
		return Deployment{}, err
	}
	d.Normalize()
	if err := d.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Deployment{}, fmt.Errorf("%s:%d: %v", file, lineOf(lines, fe.Path), err)
		}
		return Deployment{}, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// lineOf is the line of a field path ("workloads[0].ports[1]", "name"), or
// of the closest enclosing field the file has; 1 when it has none.
func lineOf(lines strictyaml.Lines, path string) int {
	for path != "" {
		if n, ok := lines.Line(path); ok {
			return n
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			break
		}
		path = path[:cut]
	}
	return 1
}
