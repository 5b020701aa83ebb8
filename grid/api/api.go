// Package api holds the wire types and signing rules of the grid registrar API
// (ThreeFold node-registrar v1; see shared/registrar-api.md). The node client,
// the farmer CLI, the simulator and the server all use these, so the contract
// lives in one place.
package api

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Prefixes under which every route is served.
const (
	Prefix    = "/api/v1"
	AltPrefix = "/v1"
)

// OnlineWindow is how recently a node must have reported to count as online.
const OnlineWindow = 40 * time.Minute

// AccountWindow is how far an account creation timestamp may be from the
// server's clock; UptimeWindow the same for uptime reports; ChallengeMaxAge
// how old an X-Auth challenge may be.
const (
	AccountWindow   = 2 * time.Second
	UptimeWindow    = 60 * time.Second
	ChallengeMaxAge = 60 * time.Second
)

// Error is the body of every non-2xx answer.
type Error struct {
	Error      string `json:"error"`
	ServerTime int64  `json:"server_time,omitempty"`
}

// CreateAccount is the body of POST /accounts.
type CreateAccount struct {
	Timestamp int64    `json:"timestamp"`
	PublicKey string   `json:"public_key"`
	Signature string   `json:"signature"`
	Relays    []string `json:"relays,omitempty"`
	RMBEncKey string   `json:"rmb_enc_key,omitempty"`
}

// Account is a twin.
type Account struct {
	TwinID    uint64    `json:"twin_id"`
	Relays    []string  `json:"relays"`
	RMBEncKey string    `json:"rmb_enc_key"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	PublicKey string    `json:"public_key"`
}

// UpdateAccount is the body of PATCH /accounts/:twin_id.
type UpdateAccount struct {
	Relays    []string `json:"relays"`
	RMBEncKey string   `json:"rmb_enc_key"`
}

// Farm as the registrar returns it.
type Farm struct {
	FarmID         uint64    `json:"farm_id"`
	FarmName       string    `json:"farm_name"`
	TwinID         uint64    `json:"twin_id"`
	StellarAddress string    `json:"stellar_address"`
	Dedicated      bool      `json:"dedicated"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// CreateFarm is the body of POST /farms.
type CreateFarm struct {
	FarmName       string `json:"farm_name"`
	TwinID         uint64 `json:"twin_id"`
	StellarAddress string `json:"stellar_address"`
	Dedicated      bool   `json:"dedicated"`
}

// UpdateFarm is the body of PATCH /farms/:farm_id.
type UpdateFarm struct {
	FarmName       string `json:"farm_name"`
	StellarAddress string `json:"stellar_address"`
}

// FarmID is the answer to POST /farms.
type FarmID struct {
	FarmID uint64 `json:"farm_id"`
}

// NodeID is the answer to POST /nodes.
type NodeID struct {
	NodeID uint64 `json:"node_id"`
}

// Location is four strings; "unknown" where not known.
type Location struct {
	Country   string `json:"country"`
	City      string `json:"city"`
	Longitude string `json:"longitude"`
	Latitude  string `json:"latitude"`
}

// Resources is a node's capacity: cru logical CPUs, mru memory bytes, sru SSD
// bytes, hru HDD bytes.
type Resources struct {
	HRU uint64 `json:"hru"`
	SRU uint64 `json:"sru"`
	CRU uint64 `json:"cru"`
	MRU uint64 `json:"mru"`
}

// Interface is one network interface of a node.
type Interface struct {
	Name string `json:"name"`
	Mac  string `json:"mac"`
	IPs  IPs    `json:"ips"`
}

// IPs accepts a JSON list of addresses or one string of addresses joined by
// "/", as the reference server stores them; it is sent as a list.
type IPs []string

// UnmarshalJSON implements json.Unmarshaler.
func (ips *IPs) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*ips = nil
		for _, p := range strings.Split(s, "/") {
			if p = strings.TrimSpace(p); p != "" {
				*ips = append(*ips, p)
			}
		}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*ips = l
	return nil
}

// Node as the registrar returns it. The reference server answers with a
// capitalised "Interfaces" key; Node decodes either spelling and encodes the
// reference's.
type Node struct {
	NodeID       uint64      `json:"node_id"`
	FarmID       uint64      `json:"farm_id"`
	TwinID       uint64      `json:"twin_id"`
	Location     Location    `json:"location"`
	Resources    Resources   `json:"resources"`
	Interfaces   []Interface `json:"Interfaces"`
	SecureBoot   bool        `json:"secure_boot"`
	Virtualized  bool        `json:"virtualized"`
	SerialNumber string      `json:"serial_number"`
	LastSeen     *time.Time  `json:"last_seen"`
	Online       bool        `json:"online"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	Approved     bool        `json:"approved"`
	// gridnode extensions (report.go): the node's GPUs as it last
	// sent them, and the release it last reported with its uptime.
	GPUs []GPU `json:"gpus,omitempty"`
	OSState
	// OSVersionSince is when the registrar first saw the node report
	// OSVersion (nil when it never reported one).
	OSVersionSince *time.Time `json:"os_version_since,omitempty"`
}

// UnmarshalJSON accepts "interfaces" as well as "Interfaces".
func (n *Node) UnmarshalJSON(b []byte) error {
	type plain Node
	var aux struct {
		plain
		Lower []Interface `json:"interfaces"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*n = Node(aux.plain)
	if len(n.Interfaces) == 0 && len(aux.Lower) > 0 {
		n.Interfaces = aux.Lower
	}
	return nil
}

// CreateNode is the body of POST /nodes; UpdateNode of PATCH /nodes/:id.
type CreateNode struct {
	TwinID       uint64      `json:"twin_id"`
	FarmID       uint64      `json:"farm_id"`
	Resources    Resources   `json:"resources"`
	Location     Location    `json:"location"`
	Interfaces   []Interface `json:"interfaces"`
	SecureBoot   bool        `json:"secure_boot"`
	Virtualized  bool        `json:"virtualized"`
	SerialNumber string      `json:"serial_number"`
	GPUs         []GPU       `json:"gpus,omitempty"` // extension (report.go)
}

// UpdateNode is the body of PATCH /nodes/:node_id.
type UpdateNode struct {
	FarmID       uint64      `json:"farm_id"`
	Resources    Resources   `json:"resources"`
	Location     Location    `json:"location"`
	Interfaces   []Interface `json:"interfaces"`
	SecureBoot   bool        `json:"secure_boot"`
	Virtualized  bool        `json:"virtualized"`
	SerialNumber string      `json:"serial_number"`
	GPUs         []GPU       `json:"gpus,omitempty"` // extension (report.go)
}

// Uptime is the body of POST /nodes/:node_id/uptime. OSState's fields are
// a gridnode extension (report.go), absent from a reference node's
// report.
type Uptime struct {
	Uptime    uint64 `json:"uptime"`
	Timestamp int64  `json:"timestamp"`
	OSState
}

// ZOSVersion is the decoded form of GET /zos/version.
type ZOSVersion struct {
	Version       string `json:"version"`
	SafeToUpgrade bool   `json:"safe_to_upgrade"`
}

// SetZOSVersion is the body of PUT /zos/version: base64 of a ZOSVersion.
type SetZOSVersion struct {
	Version string `json:"version"`
}

// ValidFarmName checks a farm name: 1 to 40 ASCII letters and digits.
func ValidFarmName(n string) error {
	if n == "" || len(n) > 40 {
		return errors.New("invalid farm_name: want 1 to 40 letters and digits")
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return errors.New("invalid farm_name: want only letters and digits")
		}
	}
	return nil
}

// ValidStellar checks the shape of a Stellar account address: G and 55
// more uppercase letters and digits (no checksum test).
func ValidStellar(a string) error {
	if len(a) != 56 || a[0] != 'G' {
		return errors.New("invalid stellar_address: want 56 characters starting with G")
	}
	for _, c := range a {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return errors.New("invalid stellar_address: want uppercase letters and digits")
		}
	}
	return nil
}
