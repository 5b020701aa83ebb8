package deployment

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: no input makes the decoder panic, and whatever it accepts
// survives the trip to the wire form and back unchanged (the node decodes
// what the CLI sent to the same deployment).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		b, err := d.Canonical()
		if err != nil {
			t.Fatalf("Parse accepted a deployment Canonical refuses: %v", err)
		}
		back, err := DecodeJSON(b)
		if err != nil {
			t.Fatalf("DecodeJSON refuses the canonical form %s: %v", b, err)
		}
		if !reflect.DeepEqual(normalEmpty(back), normalEmpty(d)) {
			t.Fatalf("round trip changed the deployment:\n%+v\n%+v", d, back)
		}
	})
}

// normalEmpty maps empty collections to nil: JSON's omitempty drops them.
func normalEmpty(d Deployment) Deployment {
	d = d.Clone()
	if len(d.Credentials) == 0 {
		d.Credentials = nil
	}
	for i := range d.Workloads {
		w := &d.Workloads[i]
		if len(w.Command) == 0 {
			w.Command = nil
		}
		if len(w.Env) == 0 {
			w.Env = nil
		}
		if len(w.Ports) == 0 {
			w.Ports = nil
		}
		if len(w.Volumes) == 0 {
			w.Volumes = nil
		}
	}
	return d
}
