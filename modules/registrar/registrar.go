// Package registrar registers the node with the grid registrar and reports
// its uptime, for as long as the node runs (shared/registrar-api.md, "Node
// behaviour expected by the grid").
//
// It waits for the facts identity, network and hardware, reads the node key
// from /run/gridnode/secret/identity.seed, then: ensures the node's account
// (twin), looks the node up by twin, creates it or PATCHes it when what it
// reports (farm, capacity, location, interfaces, serial, virtualized, secure
// boot) changed, and reports uptime every cfg.Uptime. Any failure is retried
// with exponential backoff and full jitter, capped at two minutes; it never
// gives up. What it reports is re-read from the facts before every uptime
// report, so a new disk or a new address reaches the registrar without a
// reboot; every recheckEvery the node's record is read back, and what
// someone else changed there is said on the console and set back. A
// registrar reached over plain HTTP on another machine is warned about on
// the console, once per boot.
//
// Fact published: registrar (/run/gridnode/registrar.json), at once on start
// and on every change:
//
//	url            registrar base URL (network names resolved)
//	farm_id        farm the node registers under (gridnode.farm)
//	state          starting | registering | registered | error
//	twin_id        the node's account, 0 until known
//	node_id        the node's id, 0 until known
//	last_error     the last failure in words, "" after a success
//	retry_in       seconds until the next attempt after a failure
//	last_uptime    when the last uptime report was accepted (RFC 3339), or null
//	uptime_sent    uptime reports accepted since the module started
//	uptime_failed  uptime reports that failed since the module started
//
// When the identity is not ephemeral, {"twin_id", "node_id", "registrar",
// "farm_id"} is kept as registration.json in the identity's state_dir; on the
// next boot it is a hint only, checked against the registrar.
package registrar

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// Name is the module's and its fact's name.
const Name = fact.NameRegistrar

// Registration is what the node keeps in its state folder.
type Registration struct {
	TwinID    uint64 `json:"twin_id"`
	NodeID    uint64 `json:"node_id"`
	Registrar string `json:"registrar"`
	FarmID    uint64 `json:"farm_id"`
}

// RegistrationFile is the name of the registration in the state folder.
const RegistrationFile = "registration.json"

// Backoff bounds: the first retry waits up to BackoffBase, each further one
// up to twice as long, never more than BackoffCap; every wait is at least
// BackoffMin so a registrar that answers at once is not hammered.
const (
	BackoffBase = 2 * time.Second
	BackoffCap  = 2 * time.Minute
	BackoffMin  = time.Second
)

// Retry is the schedule after a failure: full jitter, so a million nodes
// that lost the registrar at the same moment do not come back at the same
// moment.
var Retry = backoff.Policy{Base: BackoffBase, Max: BackoffCap, Min: BackoffMin, Jitter: true}

// module is one run of the registrar module. The function fields are what
// tests replace.
type module struct {
	cfg config.Node
	log *slog.Logger
	url string

	// sleep waits d or until ctx is done.
	sleep func(ctx context.Context, d time.Duration) error
	// rand returns a number in [0, 1) for the backoff jitter.
	rand func() float64
	// uptime is how long the machine has been up.
	uptime func() (time.Duration, error)
	// secureBoot says whether the firmware booted with secure boot on.
	secureBoot func() bool
	// httpClient talks to the registrar.
	httpClient *http.Client

	c        *client.Client
	pub      ed25519.PublicKey
	identity fact.Identity
	fact     fact.Registrar
	written  fact.Registrar // last published
	// reported is what the registrar holds for the node, as last checked;
	// nil when the node must be (re)checked.
	reported *api.UpdateNode
	// sinceCheck is the time spent between uptime reports since the
	// record was last read back (see recheckEvery).
	sinceCheck time.Duration
	hint       Registration
}

// recheckEvery is how often the node reads its record back from the
// registrar, to set right what someone else changed there (the farm, the
// capacity, the interfaces: what the node reports is the node's to say).
// Two reads every six hours cost a registrar of a million nodes 93 requests
// a second. A variable for the tests.
var recheckEvery = 6 * time.Hour

// Run is the module's entry point (see the package comment).
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	if err := roots.Fallback(); err != nil { // the public registrars (qa, main) are HTTPS
		log.Warn("some of the image's extra TLS roots are not trusted", "err", err)
	}
	m := &module{
		cfg:        cfg,
		log:        log,
		sleep:      backoff.Sleep,
		rand:       rand.Float64,
		uptime:     procUptime,
		secureBoot: efiSecureBoot,
		httpClient: &http.Client{Timeout: 30 * time.Second},
	}
	return m.run(ctx)
}

func (m *module) publish() {
	if m.fact == m.written && !lastUptimeChanged(m.fact, m.written) {
		return
	}
	if err := fact.Write(Name, m.fact); err != nil {
		m.log.Error("cannot publish the registrar fact", "err", err)
		return
	}
	m.written = m.fact
}

func lastUptimeChanged(a, b fact.Registrar) bool {
	if a.LastUptime == nil || b.LastUptime == nil {
		return a.LastUptime != b.LastUptime
	}
	return !a.LastUptime.Equal(*b.LastUptime)
}

func (m *module) run(ctx context.Context) error {
	m.url = m.cfg.RegistrarURL()
	m.fact = fact.Registrar{URL: m.url, FarmID: m.cfg.Farm, State: fact.RegStarting}
	m.written = fact.Registrar{State: "unpublished"}
	m.publish()

	if problem := m.configProblem(); problem != "" {
		// Nothing to retry: the configuration must change, which means a
		// reboot. Stay up so the console shows why.
		m.fact.State, m.fact.LastError = fact.RegError, problem
		m.publish()
		m.log.Error(problem)
		<-ctx.Done()
		return nil
	}
	warnPlainHTTP(m.url, m.log)
	if err := m.setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		m.fact.State, m.fact.LastError = fact.RegError, err.Error()
		m.publish()
		return err
	}
	retry := backoff.Counter{Policy: Retry}
	retry.Rand = m.rand
	for {
		next, err := m.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d := client.Wait(&retry, err)
			msg := describe(m.url, err)
			m.log.Warn(fmt.Sprintf("%s; retrying in %s", msg, d.Round(time.Second)))
			m.fact.State, m.fact.LastError, m.fact.RetryIn = fact.RegError, msg, int64(d.Round(time.Second)/time.Second)
			m.fact.Unreachable = unreachable(err)
			m.publish()
			next = d
		} else {
			retry.Reset()
		}
		if err := m.sleep(ctx, next); err != nil || ctx.Err() != nil {
			return nil
		}
	}
}

// configProblem says, in words, what is missing from the configuration.
func (m *module) configProblem() string {
	if m.url == "" {
		return "no registrar configured: set gridnode.registrar=http://HOST:PORT (or dev, test, qa, main) on the kernel command line or in gridnode.conf"
	}
	if _, err := client.New(m.url, nil, client.Options{}); err != nil {
		return fmt.Sprintf("registrar %q is not a URL: set gridnode.registrar=http://HOST:PORT (or dev, test, qa, main)", m.url)
	}
	if m.cfg.Farm == 0 {
		return "no farm configured: set gridnode.farm=FARM_ID (the farmer's `gridnode farm create` prints it)"
	}
	return ""
}

// setup waits for the facts the module needs and reads the node key.
func (m *module) setup(ctx context.Context) error {
	for _, name := range []string{fact.NameIdentity, fact.NameNetwork, fact.NameHardware} {
		if !fact.Exists(name) {
			m.log.Info("waiting for the " + name + " fact before registering")
		}
		if err := fact.Wait(ctx, name, nil); err != nil {
			return err
		}
	}
	if err := fact.Read(fact.NameIdentity, &m.identity); err != nil {
		return fmt.Errorf("reading the identity fact: %w", err)
	}
	seedPath := filepath.Join(fact.Dir(), "secret", "identity.seed")
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		return fmt.Errorf("reading the node key: %w (the identity module writes it)", err)
	}
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("node key %s has %d bytes, want %d", seedPath, len(seed), ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	m.pub = key.Public().(ed25519.PublicKey)
	if m.identity.PublicKey != "" && m.identity.PublicKey != api.PublicKey(m.pub) {
		return fmt.Errorf("node key %s does not match the identity fact's public key %s", seedPath, m.identity.PublicKey)
	}
	m.c, err = client.New(m.url, key, client.Options{HTTPClient: m.httpClient, UserAgent: "gridnode-node"})
	if err != nil {
		return err
	}
	m.loadHint()
	m.log.Info("registering with the grid", "registrar", m.url, "farm", m.cfg.Farm, "public_key", api.PublicKey(m.pub))
	return nil
}

func (m *module) registrationPath() string {
	if m.identity.Ephemeral || m.identity.StateDir == "" {
		return ""
	}
	return filepath.Join(m.identity.StateDir, RegistrationFile)
}

func (m *module) loadHint() {
	p := m.registrationPath()
	if p == "" {
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("cannot read the saved registration; registering afresh", "path", p, "err", err)
		}
		return
	}
	if err := json.Unmarshal(b, &m.hint); err != nil {
		m.log.Warn("saved registration is corrupt; registering afresh", "path", p, "err", err)
		return
	}
	if m.hint.Registrar == m.url {
		m.log.Info("this node was registered before; checking with the registrar", "twin", m.hint.TwinID, "node", m.hint.NodeID)
	}
}

func (m *module) saveRegistration() {
	p := m.registrationPath()
	r := Registration{TwinID: m.fact.TwinID, NodeID: m.fact.NodeID, Registrar: m.url, FarmID: m.cfg.Farm}
	if p == "" || r == m.hint {
		return
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := fact.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		m.log.Warn("cannot save the registration (the node will look itself up again next boot)", "path", p, "err", err)
		return
	}
	m.hint = r
}

// stageError says what the module was doing when err happened.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func stage(s string, err error) error {
	if err == nil {
		return nil
	}
	return &stageError{s, err}
}

// step does one round: (re)registers when needed, then reports uptime. It
// returns how long to wait before the next round.
func (m *module) step(ctx context.Context) (time.Duration, error) {
	want, err := m.desired()
	if err != nil {
		return 0, err
	}
	if m.reported == nil || m.sinceCheck >= recheckEvery || !sameNode(*m.reported, want) {
		if err := m.register(ctx, want); err != nil {
			return 0, err
		}
	}
	up, err := m.uptime()
	if err != nil {
		return 0, fmt.Errorf("reading the uptime: %w", err)
	}
	if err := m.c.ReportUptimeOS(ctx, m.fact.NodeID, up, m.osState()); err != nil {
		m.fact.UptimeFailed++
		switch client.StatusOf(err) {
		case http.StatusNotFound, http.StatusForbidden, http.StatusUnauthorized:
			// The registrar forgot the node or the twin (a new database?):
			// look it up again, and register again if need be.
			m.reported = nil
		}
		return 0, stage("reporting uptime", err)
	}
	now := m.c.Now().UTC().Truncate(time.Second)
	m.fact.UptimeSent++
	m.fact.LastUptime = &now
	if m.fact.LastError != "" || m.fact.State != fact.RegRegistered {
		m.log.Info("registered and reporting uptime", "twin", m.fact.TwinID, "node", m.fact.NodeID, "every", m.interval())
	}
	m.fact.State, m.fact.LastError, m.fact.RetryIn, m.fact.Unreachable = fact.RegRegistered, "", 0, false
	m.publish()
	m.log.Debug("uptime reported", "node", m.fact.NodeID, "uptime", up.Round(time.Second))
	m.sinceCheck += m.interval()
	return m.interval(), nil
}

func (m *module) interval() time.Duration {
	if d := m.cfg.Uptime.D(); d > 0 {
		return d
	}
	return 40 * time.Minute
}

// register ensures the account and the node, and that the node's record
// says what want says.
func (m *module) register(ctx context.Context, want api.UpdateNode) error {
	if m.fact.State != fact.RegError {
		m.fact.State = fact.RegRegistering
		m.publish()
	}
	a, err := m.c.EnsureAccount(ctx)
	if err != nil {
		return stage("looking up the node's account", err)
	}
	if m.fact.TwinID != a.TwinID {
		m.log.Info("node account ready", "twin", a.TwinID)
		if m.hint.TwinID != 0 && m.hint.Registrar == m.url && m.hint.TwinID != a.TwinID {
			m.log.Warn("the registrar knows this node under another twin than last boot (was its database reset?)", "was", m.hint.TwinID, "now", a.TwinID)
		}
	}
	m.fact.TwinID = a.TwinID
	n, err := m.c.NodeByTwin(ctx, a.TwinID)
	switch {
	case errors.Is(err, client.ErrNoNode):
		id, err := m.c.CreateNode(ctx, api.CreateNode{
			TwinID: a.TwinID, FarmID: want.FarmID, Resources: want.Resources, Location: want.Location,
			Interfaces: want.Interfaces, SecureBoot: want.SecureBoot, Virtualized: want.Virtualized, SerialNumber: want.SerialNumber,
			GPUs: want.GPUs,
		})
		if err != nil {
			return stage("creating the node", err)
		}
		m.log.Info("node created", "node", id, "farm", want.FarmID,
			"cru", want.Resources.CRU, "mru", want.Resources.MRU, "sru", want.Resources.SRU, "hru", want.Resources.HRU)
		m.fact.NodeID = id
	case err != nil:
		return stage("looking up the node", err)
	default:
		m.fact.NodeID = n.NodeID
		have := fromNode(n)
		if m.reported != nil && !sameNode(have, *m.reported) {
			// What the node wrote last is not what the registrar holds:
			// another party changed the record.
			m.log.Warn(fmt.Sprintf("node %d's record on the registrar was changed by someone else (%s); setting it back to what this node reports", n.NodeID, diff(*m.reported, have)))
		}
		if !sameNode(have, want) {
			if err := m.c.UpdateNode(ctx, n.NodeID, want); err != nil {
				return stage("updating the node", err)
			}
			m.log.Info("node record updated: "+diff(have, want), "node", n.NodeID)
		} else if m.reported == nil {
			m.log.Info("node found, its record is up to date", "node", n.NodeID)
		}
	}
	if m.hint.NodeID != 0 && m.hint.Registrar == m.url && m.hint.NodeID != m.fact.NodeID {
		m.log.Warn("the registrar knows this node under another id than last boot", "was", m.hint.NodeID, "now", m.fact.NodeID)
	}
	m.reported, m.sinceCheck = &want, 0
	m.saveRegistration()
	m.publish()
	return nil
}

// desired is what the node should report, from the facts as they are now.
func (m *module) desired() (api.UpdateNode, error) {
	var hw fact.Hardware
	if err := fact.Read(fact.NameHardware, &hw); err != nil {
		return api.UpdateNode{}, fmt.Errorf("reading the hardware fact: %w", err)
	}
	var nw fact.Network
	if err := fact.Read(fact.NameNetwork, &nw); err != nil {
		return api.UpdateNode{}, fmt.Errorf("reading the network fact: %w", err)
	}
	u := api.UpdateNode{
		FarmID:       m.cfg.Farm,
		Resources:    api.Resources{CRU: hw.CRU, MRU: hw.MRU, SRU: hw.SRU, HRU: hw.HRU},
		Location:     ParseLocation(m.cfg.Location),
		SecureBoot:   m.secureBoot(),
		Virtualized:  hw.Virtualized,
		SerialNumber: SerialNumber(hw.DMI.Serial, m.pub),
		GPUs:         hw.GPUs,
	}
	if nw.Iface != "" {
		ips := api.IPs{}
		for _, a := range nw.Addresses {
			ip, _, _ := strings.Cut(a, "/")
			ips = append(ips, ip)
		}
		if len(ips) == 0 && m.reported != nil {
			// The lease is lost for now: that is no reason to tell the
			// grid the node has no address.
			for _, i := range m.reported.Interfaces {
				if i.Name == nw.Iface {
					ips = i.IPs
				}
			}
		}
		u.Interfaces = append(u.Interfaces, api.Interface{Name: nw.Iface, Mac: strings.ToLower(nw.MAC), IPs: ips})
	}
	if len(u.Interfaces) == 0 {
		for _, n := range hw.NICs {
			if n.Physical && n.MAC != "" {
				u.Interfaces = append(u.Interfaces, api.Interface{Name: n.Name, Mac: strings.ToLower(n.MAC), IPs: api.IPs{}})
			}
		}
	}
	if len(u.Interfaces) == 0 {
		return u, errors.New("no network interface to report: the network fact names none and the hardware fact lists no physical NIC")
	}
	return u, nil
}

func fromNode(n api.Node) api.UpdateNode {
	return api.UpdateNode{FarmID: n.FarmID, Resources: n.Resources, Location: n.Location, Interfaces: n.Interfaces,
		SecureBoot: n.SecureBoot, Virtualized: n.Virtualized, SerialNumber: n.SerialNumber, GPUs: n.GPUs}
}

func normIfaces(l []api.Interface) []string {
	var out []string
	for _, i := range l {
		ips := slices.Clone([]string(i.IPs))
		slices.Sort(ips)
		out = append(out, i.Name+"|"+strings.ToLower(i.Mac)+"|"+strings.Join(ips, ","))
	}
	slices.Sort(out)
	return out
}

func sameNode(a, b api.UpdateNode) bool {
	return a.FarmID == b.FarmID && a.Resources == b.Resources && a.Location == b.Location &&
		a.SecureBoot == b.SecureBoot && a.Virtualized == b.Virtualized && a.SerialNumber == b.SerialNumber &&
		slices.Equal(normIfaces(a.Interfaces), normIfaces(b.Interfaces)) && slices.Equal(a.GPUs, b.GPUs)
}

// diff names what changed, for the log.
func diff(have, want api.UpdateNode) string {
	var d []string
	if have.FarmID != want.FarmID {
		d = append(d, fmt.Sprintf("farm %d → %d", have.FarmID, want.FarmID))
	}
	if have.Resources != want.Resources {
		d = append(d, fmt.Sprintf("capacity %+v → %+v", have.Resources, want.Resources))
	}
	if have.Location != want.Location {
		d = append(d, "location")
	}
	if !slices.Equal(normIfaces(have.Interfaces), normIfaces(want.Interfaces)) {
		d = append(d, fmt.Sprintf("interfaces %v → %v", normIfaces(have.Interfaces), normIfaces(want.Interfaces)))
	}
	if have.SerialNumber != want.SerialNumber {
		d = append(d, "serial number")
	}
	if !slices.Equal(have.GPUs, want.GPUs) {
		d = append(d, fmt.Sprintf("gpus %d → %d", len(have.GPUs), len(want.GPUs)))
	}
	if have.Virtualized != want.Virtualized || have.SecureBoot != want.SecureBoot {
		d = append(d, "virtualized/secure boot")
	}
	return strings.Join(d, ", ")
}

// ParseLocation reads "COUNTRY,CITY,LAT,LONG"; what is missing or empty is
// "unknown", as the registrar wants four strings.
func ParseLocation(s string) api.Location {
	parts := strings.Split(s, ",")
	get := func(i int) string {
		if i < len(parts) {
			if v := strings.TrimSpace(parts[i]); v != "" {
				return v
			}
		}
		return "unknown"
	}
	return api.Location{Country: get(0), City: get(1), Latitude: get(2), Longitude: get(3)}
}

// placeholders are DMI serials that vendors leave in boards; they identify
// nothing.
var placeholders = []string{
	"to be filled by o.e.m.", "to be filled by oem", "not specified", "not applicable", "none",
	"default string", "system serial number", "chassis serial number", "0", "00000000",
	"0123456789", "1234567890", "123456789", "serial", "n/a", "na", "unknown", "empty", "oem", "xxxxxxxx",
}

// SerialNumber is the DMI serial when it names the machine, else a stable id
// derived from the node key: "gn-" and the hex of the first 8 bytes of the
// SHA-256 of the public key.
func SerialNumber(dmi string, pub ed25519.PublicKey) string {
	s := strings.TrimSpace(dmi)
	if s != "" && !slices.Contains(placeholders, strings.ToLower(s)) && strings.Trim(s, "0 -.") != "" && strings.Trim(s, "Ff") != "" {
		return s
	}
	h := sha256.Sum256(pub)
	return "gn-" + hex.EncodeToString(h[:8])
}

// Backoff is how long to wait before retry number attempt (from 1) with
// Retry, drawing the jitter from rnd (a number in [0, 1)).
func Backoff(attempt int, rnd func() float64) time.Duration {
	p := Retry
	p.Rand = rnd
	return p.Delay(attempt)
}

// procUptime reads the seconds since boot from /proc/uptime.
func procUptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	s, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %q: %w", b, err)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// efiSecureBoot reads the SecureBoot EFI variable: 4 bytes of attributes,
// then 1 when secure boot is on.
func efiSecureBoot() bool {
	b, err := os.ReadFile("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
	return err == nil && len(b) == 5 && b[4] == 1
}
