package fact

import (
	"fmt"
	"strings"
	"time"
)

// Upgrade is the fact "upgrade", published by the upgrade module at once on
// start and on every change: the release the node runs, the channel it
// follows, what it is doing about it, and how its last trial ended. The
// registrar module reports Running, RolledBack and RolledBackFrom with
// every uptime report.
type Upgrade struct {
	// Running is the version of the release this node runs.
	Running string `json:"running"`
	// Channel is the channel followed, "none" when upgrades are off.
	Channel string `json:"channel"`
	// State is one of the Upg* states.
	State string `json:"state"`
	// Message says in words what the module does or why it does nothing,
	// e.g. "0.3.0 offered (sequence 4); this node is not in wave 10%".
	Message string `json:"message,omitempty"`
	// Offer is the release the channel offers, once a document was
	// accepted.
	Offer *UpgradeOffer `json:"offer,omitempty"`
	// Download is the release being pulled.
	Download *UpgradeDownload `json:"download,omitempty"`
	// Trial is set while this boot is a trial of the release it runs.
	Trial *UpgradeTrial `json:"trial,omitempty"`
	// Medium says what became of the boot medium after the last trial
	// passed: the release written as its default, or why it was not
	// (a CD, a netboot, a stick without slots).
	Medium string `json:"medium,omitempty"`
	// RolledBack is true when this boot came back from a trial that
	// failed: RolledBackFrom is the version that failed.
	RolledBack     bool   `json:"rolled_back"`
	RolledBackFrom string `json:"rolled_back_from,omitempty"`
	// Failed lists the versions whose trial failed: not tried again until
	// a channel document of a newer sequence offers them.
	Failed []string `json:"failed,omitempty"`
	// LastCheck is when the channel was last read; LastError the last
	// failure in words, "" after a success.
	LastCheck *time.Time `json:"last_check,omitempty"`
	LastError string     `json:"last_error,omitempty"`
}

// UpgradeOffer is a channel document the node accepted, and where the node
// stands in its rollout.
type UpgradeOffer struct {
	Version  string `json:"version"`
	Sequence uint64 `json:"sequence"`
	Release  string `json:"release"` // REGISTRY/REPO@sha256:…
	// SharePPM is the share of nodes the rollout is open to now (parts per
	// million), PointPPM where this node falls; In says whether it is in
	// (Canary: as a canary farm's node).
	SharePPM uint32 `json:"share_ppm"`
	PointPPM uint32 `json:"point_ppm"`
	In       bool   `json:"in"`
	Canary   bool   `json:"canary,omitempty"`
	Paused   bool   `json:"paused,omitempty"`
}

// UpgradeDownload is a release being pulled.
type UpgradeDownload struct {
	Version string `json:"version"`
	File    string `json:"file"`
	Bytes   int64  `json:"bytes"`
	Total   int64  `json:"total"`
}

// UpgradeTrial is the trial this boot is.
type UpgradeTrial struct {
	Version string `json:"version"`
	From    string `json:"from,omitempty"`
	// Deadline is when the trial fails unless healthy (this machine's
	// clock; the module counts from the kernel's start).
	Deadline time.Time `json:"deadline"`
	// Waiting lists what the trial still waits for, in words.
	Waiting []string `json:"waiting,omitempty"`
	// Watchdog says whether the hardware watchdog guards the trial.
	Watchdog bool `json:"watchdog"`
}

// States of the upgrade fact.
const (
	UpgOff         = "off"         // channel none, no release keys or no cache disk: Message says
	UpgIdle        = "idle"        // up to date, or nothing published
	UpgWaiting     = "waiting"     // a release is offered, not to this node yet (its wave, a pause, failed before)
	UpgDownloading = "downloading" // pulling the release
	UpgJumping     = "kexec"       // the new kernel is loaded; PID 1 stops the modules and jumps
	UpgTrial       = "trial"       // this boot is a trial: proving healthy
	UpgInstalling  = "installing"  // healthy: writing the release to the boot medium
	UpgError       = "error"       // the last attempt failed: LastError says why; retried at the next poll
)

// Summary is one line for people: "running 0.2.0, channel stable: idle
// (up to date)".
func (u Upgrade) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "running %s, channel %s: %s", u.Running, u.Channel, u.State)
	if u.Message != "" {
		b.WriteString(" (" + u.Message + ")")
	}
	if d := u.Download; d != nil && u.State == UpgDownloading {
		fmt.Fprintf(&b, " %d/%d bytes", d.Bytes, d.Total)
	}
	if u.Medium != "" {
		b.WriteString("; medium: " + u.Medium)
	}
	if u.RolledBack {
		fmt.Fprintf(&b, "; rolled back from %s", u.RolledBackFrom)
	}
	if u.LastError != "" && u.State == UpgError {
		b.WriteString(": " + u.LastError)
	}
	return b.String()
}
