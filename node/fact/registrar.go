package fact

import "time"

// Registrar is the fact "registrar", published by the registrar module at
// once on start and on every change.
type Registrar struct {
	// URL is the registrar's base URL (network names resolved).
	URL string `json:"url"`
	// FarmID is the farm the node registers under.
	FarmID uint64 `json:"farm_id"`
	// State is one of the Reg* states.
	State string `json:"state"`
	// TwinID and NodeID are 0 until known.
	TwinID uint64 `json:"twin_id"`
	NodeID uint64 `json:"node_id"`
	// LastError is the last failure in words, "" after a success.
	LastError string `json:"last_error"`
	// Unreachable is true when the last attempt got no answer from the
	// registrar, or one that says it cannot serve now (5xx, 429): it is
	// down or overloaded, not refusing the node. A trial boot counts that
	// as no verdict on the release.
	Unreachable bool `json:"unreachable,omitempty"`
	// RetryIn is seconds until the next attempt after a failure.
	RetryIn int64 `json:"retry_in,omitempty"`
	// LastUptime is when the last uptime report was accepted.
	LastUptime *time.Time `json:"last_uptime"`
	// UptimeSent and UptimeFailed count uptime reports since the module
	// started.
	UptimeSent   uint64 `json:"uptime_sent"`
	UptimeFailed uint64 `json:"uptime_failed"`
}

// States of the registrar fact.
const (
	RegStarting    = "starting"
	RegRegistering = "registering"
	RegRegistered  = "registered"
	RegError       = "error"
)
