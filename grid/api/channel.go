package api

import (
	"time"

	"github.com/gridnode/gridnode/upgrade/doc"
)

// Release channel routes, under both prefixes. GET doc.ChannelPath(NAME)
// is public and answers a doc.ChannelState with an ETag (If-None-Match
// gets 304); PUT there takes the signed envelope from the registrar's
// admin twin (X-Auth). The routes below complete it.
//
//   - GET ChannelStatusPath(NAME), public: a ChannelStatus.
//   - POST ChannelPausePath(NAME), admin twin, body {} or a PauseRequest:
//     caps the rollout at the share it reached and stops it; answers a
//     ChannelStatus.
//   - POST ChannelResumePath(NAME), admin twin: lifts a pause (not the
//     cap: only a newly signed document moves a rollout past it); answers
//     a ChannelStatus.
func ChannelStatusPath(name string) string { return doc.ChannelPath(name) + "/status" }

// ChannelPausePath is the admin's pause of a rollout.
func ChannelPausePath(name string) string { return doc.ChannelPath(name) + "/pause" }

// ChannelResumePath is the admin's resume of a paused rollout.
func ChannelResumePath(name string) string { return doc.ChannelPath(name) + "/resume" }

// PauseRequest is the optional body of a pause: why, for the status.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ChannelStatus is a channel's rollout as the registrar sees it.
type ChannelStatus struct {
	Channel  string    `json:"channel"`
	Sequence uint64    `json:"sequence"`
	Version  string    `json:"version"`
	Release  string    `json:"release"`
	Expires  time.Time `json:"expires"`
	StoredAt time.Time `json:"stored_at"` // when the registrar took this sequence
	// Wave is the wave in force by the document and the registrar's clock
	// (1 is the first), 0 before the first starts; Waves how many the
	// document has, NextWave when the next one starts.
	Wave     int        `json:"wave"`
	Waves    int        `json:"waves"`
	NextWave *time.Time `json:"next_wave,omitempty"`
	// WaveSharePPM is the signed share of the wave in force; SharePPM the
	// share nodes act on, after the hold (upgrade/gate.Share).
	WaveSharePPM uint32   `json:"wave_share_ppm"`
	SharePPM     uint32   `json:"share_ppm"`
	Hold         doc.Hold `json:"hold"`
	// Pause says who paused the rollout and why, while it is paused.
	Pause *HoldNote `json:"pause,omitempty"`
	// Halt says why the registrar halted the rollout (capped it at the
	// previous wave's share), until a newly signed document clears it.
	Halt *HoldNote `json:"halt,omitempty"`
	// Nodes are the counts of the last evaluation (nil before the first).
	Nodes *RolloutNodes `json:"nodes,omitempty"`
}

// HoldNote is when and why a hold was set.
type HoldNote struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Twin   uint64    `json:"twin,omitempty"` // who paused; 0 for the registrar
}

// RolloutNodes counts a channel's nodes: those that report the channel,
// and those that report a version but no channel. A node is offline when
// it has not reported for 1.5 report intervals.
type RolloutNodes struct {
	At       time.Time      `json:"at"` // when the registrar counted
	Versions []VersionCount `json:"versions"`
	// Upgraded took the channel's version: they report it, or rolled back
	// from it. UpgradedOffline of them report it but went offline;
	// RolledBack rolled back from it.
	Upgraded        int64 `json:"upgraded"`
	UpgradedOffline int64 `json:"upgraded_offline"`
	RolledBack      int64 `json:"rolled_back"`
	// Baseline are the nodes that reported since the document was stored
	// and did not take the version; BaselineOffline of them went offline.
	Baseline        int64 `json:"baseline"`
	BaselineOffline int64 `json:"baseline_offline"`
}

// VersionCount is how many of a channel's nodes report a version, and how
// many of those are online.
type VersionCount struct {
	Version string `json:"version"`
	Nodes   int64  `json:"nodes"`
	Online  int64  `json:"online"`
}
