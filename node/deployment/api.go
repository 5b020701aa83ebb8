package deployment

import (
	"net/url"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// The node's deployments API, served by the workloads module and forwarded
// by the node's status server (default port 9100). Every request is signed
// with X-Auth and X-Auth-Strict (grid/api: the registrar's strict scheme
// over method, path, body hash, timestamp and nonce) by a twin's key:
//
//	POST   /api/v1/deployments                       deploy (body: Canonical JSON) → 202 Status
//	GET    /api/v1/deployments                       the signer's deployments (all of them for the farm's owner) → []Status
//	GET    /api/v1/deployments/NAME                  → Status
//	DELETE /api/v1/deployments/NAME[?purge=1]        undeploy (purge: also its volumes) → 200 Status
//	GET    /api/v1/deployments/NAME/logs/WORKLOAD    the workload's log; ?follow=1 streams, ?tail=BYTES
//
// Answers other than 2xx carry Error. 400 a bad body, 401 unsigned, a bad
// signature, an expired timestamp or a replayed nonce, 403 a twin the node
// does not let deploy, 404 no such deployment of the signer, 409 not
// enough capacity (Need and Free say the numbers) or a port taken, 503 the
// node cannot take deployments (no cache disk) or cannot check a twin's key
// yet (registrar unreachable and the key not cached).
const Path = "/api/v1/deployments"

// PathOf is the path of one deployment.
func PathOf(name string) string { return Path + "/" + url.PathEscape(name) }

// LogsPath is the path of a workload's log.
func LogsPath(name, workload string) string {
	return PathOf(name) + "/logs/" + url.PathEscape(workload)
}

// Error is the body of an answer other than 2xx.
type Error struct {
	Error string `json:"error"`
	// Need and Free are set on 409 for capacity: what the deployment asks
	// and what the node has left.
	Need *fact.Resources `json:"need,omitempty"`
	Free *fact.Resources `json:"free,omitempty"`
}

// States of a deployment.
const (
	StatePending  = "pending"  // accepted, images not pulled yet
	StatePulling  = "pulling"  // pulling images
	StateRunning  = "running"  // every workload runs (or exited by its policy)
	StateDegraded = "degraded" // some workload restarts or failed
	StateFailed   = "failed"   // cannot run: Reason says why
	StateStopping = "stopping"
)

// Status is a deployment as the node reports it to its owner.
type Status struct {
	Owner      uint64 `json:"owner"`
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	// State is one of the State* values; Reason says why, in words, when
	// it is failed or degraded.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Address is the deployment's address on the node's workload bridge.
	Address   string           `json:"address,omitempty"`
	Workloads []WorkloadStatus `json:"workloads"`
	Created   time.Time        `json:"created"`
	Updated   time.Time        `json:"updated"`
}

// WorkloadStatus is one workload of a deployment.
type WorkloadStatus struct {
	Name string `json:"name"`
	// State is one of fact's Workload* states.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Image is the reference as deployed; Digest the manifest digest it
	// was pinned to ("" until pinned).
	Image    string `json:"image"`
	Digest   string `json:"digest,omitempty"`
	Restarts int    `json:"restarts"`
	// LastExit is how the last run ended, "" before the first exit.
	LastExit string `json:"last_exit,omitempty"`
	Ports    []Port `json:"ports,omitempty"`
	// MilliCPU is the CPU in use, averaged over the last few seconds;
	// Memory the memory in use, in bytes.
	MilliCPU uint64 `json:"millicpu"`
	Memory   uint64 `json:"memory_bytes"`
	// Pull is the progress of the image pull while pulling.
	Pull  *Progress `json:"pull,omitempty"`
	Since time.Time `json:"since"`
}

// Progress is how far an image pull is: bytes of the blobs that are on the
// node (from a cache or downloaded) of the total.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Running says whether every workload runs or exited by its policy, i.e.
// the deployment reached what was asked.
func (s Status) Running() bool {
	if len(s.Workloads) == 0 {
		return false
	}
	for _, w := range s.Workloads {
		if w.State != fact.WorkloadRunning && w.State != fact.WorkloadExited {
			return false
		}
	}
	return true
}

// Failed returns the first failed workload's reason, or the deployment's,
// and whether anything failed.
func (s Status) Failed() (string, bool) {
	for _, w := range s.Workloads {
		if w.State == fact.WorkloadFailed {
			return w.Name + ": " + w.Reason, true
		}
	}
	return s.Reason, s.State == StateFailed
}
