// Package config is the node's configuration: what the image bakes in
// (/etc/gridnode/node.yaml), what the boot medium's gridnode.conf says, and
// the gridnode.* keys of the kernel command line, later sources winning.
//
// The image builder uses the same type to check a spec's node section, so a
// key the node would not understand is refused at build time.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/internal/strictyaml"
)

// ImagePath is where the builder puts the baked-in configuration.
const ImagePath = "/etc/gridnode/node.yaml"

// Flavours of image.
const (
	FlavourNode  = "node"
	FlavourDebug = "debug"
)

// Node is the whole configuration of a node.
type Node struct {
	// Flavour is "node" or "debug" (a shell on tty2 and the second serial line).
	Flavour string `yaml:"flavour,omitempty" json:"flavour"`
	// Farm is the farm id the node registers under.
	Farm uint64 `yaml:"farm" json:"farm"`
	// Registrar is a base URL (http://host:port) or a network name (dev, test, qa, main).
	Registrar string `yaml:"registrar" json:"registrar"`
	// Network is "dhcp" or "static:IFACE_OR_MAC,ADDR/PREFIX,GATEWAY,DNS".
	Network string `yaml:"network,omitempty" json:"network"`
	// Iface forces the management NIC, by name or MAC.
	Iface string `yaml:"iface,omitempty" json:"iface,omitempty"`
	// Uptime is how often the node reports its uptime.
	Uptime Duration `yaml:"uptime,omitempty" json:"uptime"`
	// Location is "COUNTRY,CITY,LAT,LONG"; empty means unknown.
	Location string `yaml:"location,omitempty" json:"location,omitempty"`
	// Wipe lists disk serials the node may wipe although they hold data, or "all".
	Wipe []string `yaml:"wipe,omitempty" json:"wipe,omitempty"`
	// DiskType overrides the kernel's rotational flag: serial → "ssd" or "hdd".
	DiskType map[string]string `yaml:"disktype,omitempty" json:"disktype,omitempty"`
	// Hostname of the node; empty means derived from the node key.
	Hostname string `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	// Status is where the status endpoint (and the deployments API) listens:
	// HOST:PORT, :PORT (every address), or mgmt:PORT (only connections that
	// arrive on the management NIC); see ParseStatus.
	Status string `yaml:"status,omitempty" json:"status"`
	// NTP servers; empty means pool.ntp.org, then the registrar's clock.
	NTP []string `yaml:"ntp,omitempty" json:"ntp,omitempty"`
	// Boot names the medium the node booted from: kernel, iso, usb, pxe. On
	// iso and usb the node waits for the medium (label GRIDNODE) and reads
	// gridnode.conf from it.
	Boot string `yaml:"boot,omitempty" json:"boot,omitempty"`
	// Modules, when set, limits which modules the supervisor starts (tests, debugging).
	Modules []string `yaml:"modules,omitempty" json:"modules,omitempty"`
	// Deployers are the twins, besides the farm's owner, that may deploy
	// workloads on the node, or "any".
	Deployers []string `yaml:"deployers,omitempty" json:"deployers,omitempty"`
	// RegistryMirror is a registry (HOST[:PORT], or http://HOST[:PORT])
	// tried first for every image the node pulls.
	RegistryMirror string `yaml:"registry_mirror,omitempty" json:"registry_mirror,omitempty"`
	// Channel is the release channel the node follows (Channels), or
	// "none": no upgrades.
	Channel string `yaml:"channel,omitempty" json:"channel"`
	// UpgradePoll is how often the node asks the registrar for its
	// channel's document (with jitter).
	UpgradePoll Duration `yaml:"upgrade_poll,omitempty" json:"upgrade_poll"`
	// UpgradeTrial is how long a release on trial has, from its kernel's
	// start, to prove healthy before the node goes back to the release it
	// came from.
	UpgradeTrial Duration `yaml:"upgrade_trial,omitempty" json:"upgrade_trial"`
}

// Channels are the release channels a node can follow; ChannelNone turns
// upgrades off.
var Channels = []string{"stable", "beta", "edge"}

// ChannelNone is the channel value that turns upgrades off.
const ChannelNone = "none"

// Default is the configuration before any source is read.
func Default() Node {
	return Node{
		Flavour: FlavourNode,
		Network: "dhcp",
		Uptime:  Duration(40 * time.Minute),
		Status:  ":9100",
		Channel: "stable",
		// Hourly: a million nodes make about 280 polls a second.
		UpgradePoll: Duration(time.Hour),
		// Generous: a loaded machine, or an emulated one, boots to ready
		// in minutes; a trial that needs longer is sick anyway.
		UpgradeTrial: Duration(10 * time.Minute),
	}
}

// Duration is a time.Duration written as "40m" in YAML and JSON.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 10s, 40m, 1h)", b)
	}
	if v <= 0 {
		return fmt.Errorf("bad duration %q: must be positive", b)
	}
	*d = Duration(v)
	return nil
}

// RegistrarURL resolves Registrar to a base URL (a network name to its URL,
// see api.ResolveRegistrar); a value that is no registrar (Validate refuses
// it) comes back trimmed, for the registrar module to say what is wrong.
func (n Node) RegistrarURL() string {
	if u, err := api.ResolveRegistrar(n.Registrar); err == nil {
		return u
	}
	return strings.TrimSpace(n.Registrar)
}

// Validate checks values that YAML types alone do not.
func (n Node) Validate() error {
	switch n.Flavour {
	case FlavourNode, FlavourDebug:
	default:
		return fmt.Errorf("flavour %q: allowed values are node, debug", n.Flavour)
	}
	if n.Registrar != "" {
		if _, err := api.ResolveRegistrar(n.Registrar); err != nil {
			return err
		}
	}
	if n.Network != "dhcp" && !strings.HasPrefix(n.Network, "static:") {
		return fmt.Errorf("network %q: allowed values are dhcp, static:IFACE_OR_MAC,ADDR/PREFIX,GATEWAY,DNS", n.Network)
	}
	if strings.HasPrefix(n.Network, "static:") {
		if _, err := ParseStatic(n.Network); err != nil {
			return err
		}
	}
	if n.Location != "" && len(strings.Split(n.Location, ",")) != 4 {
		return fmt.Errorf("location %q: want COUNTRY,CITY,LAT,LONG", n.Location)
	}
	for s, t := range n.DiskType {
		if t != "ssd" && t != "hdd" {
			return fmt.Errorf("disktype %s=%q: allowed values are ssd, hdd", s, t)
		}
	}
	if n.Channel != ChannelNone && !slices.Contains(Channels, n.Channel) {
		return fmt.Errorf("channel %q: allowed values are %s, %s", n.Channel, strings.Join(Channels, ", "), ChannelNone)
	}
	for _, d := range n.Deployers {
		if _, err := strconv.ParseUint(d, 10, 64); err != nil && d != "any" {
			return fmt.Errorf("deployers %q: want twin ids (TWIN,TWIN) or any", d)
		}
	}
	if _, err := ParseStatus(n.Status); err != nil {
		return err
	}
	if m := strings.TrimPrefix(n.RegistryMirror, "http://"); n.RegistryMirror != "" && (m == "" || strings.ContainsAny(m, "/ ") || strings.HasPrefix(m, "https:")) {
		return fmt.Errorf("registry_mirror %q: want HOST[:PORT], or http://HOST[:PORT] for a mirror without TLS", n.RegistryMirror)
	}
	return nil
}

// Mgmt is the host part of a status address that means "the management
// NIC": mgmt:9100.
const Mgmt = "mgmt"

// StatusAddr is a parsed gridnode.status.
type StatusAddr struct {
	// Mgmt says the endpoint takes connections that arrive on the
	// management NIC only, whatever its addresses (DHCP may change them),
	// on Port; Addr is then ":PORT".
	Mgmt bool
	// Addr is what to listen on (net.Listen's "tcp" address).
	Addr string
	Port string
}

// ParseStatus parses gridnode.status: "HOST:PORT", ":PORT" or
// "mgmt:PORT"; empty means ":9100".
func ParseStatus(s string) (StatusAddr, error) {
	if s == "" {
		s = ":9100"
	}
	host, port, err := net.SplitHostPort(s)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		return StatusAddr{}, fmt.Errorf("status %q: want HOST:PORT, :PORT or mgmt:PORT (only the management NIC), e.g. mgmt:9100", s)
	}
	if host == Mgmt {
		return StatusAddr{Mgmt: true, Addr: ":" + port, Port: port}, nil
	}
	if host != "" && net.ParseIP(host) == nil {
		return StatusAddr{}, fmt.Errorf("status %q: the host must be an IP address (or mgmt: the management NIC)", s)
	}
	return StatusAddr{Addr: s, Port: port}, nil
}

// Static is a static network configuration.
type Static struct {
	Iface   string // name or MAC
	Addr    string // ADDR/PREFIX
	Gateway string
	DNS     []string
}

// ParseStatic parses "static:IFACE_OR_MAC,ADDR/PREFIX,GATEWAY,DNS[,DNS...]".
func ParseStatic(s string) (Static, error) {
	f := strings.Split(strings.TrimPrefix(s, "static:"), ",")
	if len(f) < 3 || !strings.Contains(f[1], "/") {
		return Static{}, fmt.Errorf("network %q: want static:IFACE_OR_MAC,ADDR/PREFIX,GATEWAY,DNS", s)
	}
	return Static{Iface: f[0], Addr: f[1], Gateway: f[2], DNS: f[3:]}, nil
}

// ReadImage reads the baked-in file; a missing file is not an error.
func ReadImage(n *Node, path string) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return DecodeYAML(n, path, b)
}

// DecodeYAML decodes b (named file for errors) over n strictly
// (internal/strictyaml: file:line, the allowed keys); an empty file sets
// nothing.
func DecodeYAML(n *Node, file string, b []byte) error {
	if err := strictyaml.Decode(file, b, n); err != nil && !errors.Is(err, strictyaml.ErrEmpty) {
		return err
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// ApplyCmdline applies the gridnode.* keys of a kernel command line. Unknown
// gridnode.* keys are reported, not fatal: a node must boot.
func ApplyCmdline(n *Node, cmdline string) (warnings []string) {
	for _, f := range strings.Fields(cmdline) {
		if !strings.HasPrefix(f, "gridnode.") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "gridnode."), "=")
		if err := Set(n, k, v); err != nil {
			warnings = append(warnings, "kernel command line: "+err.Error())
		}
	}
	if err := n.Validate(); err != nil {
		warnings = append(warnings, "kernel command line: "+err.Error())
	}
	return warnings
}

// Keys lists the keys Set understands, for documentation and errors.
var Keys = []string{"farm", "registrar", "net", "net.iface", "uptime", "location", "wipe", "disktype", "hostname", "status", "ntp", "modules", "flavour", "boot", "deployers", "registry_mirror", "channel", "upgrade_poll", "upgrade_trial"}

// Set sets one key.
func Set(n *Node, key, v string) error {
	switch key {
	case "farm":
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("farm=%q: want a farm id (a number)", v)
		}
		n.Farm = id
	case "registrar":
		n.Registrar = v
	case "net":
		n.Network = v
	case "net.iface":
		n.Iface = v
	case "uptime":
		return n.Uptime.UnmarshalText([]byte(v))
	case "location":
		n.Location = v
	case "wipe":
		n.Wipe = splitList(v)
	case "disktype":
		n.DiskType = map[string]string{}
		for _, p := range splitList(v) {
			s, t, _ := strings.Cut(p, ":")
			n.DiskType[s] = t
		}
	case "hostname":
		n.Hostname = v
	case "status":
		n.Status = v
	case "ntp":
		n.NTP = splitList(v)
	case "modules":
		n.Modules = splitList(v)
	case "boot":
		n.Boot = v
	case "flavour":
		n.Flavour = v
	case "deployers":
		n.Deployers = splitList(v)
	case "registry_mirror":
		n.RegistryMirror = v
	case "channel":
		n.Channel = v
	case "upgrade_poll":
		return n.UpgradePoll.UnmarshalText([]byte(v))
	case "upgrade_trial":
		return n.UpgradeTrial.UnmarshalText([]byte(v))
	default:
		return fmt.Errorf("unknown key %q; known keys: %s", key, strings.Join(Keys, ", "))
	}
	return nil
}

func splitList(v string) []string {
	var l []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l = append(l, p)
		}
	}
	return l
}
