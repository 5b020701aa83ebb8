// Package admission decides whether a deployment fits on the node: its CPU,
// memory, disk and GPUs against what the node has left after a reserve for
// itself and what accepted deployments ask, and its ports against those
// taken.
//
// The reserve (Reserve) is what PID 1, the modules, the kernel and the
// cache's own files (images, logs, the node's state) need:
//
//	CPU     0.5 CPU
//	memory  max(256 MiB, 10 % of memory)
//	disk    max(2 GiB, 20 % of the cache file system): images and logs live there
//	GPUs    none
//
// CPU and memory are counted as asked (a deployment's cpu and memory are
// reserved for it, never overcommitted); disk is each workload's writable
// layer plus each volume.
package admission

import (
	"fmt"
	"strings"

	"github.com/gridnode/gridnode/internal/round"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
)

// Reserve is what the node keeps for itself out of total.
func Reserve(total fact.Resources) fact.Resources {
	return fact.Resources{
		MilliCPU: min(500, total.MilliCPU),
		Memory:   min(max(256<<20, total.Memory/10), total.Memory),
		Disk:     min(max(2<<30, total.Disk/5), total.Disk),
	}
}

// Capacity is the node's capacity given its total and what accepted
// deployments use.
func Capacity(total, used fact.Resources) fact.Capacity {
	r := Reserve(total)
	sub := func(a, b, c uint64) uint64 {
		if b+c >= a {
			return 0
		}
		return a - b - c
	}
	return fact.Capacity{
		Total: total, Reserved: r, Used: used,
		Free: fact.Resources{
			MilliCPU: sub(total.MilliCPU, r.MilliCPU, used.MilliCPU),
			Memory:   sub(total.Memory, r.Memory, used.Memory),
			Disk:     sub(total.Disk, r.Disk, used.Disk),
			GPUs:     max(0, total.GPUs-r.GPUs-used.GPUs),
		},
	}
}

// Refusal is a deployment that does not fit: what it needs, what is free,
// and in words what is short.
type Refusal struct {
	Need, Free fact.Resources
	Short      []string
}

func (r *Refusal) Error() string {
	return "not enough capacity left on this node: " + strings.Join(r.Short, "; ")
}

// Admit returns nil when need fits in c.Free, else a *Refusal.
func Admit(c fact.Capacity, need fact.Resources) error {
	var short []string
	if need.MilliCPU > c.Free.MilliCPU {
		short = append(short, fmt.Sprintf("cpu: needs %s, %s free", deployment.MilliCPU(need.MilliCPU), deployment.MilliCPU(c.Free.MilliCPU)))
	}
	if need.Memory > c.Free.Memory {
		short = append(short, fmt.Sprintf("memory: needs %s, %s free", round.Bytes(need.Memory), round.Bytes(c.Free.Memory)))
	}
	if need.Disk > c.Free.Disk {
		short = append(short, fmt.Sprintf("disk: needs %s, %s free", round.Bytes(need.Disk), round.Bytes(c.Free.Disk)))
	}
	if need.GPUs > c.Free.GPUs {
		short = append(short, fmt.Sprintf("gpus: needs %d, %d free", need.GPUs, c.Free.GPUs))
	}
	if len(short) == 0 {
		return nil
	}
	return &Refusal{Need: need, Free: c.Free, Short: short}
}

// PortsTaken returns an error naming the first port of d that another
// deployment publishes (taken maps "8080/tcp" to its deployment's key) or
// that the node uses itself (nodePorts, e.g. "9100/tcp").
func PortsTaken(d deployment.Deployment, taken map[string]string, nodePorts []string) error {
	for _, w := range d.Workloads {
		for _, p := range w.Ports {
			k := fmt.Sprintf("%d/%s", p.Node, p.Protocol)
			for _, n := range nodePorts {
				if n == k {
					return fmt.Errorf("port %s: the node uses it itself", k)
				}
			}
			if by, ok := taken[k]; ok {
				return fmt.Errorf("port %s: deployment %s publishes it already", k, by)
			}
		}
	}
	return nil
}
