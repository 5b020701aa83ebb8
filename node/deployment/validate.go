package deployment

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
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
