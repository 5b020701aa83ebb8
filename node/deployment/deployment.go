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
	"path"
	"regexp"
	"slices"
	"strings"

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

// FieldError is a validation error about one field, named by its path in
// the file ("workloads[0].ports[1]"); Parse adds the line.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func fieldErr(path, format string, a ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, a...)}
}

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

// Validate checks a normalized deployment; the error is a *FieldError.
func (d *Deployment) Validate() error {
	if d.Name == "" {
		return fieldErr("name", "missing: give the deployment a name (lower-case letters, digits and -, at most 32)")
	}
	if !label.MatchString(d.Name) {
		return fieldErr("name", "%q: use lower-case letters, digits and - (not at either end), at most 32", d.Name)
	}
	if len(d.Workloads) == 0 {
		return fieldErr("workloads", "missing: a deployment needs at least one workload")
	}
	if len(d.Workloads) > MaxWorkloads {
		return fieldErr("workloads", "%d workloads: at most %d", len(d.Workloads), MaxWorkloads)
	}
	names := map[string]bool{}
	nodePorts := map[string]string{}      // "8080/tcp" → where
	containerPorts := map[string]string{} // the workloads share a network namespace
	volumes := map[string]Size{}
	for i, w := range d.Workloads {
		at := fmt.Sprintf("workloads[%d]", i)
		if err := w.validate(at); err != nil {
			return err
		}
		if names[w.Name] {
			return fieldErr(at+".name", "%q: another workload of this deployment has this name", w.Name)
		}
		names[w.Name] = true
		for j, p := range w.Ports {
			pat := fmt.Sprintf("%s.ports[%d]", at, j)
			nk, ck := fmt.Sprintf("%d/%s", p.Node, p.Protocol), fmt.Sprintf("%d/%s", p.Container, p.Protocol)
			if prev, ok := nodePorts[nk]; ok {
				return fieldErr(pat, "node port %s is published already by %s", nk, prev)
			}
			if prev, ok := containerPorts[ck]; ok {
				return fieldErr(pat, "container port %s is published already by %s (the workloads of a deployment share one network)", ck, prev)
			}
			nodePorts[nk], containerPorts[ck] = pat, pat
		}
		for j, v := range w.Volumes {
			if s, ok := volumes[v.Name]; ok && s != v.Size {
				return fieldErr(fmt.Sprintf("%s.volumes[%d].size", at, j), "volume %q has size %s in another workload: a shared volume has one size", v.Name, s)
			}
			volumes[v.Name] = v.Size
		}
	}
	if len(d.Credentials) > maxCredentials {
		return fieldErr("credentials", "%d credentials: at most %d", len(d.Credentials), maxCredentials)
	}
	regs := map[string]bool{}
	for i, c := range d.Credentials {
		at := fmt.Sprintf("credentials[%d]", i)
		if !host.MatchString(c.Registry) {
			return fieldErr(at+".registry", "%q: want a registry host[:port] as in the image references, e.g. ghcr.io or 10.0.2.2:5000", c.Registry)
		}
		if regs[c.Registry] {
			return fieldErr(at+".registry", "%q has credentials already", c.Registry)
		}
		regs[c.Registry] = true
		if c.Username == "" || c.Password == "" {
			return fieldErr(at, "want both username and password (or an access token as the password)")
		}
		if len(c.Username) > maxString || len(c.Password) > maxString {
			return fieldErr(at, "username or password longer than %d bytes", maxString)
		}
	}
	return nil
}

func (w *Workload) validate(at string) error {
	if !label.MatchString(w.Name) {
		return fieldErr(at+".name", "%q: use lower-case letters, digits and - (not at either end), at most 32", w.Name)
	}
	if w.Image == "" {
		return fieldErr(at+".image", "missing: name the image, e.g. 10.0.2.2:5000/web:1 or REGISTRY/REPO@sha256:DIGEST")
	}
	if _, err := name.ParseReference(w.Image); err != nil || len(w.Image) > maxString {
		return fieldErr(at+".image", "%q is not an image reference: want REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST", w.Image)
	}
	if len(w.Command) > maxArgs {
		return fieldErr(at+".command", "%d arguments: at most %d", len(w.Command), maxArgs)
	}
	for i, a := range w.Command {
		if strings.IndexByte(a, 0) >= 0 || len(a) > maxString {
			return fieldErr(fmt.Sprintf("%s.command[%d]", at, i), "an argument may not hold a NUL byte or be longer than %d bytes", maxString)
		}
	}
	if len(w.Command) > 0 && w.Command[0] == "" {
		return fieldErr(at+".command[0]", "empty program name")
	}
	if len(w.Env) > maxEnv {
		return fieldErr(at+".env", "%d variables: at most %d", len(w.Env), maxEnv)
	}
	for k, v := range w.Env {
		if !envName.MatchString(k) {
			return fieldErr(at+".env", "variable %q: want letters, digits and _, not starting with a digit", k)
		}
		if strings.IndexByte(v, 0) >= 0 || len(v) > maxString {
			return fieldErr(at+".env."+k, "a value may not hold a NUL byte or be longer than %d bytes", maxString)
		}
	}
	if w.CPU > MaxCPU {
		return fieldErr(at+".cpu", "%s CPUs: at most %s", w.CPU, MaxCPU)
	}
	if w.Memory < MinMemory || w.Memory > MaxSize {
		return fieldErr(at+".memory", "%s: want between %s and %s", w.Memory, MinMemory, MaxSize)
	}
	if w.Disk < MinDisk || w.Disk > MaxSize {
		return fieldErr(at+".disk", "%s: want between %s and %s", w.Disk, MinDisk, MaxSize)
	}
	if w.PIDs > MaxPIDs {
		return fieldErr(at+".pids", "%d: at most %d", w.PIDs, MaxPIDs)
	}
	switch w.Restart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fieldErr(at+".restart", "%q: allowed values are always, on-failure, never", w.Restart)
	}
	if w.GPUs < 0 || w.GPUs > MaxGPUs {
		return fieldErr(at+".gpus", "%d: want 0 to %d", w.GPUs, MaxGPUs)
	}
	if len(w.Ports) > maxPorts {
		return fieldErr(at+".ports", "%d ports: at most %d", len(w.Ports), maxPorts)
	}
	for i, p := range w.Ports {
		if err := p.check(); err != nil {
			return fieldErr(fmt.Sprintf("%s.ports[%d]", at, i), "%v", err)
		}
	}
	if len(w.Volumes) > maxVolumes {
		return fieldErr(at+".volumes", "%d volumes: at most %d", len(w.Volumes), maxVolumes)
	}
	paths := map[string]bool{}
	for i, v := range w.Volumes {
		vat := fmt.Sprintf("%s.volumes[%d]", at, i)
		if !label.MatchString(v.Name) {
			return fieldErr(vat+".name", "%q: use lower-case letters, digits and - (not at either end), at most 32", v.Name)
		}
		if !path.IsAbs(v.Path) || path.Clean(v.Path) != v.Path || v.Path == "/" || len(v.Path) > maxString {
			return fieldErr(vat+".path", "%q: want an absolute, clean path other than /, e.g. /data", v.Path)
		}
		for _, sys := range []string{"/proc", "/sys", "/dev"} {
			if v.Path == sys || strings.HasPrefix(v.Path, sys+"/") {
				return fieldErr(vat+".path", "%q: %s belongs to the container's kernel file systems", v.Path, sys)
			}
		}
		if paths[v.Path] {
			return fieldErr(vat+".path", "%q: another volume of this workload is mounted there", v.Path)
		}
		paths[v.Path] = true
		if v.Size == 0 || v.Size > MaxSize {
			return fieldErr(vat+".size", "want a size between 1 and %s, e.g. 1Gi", MaxSize)
		}
		for _, o := range w.Volumes[:i] {
			if o.Name == v.Name {
				return fieldErr(vat+".name", "%q: this workload mounts the volume already", v.Name)
			}
		}
	}
	return nil
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
