package admission

import (
	"errors"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
)

const gib = 1 << 30

// TestReserve: the node keeps max(256 MiB, 10 %) of memory, half a CPU and
// max(2 GiB, 20 %) of the cache, never more than it has.
func TestReserve(t *testing.T) {
	for _, c := range []struct{ total, want fact.Resources }{
		{fact.Resources{MilliCPU: 2000, Memory: 1 * gib, Disk: 8 * gib}, fact.Resources{MilliCPU: 500, Memory: 256 << 20, Disk: 2 * gib}},
		{fact.Resources{MilliCPU: 64000, Memory: 512 * gib, Disk: 100 * gib, GPUs: 2}, fact.Resources{MilliCPU: 500, Memory: 512 * gib / 10, Disk: 20 * gib}},
		{fact.Resources{MilliCPU: 100, Memory: 100 << 20, Disk: 1 * gib}, fact.Resources{MilliCPU: 100, Memory: 100 << 20, Disk: 1 * gib}},
	} {
		if got := Reserve(c.total); got != c.want {
			t.Errorf("Reserve(%+v) = %+v; want %+v", c.total, got, c.want)
		}
	}
}

// TestAdmit: a deployment that fits what is left is admitted; one over in
// any resource is refused with the numbers, and what others use counts.
func TestAdmit(t *testing.T) {
	total := fact.Resources{MilliCPU: 2000, Memory: 1 * gib, Disk: 8 * gib, GPUs: 1}
	c := Capacity(total, fact.Resources{})
	if c.Free != (fact.Resources{MilliCPU: 1500, Memory: 768 << 20, Disk: 6 * gib, GPUs: 1}) {
		t.Fatalf("free on an empty node = %+v", c.Free)
	}
	if err := Admit(c, fact.Resources{MilliCPU: 1500, Memory: 768 << 20, Disk: 6 * gib, GPUs: 1}); err != nil {
		t.Fatalf("exactly what is free: %v", err)
	}
	used := Capacity(total, fact.Resources{MilliCPU: 1000, Memory: 512 << 20, Disk: 1 * gib})
	err := Admit(used, fact.Resources{MilliCPU: 1000, Memory: 300 << 20, Disk: 1 * gib, GPUs: 2})
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("over: %v; want a *Refusal", err)
	}
	want := "not enough capacity left on this node: cpu: needs 1, 0.5 free; memory: needs 300.0 MiB, 256.0 MiB free; gpus: needs 2, 1 free"
	if err.Error() != want || r.Free.Memory != 256<<20 || r.Need.MilliCPU != 1000 {
		t.Fatalf("refusal %q %+v\nwant %q", err, r, want)
	}
	if full := Capacity(total, fact.Resources{Memory: 2 * gib}); full.Free.Memory != 0 {
		t.Fatalf("free below zero: %+v", full.Free)
	}
}

// TestPortsTaken: a port of another deployment or of the node is refused.
func TestPortsTaken(t *testing.T) {
	d := deployment.Deployment{Name: "a", Workloads: []deployment.Workload{{Ports: []deployment.Port{{Node: 8080, Container: 80, Protocol: "tcp"}}}}}
	if err := PortsTaken(d, map[string]string{"8080/udp": "t1-x"}, []string{"9100/tcp"}); err != nil {
		t.Fatalf("free port: %v", err)
	}
	if err := PortsTaken(d, map[string]string{"8080/tcp": "t1-x"}, nil); err == nil || !strings.Contains(err.Error(), "t1-x") {
		t.Fatalf("taken port: %v", err)
	}
	d.Workloads[0].Ports[0].Node = 9100
	if err := PortsTaken(d, nil, []string{"9100/tcp"}); err == nil {
		t.Fatal("the node's own port accepted")
	}
}
