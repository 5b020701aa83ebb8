package shim

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"

	"github.com/gridnode/gridnode/workload/container"
)

// cpuPeriod is the cgroup CPU bandwidth period: 100 ms, the kernel's
// default.
const cpuPeriod = 100000

func stats(dir string, stdout io.Writer) error {
	c, err := loadContainer(dir)
	if err != nil {
		return err
	}
	st, err := c.Stats()
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID(), err)
	}
	cg := st.CgroupStats
	return json.NewEncoder(stdout).Encode(container.Stats{
		MemoryBytes: cg.MemoryStats.Usage.Usage,
		CPUNanos:    cg.CpuStats.CpuUsage.TotalUsage,
		Pids:        cg.PidsStats.Current,
	})
}

// parent creates (or updates) the cgroup every workload runs under, capped
// so the node keeps its reserve whatever the workloads do.
func parent(arg string) error {
	var p container.Parent
	if err := json.Unmarshal([]byte(arg), &p); err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	if p.Path == "" || p.MemoryBytes <= 0 || p.CPUs <= 0 || p.Pids < 0 {
		return fmt.Errorf("parent %s: path, memory and cpus are all required", arg)
	}
	r := &cgroups.Resources{
		Memory:      p.MemoryBytes,
		MemorySwap:  p.MemoryBytes, // memory+swap = memory: no swap
		CpuQuota:    int64(p.CPUs * cpuPeriod),
		CpuPeriod:   cpuPeriod,
		SkipDevices: true,
	}
	if p.Pids > 0 {
		r.PidsLimit = &p.Pids
	}
	m, err := manager.New(&cgroups.Cgroup{Path: p.Path, Resources: r})
	if err != nil {
		return fmt.Errorf("parent cgroup %s: %w", p.Path, err)
	}
	if err := m.Apply(-1); err != nil {
		return fmt.Errorf("parent cgroup %s: %w", p.Path, err)
	}
	if err := m.Set(r); err != nil {
		return fmt.Errorf("parent cgroup %s: setting its caps: %w", p.Path, err)
	}
	return nil
}
