package console

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridnode/gridnode/internal/printable"
	"github.com/gridnode/gridnode/internal/round"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// snapshot is the fact folder read at one moment.
type snapshot struct {
	raw map[string]json.RawMessage // every fact, by name

	identity  *fact.Identity
	registrar *fact.Registrar
	network   *fact.Network
	netStatus *fact.NetworkStatus
	hardware  *fact.Hardware
	storage   *fact.Storage
	modules   map[string]fact.Module
	workloads *fact.Workloads
	upgrade   *fact.Upgrade
	config    *config.Node
	console   *fact.Console
	uptime    time.Duration // of the machine, from /proc/uptime
}

// procUptime is where the machine's uptime is read; tests replace it.
var procUptime = "/proc/uptime"

// readFacts reads every NAME.json directly in dir. Only regular files are
// read (no symlinks, no folders): the secret folder and anything a link
// would lead to stay out.
func readFacts(dir string) map[string]json.RawMessage {
	facts := map[string]json.RawMessage{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return facts
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == "" || strings.HasPrefix(name, ".") || e.Type()&fs.ModeType != 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !json.Valid(b) {
			continue
		}
		facts[name] = json.RawMessage(b)
	}
	return facts
}

func load(dir string) snapshot {
	s := snapshot{raw: readFacts(dir)}
	decode := func(name string, v any) bool {
		b, ok := s.raw[name]
		return ok && json.Unmarshal(b, v) == nil
	}
	if v := new(fact.Identity); decode(fact.NameIdentity, v) {
		s.identity = v
	}
	if v := new(fact.Registrar); decode(fact.NameRegistrar, v) {
		s.registrar = v
	}
	if v := new(fact.Network); decode(fact.NameNetwork, v) {
		s.network = v
	}
	if v := new(fact.NetworkStatus); decode(fact.NameNetworkStatus, v) {
		s.netStatus = v
	}
	if v := new(fact.Hardware); decode(fact.NameHardware, v) {
		s.hardware = v
	}
	if v := new(fact.Storage); decode(fact.NameStorage, v) {
		s.storage = v
	}
	if v := new(fact.Workloads); decode(fact.NameWorkloads, v) {
		s.workloads = v
	}
	if v := new(fact.Upgrade); decode(fact.NameUpgrade, v) {
		s.upgrade = v
	}
	if v := new(config.Node); decode(fact.NameConfig, v) {
		s.config = v
	}
	if v := new(fact.Console); decode(fact.NameConsole, v) {
		s.console = v
	}
	decode(fact.NameModules, &s.modules)
	if b, err := os.ReadFile(procUptime); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if sec, err := strconv.ParseFloat(f[0], 64); err == nil {
				s.uptime = time.Duration(sec * float64(time.Second))
			}
		}
	}
	return s
}

func (s snapshot) registrarURL() string {
	if s.registrar != nil && s.registrar.URL != "" {
		return s.registrar.URL
	}
	if s.config != nil && s.config.Registrar != "" {
		return s.config.Registrar
	}
	return "(not configured: set gridnode.registrar=)"
}

func (s snapshot) farm() uint64 {
	if s.registrar != nil && s.registrar.FarmID != 0 {
		return s.registrar.FarmID
	}
	if s.config != nil {
		return s.config.Farm
	}
	return 0
}

func (s snapshot) moduleNames() []string {
	var l []string
	for n := range s.modules {
		l = append(l, n)
	}
	sort.Strings(l)
	return l
}

// networkProblem says in words why the node has no address, or "".
func (s snapshot) networkProblem() string {
	if s.network != nil && len(s.network.Addresses) > 0 {
		return ""
	}
	if s.network != nil && s.network.Error != "" {
		return s.network.Error
	}
	if s.netStatus != nil && s.netStatus.Error != "" {
		return s.netStatus.Error
	}
	return ""
}

// lines is the status screen, one string per line, at most 80 columns.
func (s snapshot) lines() []string {
	var l []string
	add := func(format string, a ...any) { l = append(l, fmt.Sprintf(format, a...)) }
	add("gridnode node status                                        up %s", s.uptime.Truncate(time.Second))
	add("%s", strings.Repeat("─", 80))

	switch {
	case s.identity == nil:
		add("Node key   : (waiting for the identity module)")
	case s.identity.Ephemeral:
		add("Node key   : %s", s.identity.PublicKey)
		add("             EPHEMERAL: no disk to keep it on; this node is new at every boot")
	default:
		add("Node key   : %s", s.identity.PublicKey)
	}

	state, twin, node := "waiting for network and identity", "-", "-"
	if r := s.registrar; r != nil {
		state = r.State
		if r.TwinID != 0 {
			twin = strconv.FormatUint(r.TwinID, 10)
		}
		if r.NodeID != 0 {
			node = strconv.FormatUint(r.NodeID, 10)
		}
	}
	add("Farm       : %-10d Twin: %-10s Node: %s", s.farm(), twin, node)
	add("Registrar  : %s", s.registrarURL())
	add("State      : %s", state)
	if r := s.registrar; r != nil {
		if r.LastError != "" {
			for i, w := range wrap(r.LastError, 80-13) {
				if i == 0 {
					add("Last error : %s", w)
				} else {
					add("             %s", w)
				}
			}
		}
		add("Uptime     : %d reports sent, %d failed", r.UptimeSent, r.UptimeFailed)
	}

	switch n := s.network; {
	case n != nil && len(n.Addresses) > 0:
		add("Network    : %s %s (%s) gateway %s", n.Iface, n.MAC, n.Mode, orDash(n.Gateway))
		for _, a := range n.Addresses {
			add("             %s", a)
		}
		if n.Clock.Source != "" {
			add("Clock      : from %s%s", n.Clock.Source, parens(n.Clock.Error))
		}
	case s.networkProblem() != "":
		add("Network    : NO ADDRESS")
		for _, p := range strings.Split(s.networkProblem(), "\n") {
			for _, w := range wrap(p, 80-13) {
				add("             %s", w)
			}
		}
	default:
		add("Network    : (waiting for the network module)")
	}

	if h := s.hardware; h != nil {
		add("Capacity   : %d CPUs, %s memory, %s SSD, %s HDD", h.CRU, round.Bytes(h.MRU), round.Bytes(h.SRU), round.Bytes(h.HRU))
		for _, g := range h.GPUs {
			for i, w := range wrap(fmt.Sprintf("[%s:%s] %s %s at %s", g.VendorID, g.DeviceID, g.Vendor, g.Model, g.Address), 80-13) {
				add("%s%s", pick(i == 0, "GPU        : ", "             "), w)
			}
		}
		for _, d := range h.Unclaimed {
			for i, w := range wrap(d.String(), 80-13) {
				add("%s%s", pick(i == 0, "NO DRIVER  : ", "             "), w)
			}
		}
	} else {
		add("Capacity   : (waiting for the hardware module)")
	}
	if st := s.storage; st != nil {
		switch {
		case st.Cache != nil:
			add("Cache      : %s on %s", st.Cache.Mount, st.Cache.Disk)
		case st.Error != "":
			add("Cache      : none (%s)", st.Error)
		default:
			add("Cache      : none")
		}
	}
	if w := s.workloads; w != nil {
		add("Workloads  : %s", w.Summary())
	}
	if u := s.upgrade; u != nil {
		for i, w := range wrap(u.Summary(), 80-13) {
			add("%s%s", pick(i == 0, "Release    : ", "             "), w)
		}
	}
	if s.console != nil {
		add("Status     : %s", s.statusURL())
	}

	if len(s.modules) > 0 {
		add("")
		add("%-12s %-11s %8s  %s", "MODULE", "STATE", "RESTARTS", "LAST EXIT")
		for _, n := range s.moduleNames() {
			m := s.modules[n]
			add("%-12s %-11s %8d  %s", n, m.State, m.Restarts, m.LastExit)
		}
	}
	for i := range l {
		l[i] = clip(strings.TrimRight(printable.String(l[i]), " "), 80)
	}
	return l
}

// statusURL is where a person on the farm's network reads /status.
func (s snapshot) statusURL() string {
	addr := s.console.StatusAddr
	if addr == "" {
		return "not served: gridnode.status is not valid (see the console log)"
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) && s.network != nil && len(s.network.Addresses) > 0 {
		ip, _, _ := strings.Cut(s.network.Addresses[0], "/")
		return "http://" + net.JoinHostPort(ip, port) + "/status"
	}
	return "http://" + addr + "/status"
}

// serial is the compact block for the serial console: few lines, each with
// a "status:" prefix that people and tests can grep.
func (s snapshot) serial() []string {
	var l []string
	state, twin, node := "waiting", uint64(0), uint64(0)
	if r := s.registrar; r != nil {
		state, twin, node = r.State, r.TwinID, r.NodeID
	}
	l = append(l, fmt.Sprintf("status: registrar=%s twin=%d node=%d farm=%d url=%s", orDash(state), twin, node, s.farm(), s.registrarURL()))
	if r := s.registrar; r != nil && r.LastError != "" {
		l = append(l, "status: registrar error: "+r.LastError)
	}
	if s.identity != nil {
		l = append(l, fmt.Sprintf("status: key=%s ephemeral=%t", s.identity.PublicKey, s.identity.Ephemeral))
	}
	if n := s.network; n != nil && len(n.Addresses) > 0 {
		l = append(l, fmt.Sprintf("status: network=%s mac=%s addr=%s gw=%s clock=%s", n.Iface, n.MAC, strings.Join(n.Addresses, ","), orDash(n.Gateway), orDash(n.Clock.Source)))
	} else if p := s.networkProblem(); p != "" {
		l = append(l, "status: network=none error: "+strings.ReplaceAll(p, "\n", "; "))
	}
	if h := s.hardware; h != nil {
		l = append(l, fmt.Sprintf("status: capacity cru=%d mru=%s sru=%s hru=%s", h.CRU,
			strings.ReplaceAll(round.Bytes(h.MRU), " ", ""), strings.ReplaceAll(round.Bytes(h.SRU), " ", ""), strings.ReplaceAll(round.Bytes(h.HRU), " ", "")))
		for _, d := range h.Unclaimed {
			l = append(l, fmt.Sprintf("status: no driver for %s (%s)", d, strings.Join(d.Modules, ", ")))
		}
		for _, g := range h.GPUs {
			l = append(l, fmt.Sprintf("status: gpu [%s:%s] %s %s at %s iommu_group=%s", g.VendorID, g.DeviceID, g.Vendor, g.Model, g.Address, orDash(g.IOMMUGroup)))
		}
	}
	if w := s.workloads; w != nil {
		l = append(l, "status: workloads "+w.Summary())
	}
	if u := s.upgrade; u != nil {
		l = append(l, "status: release "+u.Summary())
	}
	if len(s.modules) > 0 {
		var parts []string
		for _, n := range s.moduleNames() {
			m := s.modules[n]
			p := n + "=" + m.State
			if m.Restarts > 0 {
				p += fmt.Sprintf("(%d restarts)", m.Restarts)
			}
			parts = append(parts, p)
		}
		l = append(l, "status: modules "+strings.Join(parts, " "))
	}
	// Facts carry text from outside (a registrar's error, a DHCP server's
	// words, firmware strings): one line each, nothing a terminal acts on.
	for i := range l {
		l[i] = printable.String(l[i])
	}
	return l
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// clip cuts s to n columns (runes: the screen has no wide characters).
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most n columns at spaces (a word longer
// than n is left for clip to cut).
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) <= n:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	return append(lines, line)
}

func pick(first bool, a, b string) string {
	if first {
		return a
	}
	return b
}
