package fact

import "time"

// Network is the fact "network", published by the network module once the
// management NIC has an address (that is its readiness) and on every change
// afterwards. When the lease is lost, Addresses is empty and Error says why.
type Network struct {
	Iface     string   `json:"iface"`
	MAC       string   `json:"mac"`
	Mode      string   `json:"mode"` // dhcp or static
	Addresses []string `json:"addresses"`
	Gateway   string   `json:"gateway,omitempty"`
	DNS       []string `json:"dns"`
	MTU       int      `json:"mtu,omitempty"`
	Lease     *Lease   `json:"lease,omitempty"`
	Clock     Clock    `json:"clock"`
	Error     string   `json:"error,omitempty"`
}

// Lease describes the current DHCPv4 lease.
type Lease struct {
	Server   string    `json:"server"`
	Obtained time.Time `json:"obtained"`
	Expires  time.Time `json:"expires"`
	Renewals int       `json:"renewals"`
}

// Clock says how the system clock was last set.
type Clock struct {
	Source   string    `json:"source"` // ntp, registrar or none
	Server   string    `json:"server,omitempty"`
	OffsetMS int64     `json:"offset_ms"`
	SyncedAt time.Time `json:"synced_at,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// NetworkStatus is the fact "network-status", written from the network
// module's first attempt on, so the console can say what is going on before
// there is an address.
type NetworkStatus struct {
	State   string       `json:"state"`
	Iface   string       `json:"iface,omitempty"`
	Error   string       `json:"error,omitempty"`
	NICs    []NICProblem `json:"nics,omitempty"`
	Updated time.Time    `json:"updated"`
}

// NICProblem is one candidate interface and what is wrong with it, if
// anything.
type NICProblem struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Problem string `json:"problem,omitempty"`
}

// States of network-status.
const (
	NetSearching   = "searching"   // looking for a NIC with carrier and a lease
	NetConfiguring = "configuring" // static configuration being applied
	NetUp          = "up"          // the NIC has an address
	NetLost        = "lost"        // the lease expired; back to searching
)
