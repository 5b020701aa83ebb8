package workloads

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/state"
)

// defaultPath is the PATH of a workload whose image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// spec is what the runtime runs for workload w of r: the image's root and
// config, the deployment's command, environment, limits, volumes and
// GPUs.
func (m *Manager) spec(r *run, w *workloadRun, img image.Image, id string, out io.Writer) (runtime.Spec, error) {
	root, err := m.images.RootFS(m.ctx, img)
	if err != nil {
		return runtime.Spec{}, err
	}
	args := w.spec.Command
	if len(args) == 0 {
		args = append(slices.Clone(img.Config.Entrypoint), img.Config.Cmd...)
	}
	if len(args) == 0 {
		return runtime.Spec{}, fmt.Errorf("the image %s has neither entrypoint nor cmd: give the workload a command", img.Ref)
	}
	s := runtime.Spec{
		ID: id, Deployment: r.key, Owner: r.rec.Owner, Workload: w.spec.Name, Generation: r.rec.Generation,
		RootFS: []string{root}, Args: args, Env: environ(img.Config.Env, w.spec.Env),
		Cwd: img.Config.WorkingDir, User: img.Config.User, Hostname: w.spec.Name,
		IDs: runtime.IDRange{Base: r.rec.IDBase, Size: state.IDSize},
		Limits: runtime.Limits{
			MilliCPU: uint64(w.spec.CPU), Memory: uint64(w.spec.Memory), PIDs: w.spec.PIDs,
			Disk: uint64(w.spec.Disk), IOWeight: 100,
		},
		Output: out,
	}
	for _, v := range w.spec.Volumes {
		src := filepath.Join(m.cfg.Dir, "volumes", r.key, v.Name)
		// The container's root mounts it from inside its user
		// namespace: it passes through volumes/ and volumes/KEY/; the
		// runtime gives it the volume itself.
		for _, d := range []string{filepath.Join(m.cfg.Dir, "volumes"), filepath.Dir(src)} {
			if err := passable(d); err != nil {
				return runtime.Spec{}, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		if err := os.MkdirAll(src, 0o700); err != nil {
			return runtime.Spec{}, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		s.Volumes = append(s.Volumes, runtime.Volume{Name: v.Name, Source: src, Target: v.Path, Size: uint64(v.Size)})
	}
	for _, g := range w.gpus {
		s.Devices = append(s.Devices, gpuDevices(m.cfg.SysFS, g)...)
	}
	return s, nil
}

// environ is the image's environment with the deployment's over it, PATH
// always set, in a stable order.
func environ(image []string, env map[string]string) []string {
	var out []string
	seen := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			out[i] = kv
			return
		}
		seen[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(k + "=" + env[k])
	}
	if _, ok := seen["PATH"]; !ok {
		out = append(out, defaultPath)
	}
	return out
}

// gpusInUseLocked are the GPUs the runs other than key's hold.
func (m *Manager) gpusInUseLocked(except string) map[string]bool {
	used := map[string]bool{}
	for k, r := range m.runs {
		if k == except || r.gone {
			continue
		}
		for _, w := range r.workloads {
			for _, g := range w.gpus {
				used[g] = true
			}
		}
	}
	return used
}

// gpusFree refuses a deployment asking more GPUs than the node has free,
// saying which it has.
func (m *Manager) gpusFree(key string, d deployment.Deployment) error {
	need := d.Needs().GPUs
	if need == 0 {
		return nil
	}
	used := m.gpusInUseLocked(key)
	var free []string
	for _, g := range m.cfg.GPUs {
		if !used[g.Address] {
			free = append(free, g.Address+" ("+g.Vendor+" "+g.Model+")")
		}
	}
	if need > len(free) {
		return fmt.Errorf("gpus: needs %d, %d free on this node (%s)", need, len(free), strings.Join(free, ", "))
	}
	return nil
}

// gpuDevices are the device nodes of the GPU at a PCI address, where a
// driver made them: its DRM nodes (/dev/dri/cardN, renderDN), and its
// VFIO group when bound to vfio-pci.
func gpuDevices(sysfs, addr string) []string {
	dev := filepath.Join(sysfs, "bus", "pci", "devices", addr)
	var l []string
	if ents, err := os.ReadDir(filepath.Join(dev, "drm")); err == nil {
		for _, e := range ents {
			if n := e.Name(); strings.HasPrefix(n, "card") || strings.HasPrefix(n, "renderD") {
				l = append(l, "/dev/dri/"+n)
			}
		}
	}
	if drv, err := os.Readlink(filepath.Join(dev, "driver")); err == nil && filepath.Base(drv) == "vfio-pci" {
		if g, err := os.Readlink(filepath.Join(dev, "iommu_group")); err == nil {
			l = append(l, "/dev/vfio/"+filepath.Base(g))
		}
	}
	slices.Sort(l)
	return l
}
