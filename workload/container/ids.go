package container

import (
	"fmt"

	"github.com/gridnode/gridnode/workload/slot"
)

// Workload uid/gid ranges: 65536 ids each (a whole 16-bit id space, so any
// image's users fit), from FirstHostID up, far above the node's own ids.
const (
	FirstHostID = 1000000
	RangeSize   = 65536
	maxRanges   = (1<<32 - 1 - FirstHostID) / RangeSize
)

// Range is a deployment's host uid and gid range: container id 0 (root)
// is HostID, an unprivileged id on the node.
type Range struct {
	HostID, Size uint32
}

// Ranges hands out one range per deployment, kept in a file on the cache
// disk so a deployment keeps its range (and owns its volumes' files) across
// restarts and reboots.
type Ranges struct{ t *slot.Table }

// OpenRanges returns the range table kept in the file path.
func OpenRanges(path string) *Ranges { return &Ranges{slot.Open(path, maxRanges)} }

// Get returns the deployment's range, allocating it on first use.
func (r *Ranges) Get(deployment string) (Range, error) {
	n, err := r.t.Get(deployment)
	if err != nil {
		return Range{}, fmt.Errorf("uid range for %s: %w", deployment, err)
	}
	return Range{HostID: FirstHostID + uint32(n)*RangeSize, Size: RangeSize}, nil
}

// Release frees the deployment's range. Call it only once its volumes are
// gone: their files are owned by the range.
func (r *Ranges) Release(deployment string) error { return r.t.Release(deployment) }
