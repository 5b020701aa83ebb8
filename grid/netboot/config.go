package netboot

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/internal/strictyaml"
)

// Config is the netboot configuration file (--config netboot.yaml): the
// command line each machine boots with, per MAC address or by default.
//
//	default: {farm: 42, cmdline: "gridnode.net=dhcp"}
//	machines:
//	  "52:54:00:12:34:56": {farm: 7, cmdline: "gridnode.hostname=n1"}
//
// A machine boots with the image's own command line (from boot.ipxe), then
// its cmdline, then gridnode.farm=FARM; a machine listed under machines uses
// its entry, with default's fields filling those it leaves empty.
type Config struct {
	Default  Machine            `yaml:"default"`
	Machines map[string]Machine `yaml:"machines"`
}

// Machine is what one machine (or the default) boots with.
type Machine struct {
	Cmdline string `yaml:"cmdline"`
	Farm    uint64 `yaml:"farm"`
}

// LoadConfig reads and checks a netboot configuration file. Unknown keys and
// malformed MAC addresses are errors that name the file and line.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("netboot: config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig is LoadConfig on bytes; name is used in errors.
func ParseConfig(name string, b []byte) (Config, error) {
	var c Config
	lines, err := strictyaml.DecodeLines(name, b, &c)
	if err != nil && !errors.Is(err, strictyaml.ErrEmpty) {
		return Config{}, fmt.Errorf("netboot: %w", err)
	}
	// Check the MACs, and key the map by the canonical form so lookups
	// match whatever spelling the file used.
	machines := make(map[string]Machine, len(c.Machines))
	for k, m := range c.Machines {
		hw, err := net.ParseMAC(k)
		if err != nil {
			return Config{}, fmt.Errorf("netboot: %w", lines.Errorf("machines."+k, "machine %q: not a MAC address (want 52:54:00:12:34:56)", k))
		}
		machines[hw.String()] = m
	}
	c.Machines = machines
	return c, nil
}

// For returns the machine entry for mac: its own, filled in from the
// default, or the default.
func (c Config) For(mac net.HardwareAddr) Machine {
	m, ok := c.Machines[mac.String()]
	if !ok {
		return c.Default
	}
	if m.Cmdline == "" {
		m.Cmdline = c.Default.Cmdline
	}
	if m.Farm == 0 {
		m.Farm = c.Default.Farm
	}
	return m
}

// Cmdline returns base (the image's command line) extended with m's.
func (m Machine) cmdline(base string) string {
	parts := []string{}
	for _, p := range []string{base, m.Cmdline} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if m.Farm != 0 {
		parts = append(parts, "gridnode.farm="+strconv.FormatUint(m.Farm, 10))
	}
	return strings.Join(parts, " ")
}
