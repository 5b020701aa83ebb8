// Package deployment is the contract between a user's deployment file, the
// CLI that sends it, and the node that runs it: the schema of the file (YAML,
// decoded strictly with file:line errors), its validation, the canonical
// JSON form the CLI signs and sends, and the wire types of the node's API
// under /api/v1/deployments.
//
// A deployment is a named set of workloads, each one OCI image run as a
// container with its own limits; the workloads of a deployment share one
// network namespace (they reach each other on localhost) and may share
// volumes by name. Names are unique per owner on a node: deploying a name
// that runs replaces it as a new generation.
//
// YAML (README.md, "Deployments", documents every key):
//
//	name: web
//	workloads:
//	  - name: web
//	    image: 10.0.2.2:5000/web:1
//	    command: [/bin/busybox, httpd, -f, -p, "8080", -h, /www]
//	    env: {GREETING: hello}
//	    cpu: 0.5
//	    memory: 64Mi
//	    pids: 128
//	    disk: 512Mi
//	    ports: ["8080:8080/tcp"]
//	    volumes: [{name: data, path: /data, size: 1Gi}]
//	    restart: always
//	    gpus: 0
//	credentials:
//	  - {registry: ghcr.io, username: me, password: TOKEN}
//
// JSON (what travels, see Canonical) has the same keys with numbers in base
// units: millicpu, memory_bytes, disk_bytes, volumes' size_bytes, and ports
// as {"node", "container", "protocol"} objects.
package deployment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/gridnode/gridnode/node/fact"
)

// Deployment is one deployment file.
type Deployment struct {
	// Name is unique per owner on a node: a DNS label.
	Name        string       `yaml:"name" json:"name"`
	Workloads   []Workload   `yaml:"workloads" json:"workloads"`
	Credentials []Credential `yaml:"credentials,omitempty" json:"credentials,omitempty"`
}

// Workload is one container of a deployment.
type Workload struct {
	Name string `yaml:"name" json:"name"`
	// Image is an OCI image reference as the node reaches it. A tag is
	// pinned to its digest at deploy time (Pinned).
	Image string `yaml:"image" json:"image"`
	// Command replaces the image's entrypoint and cmd when set.
	Command []string          `yaml:"command,omitempty" json:"command,omitempty"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	CPU     MilliCPU          `yaml:"cpu,omitempty" json:"millicpu"`
	Memory  Size              `yaml:"memory,omitempty" json:"memory_bytes"`
	PIDs    uint64            `yaml:"pids,omitempty" json:"pids"`
	// Disk is the size of the writable layer.
	Disk    Size     `yaml:"disk,omitempty" json:"disk_bytes"`
	Ports   []Port   `yaml:"ports,omitempty" json:"ports,omitempty"`
	Volumes []Volume `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	Restart string   `yaml:"restart,omitempty" json:"restart"`
	GPUs    int      `yaml:"gpus,omitempty" json:"gpus,omitempty"`
}

// Volume is a persistent folder on the node's disk, mounted at Path. The
// same name in two workloads of a deployment is the same volume.
type Volume struct {
	Name string `yaml:"name" json:"name"`
	Path string `yaml:"path" json:"path"`
	Size Size   `yaml:"size" json:"size_bytes"`
}

// Credential is a login for one registry, used for this deployment's pulls.
type Credential struct {
	// Registry is a host[:port], as in the images' references.
	Registry string `yaml:"registry" json:"registry"`
	Username string `yaml:"username" json:"username"`
	// Password is a password or an access token.
	Password string `yaml:"password" json:"password"`
}

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Defaults for what a workload leaves out.
const (
	DefaultCPU     MilliCPU = 1000
	DefaultMemory  Size     = 128 << 20
	DefaultPIDs             = 1024
	DefaultDisk    Size     = 256 << 20
	DefaultRestart          = RestartAlways
)

// Bounds of what a deployment may ask.
const (
	MaxWorkloads   = 32
	MaxCPU         = MilliCPU(1024 * 1000)
	MinMemory      = Size(4 << 20)
	MinDisk        = Size(16 << 20)
	MaxSize        = Size(1 << 50) // 1 PiB
	MaxPIDs        = 1 << 22
	MaxGPUs        = 64
	maxArgs        = 256
	maxEnv         = 256
	maxVolumes     = 32
	maxPorts       = 64
	maxCredentials = 16
	maxString      = 4096
)

var (
	label   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	host    = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
)

// Normalize fills defaults in, in place.
func (d *Deployment) Normalize() {
	for i := range d.Workloads {
		w := &d.Workloads[i]
		if w.CPU == 0 {
			w.CPU = DefaultCPU
		}
		if w.Memory == 0 {
			w.Memory = DefaultMemory
		}
		if w.PIDs == 0 {
			w.PIDs = DefaultPIDs
		}
		if w.Disk == 0 {
			w.Disk = DefaultDisk
		}
		if w.Restart == "" {
			w.Restart = DefaultRestart
		}
		for j := range w.Ports {
			if w.Ports[j].Protocol == "" {
				w.Ports[j].Protocol = "tcp"
			}
		}
	}
}

// Canonical is the JSON the CLI signs and sends: defaults filled in, keys
// in a fixed order, numbers in base units. The same deployment always gives
// the same bytes.
func (d Deployment) Canonical() ([]byte, error) {
	d = d.Clone()
	d.Normalize()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// DecodeJSON decodes the wire form strictly (unknown keys, trailing data and
// a second value are refused), fills defaults in and validates.
func DecodeJSON(b []byte) (Deployment, error) {
	var d Deployment
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Deployment{}, fmt.Errorf("deployment JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Deployment{}, fmt.Errorf("deployment JSON: data after the deployment")
	}
	d.Normalize()
	if err := d.Validate(); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// Clone is a deep copy.
func (d Deployment) Clone() Deployment {
	c := d
	c.Workloads = slices.Clone(d.Workloads)
	for i := range c.Workloads {
		w := &c.Workloads[i]
		w.Command = slices.Clone(w.Command)
		w.Ports = slices.Clone(w.Ports)
		w.Volumes = slices.Clone(w.Volumes)
		if w.Env != nil {
			env := make(map[string]string, len(w.Env))
			for k, v := range w.Env {
				env[k] = v
			}
			w.Env = env
		}
	}
	c.Credentials = slices.Clone(d.Credentials)
	return c
}

// Pinned says whether an image reference names a digest.
func Pinned(image string) bool {
	_, err := name.NewDigest(image)
	return err == nil
}

// Credential returns the credential for registry, if the deployment has one.
func (d Deployment) Credential(registry string) (Credential, bool) {
	for _, c := range d.Credentials {
		if c.Registry == registry {
			return c, true
		}
	}
	return Credential{}, false
}

// Needs is what the deployment asks of the node: CPU, memory, disk (each
// writable layer, and each volume once), GPUs.
func (d Deployment) Needs() fact.Resources {
	var r fact.Resources
	seen := map[string]bool{}
	for _, w := range d.Workloads {
		r.MilliCPU += uint64(w.CPU)
		r.Memory += uint64(w.Memory)
		r.Disk += uint64(w.Disk)
		r.GPUs += w.GPUs
		for _, v := range w.Volumes {
			if !seen[v.Name] {
				seen[v.Name] = true
				r.Disk += uint64(v.Size)
			}
		}
	}
	return r
}
