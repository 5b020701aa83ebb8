package fact

import "time"

// Modules is the fact "modules" that PID 1's supervisor publishes on every
// change: the state of each module by name.
type Modules map[string]Module

// Module is the state of one supervised module.
type Module struct {
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"`
	Since    time.Time `json:"since"`
}

// Module states.
const (
	StateWaiting    = "waiting"    // dependencies not ready yet
	StateStarting   = "starting"   // running, not ready yet
	StateReady      = "ready"      // running and ready
	StateRestarting = "restarting" // exited, waiting for its backoff to restart
	StateStopped    = "stopped"    // a oneshot that finished, or stopped at shutdown
	StateFailed     = "failed"     // could not be started (bad program); retried with backoff
)
