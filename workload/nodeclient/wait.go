package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/image"
)

// Pin pins each workload's tag to its digest where this machine reaches the
// registry, within timeout per image; report says what became of each
// (pinned, or why the node will pin it: the registry a node reaches is not
// always one the user's machine reaches).
func Pin(ctx context.Context, d *deployment.Deployment, timeout time.Duration, report func(workload, pinned string, err error)) {
	for i := range d.Workloads {
		w := &d.Workloads[i]
		if deployment.Pinned(w.Image) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		p, err := image.Pin(pctx, w.Image, d.Credentials, image.Options{})
		cancel()
		if err == nil {
			w.Image = p
		}
		report(w.Name, p, err)
	}
}

// Every is how often Wait asks the node.
var Every = time.Second

// Wait asks the node about deployment name every second until generation
// runs (nil), fails (an error with the node's reason), or ctx ends. A
// workload that exited and restarts counts as failed: what it said is in
// its log. progress gets each status the node sends.
func (c *Client) Wait(ctx context.Context, name string, generation uint64, progress func(deployment.Status)) (deployment.Status, error) {
	t := time.NewTicker(Every)
	defer t.Stop()
	for {
		st, err := c.Status(ctx, name)
		var ne *Error
		if errors.As(err, &ne) && ne.Status == 404 {
			return st, fmt.Errorf("deployment %s is gone from the node (undeployed meanwhile?)", name)
		}
		if err == nil {
			if progress != nil {
				progress(st)
			}
			if st.Generation != generation {
				return st, fmt.Errorf("deployment %s was replaced by generation %d meanwhile", name, st.Generation)
			}
			if reason, failed := st.Failed(); failed {
				return st, fmt.Errorf("deployment %s failed: %s", name, reason)
			}
			for _, w := range st.Workloads {
				if w.State == fact.WorkloadRestarting && w.Restarts > 0 {
					return st, fmt.Errorf("workload %s/%s does not stay up: %s (see gridnode logs %s/%s)", name, w.Name, w.Reason, name, w.Name)
				}
			}
			if st.Running() {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return st, fmt.Errorf("waiting for %s: %w (last: %v)", name, ctx.Err(), err)
			}
			return st, fmt.Errorf("waiting for %s to run: %w (state %s)", name, ctx.Err(), st.State)
		case <-t.C:
		}
	}
}

// Progress is one line saying how far a deployment is: each workload's
// state, and the pull's bytes while pulling.
func Progress(st deployment.Status) string {
	var parts []string
	for _, w := range st.Workloads {
		p := w.Name + " " + w.State
		if w.Pull != nil && w.Pull.Total > 0 {
			p += fmt.Sprintf(" %.1f/%.1f MiB", float64(w.Pull.Done)/(1<<20), float64(w.Pull.Total)/(1<<20))
		}
		parts = append(parts, p)
	}
	return st.Name + ": " + strings.Join(parts, ", ")
}

// WriteTable writes deployments as a table: deployment, workload, state,
// restarts, last exit, image digest, ports, CPU and memory in use (and the
// owner when there are several).
func WriteTable(w io.Writer, l []deployment.Status) error {
	owners := map[uint64]bool{}
	for _, s := range l {
		owners[s.Owner] = true
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "DEPLOYMENT\tGEN\tWORKLOAD\tSTATE\tRESTARTS\tLAST EXIT\tDIGEST\tPORTS\tCPU\tMEMORY"
	if len(owners) > 1 {
		head = "OWNER\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, s := range l {
		for _, wl := range s.Workloads {
			var ports []string
			for _, p := range wl.Ports {
				ports = append(ports, p.String())
			}
			digest := wl.Digest
			if len(digest) > 19 {
				digest = digest[:19] // sha256: and 12 hex digits
			}
			row := fmt.Sprintf("%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s", s.Name, s.Generation, wl.Name, wl.State, wl.Restarts,
				dash(wl.LastExit), dash(digest), dash(strings.Join(ports, ",")), deployment.MilliCPU(wl.MilliCPU), human(wl.Memory))
			if len(owners) > 1 {
				row = fmt.Sprintf("%d\t%s", s.Owner, row)
			}
			fmt.Fprintln(tw, row)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func human(b uint64) string {
	if b == 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
