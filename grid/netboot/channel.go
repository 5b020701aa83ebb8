package netboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gridnode/gridnode/build/pxe"
	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
)

// Following a release channel (gridnode netboot --channel): the server
// polls the registrar's channel, accepts a document as a node does
// (doc.Accept: one of the release keys, a growing sequence, unexpired),
// pulls the release it names by digest — its PXE kernel, initramfs and
// boot script only, each checked against the signed release document —
// into the cache folder, and serves each machine the release its wave
// allows: it maps the machine's MAC address to its node through the
// registrar's node records of the farms in the configuration, the node to
// its key (the gate's node id) through its twin's account, and asks
// upgrade/gate with the registrar's hold. A machine outside the rollout,
// one the registrar does not know yet, and a node that rolled back from
// the channel's version (its trial failed) get the previous release: the
// one the channel named before, or the --image folder when there was none.
//
// A netbooted machine runs whatever kernel it is sent (PXE verifies
// nothing), so the server refuses to follow a channel without release
// keys, and serves only releases that verified.

// ChannelOptions make a Server follow a channel.
type ChannelOptions struct {
	Registrar string // base URL
	Channel   string
	Keys      []doc.PublicKey
	// Cache keeps pulled releases, one folder per manifest digest, and
	// what the server served (state.json), across restarts.
	Cache string
	// Poll is how often the channel and the farms' node records are read
	// again (default 1 min).
	Poll time.Duration
	// Remote are options of the registry client (tests).
	Remote []remote.Option
}

// served is a release the server serves: where its files are and the
// command line of its boot script.
type served struct {
	Version  string `json:"version"`
	Digest   string `json:"digest"` // sha256:HEX of the release artifact
	Sequence uint64 `json:"sequence"`
	cmdline  string
}

func (r *served) hex() string { return strings.TrimPrefix(r.Digest, "sha256:") }

// channelState is what the server follows, kept in Cache/state.json.
type channelState struct {
	Current  *served `json:"current,omitempty"`
	Previous *served `json:"previous,omitempty"`
}

// machine is what the registrar says of a node, by MAC.
type machine struct {
	id   string // the gate's node id: the node key, base64
	farm uint64
	node api.Node
}

type follower struct {
	o     ChannelOptions
	cl    *client.Client
	farms []uint64
	root  *os.Root // the cache folder
	log   func(msg string, args ...any)
	warn  func(msg string, args ...any)

	mu       sync.Mutex
	state    channelState
	hold     doc.Hold
	doc      *doc.Channel
	etag     string
	machines map[string]machine // by MAC, canonical form
	keys     map[uint64]string  // twin → key (never changes)
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// FollowChannel makes the server follow a release channel (see
// ChannelOptions); call it before Serve.
func (s *Server) FollowChannel(o ChannelOptions) error {
	if !doc.ValidChannelName(o.Channel) {
		return fmt.Errorf("netboot: --channel %q: lower-case letters, digits and -, up to 32", o.Channel)
	}
	if len(o.Keys) == 0 {
		return errors.New("netboot: --channel needs --release-key: a netbooted machine runs the kernel it is sent, so the server must verify it")
	}
	farms := s.config.farms()
	if len(farms) == 0 {
		return errors.New("netboot: --channel needs the farm of the machines (farm in --config's default or machines) to find their nodes on the registrar")
	}
	if o.Poll <= 0 {
		o.Poll = time.Minute
	}
	cl, err := client.New(o.Registrar, nil, client.Options{UserAgent: "gridnode-netboot"})
	if err != nil {
		return fmt.Errorf("netboot: %w", err)
	}
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return fmt.Errorf("netboot: cache: %w", err)
	}
	root, err := os.OpenRoot(o.Cache)
	if err != nil {
		return fmt.Errorf("netboot: cache: %w", err)
	}
	f := &follower{o: o, cl: cl, farms: farms, root: root, machines: map[string]machine{}, keys: map[uint64]string{},
		log: func(m string, a ...any) { s.log.Info("netboot: channel: "+m, a...) }, warn: func(m string, a ...any) { s.log.Warn("netboot: channel: "+m, a...) }}
	f.load()
	s.follow = f
	return nil
}

// farms are the farms the configuration names.
func (c Config) farms() []uint64 {
	var out []uint64
	seen := map[uint64]bool{}
	for _, m := range append([]Machine{c.Default}, mapValues(c.Machines)...) {
		if m.Farm != 0 && !seen[m.Farm] {
			seen[m.Farm] = true
			out = append(out, m.Farm)
		}
	}
	return out
}

func mapValues(m map[string]Machine) []Machine {
	out := make([]Machine, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// load reads state.json, keeping the releases whose files are still there.
func (f *follower) load() {
	b, err := f.root.ReadFile("state.json")
	if err != nil {
		return
	}
	var st channelState
	if err := json.Unmarshal(b, &st); err != nil {
		f.warn("ignoring a damaged state.json", "err", err)
		return
	}
	for _, r := range []**served{&st.Current, &st.Previous} {
		if *r != nil && (!digestRE.MatchString((*r).Digest) || f.readCmdline(*r) != nil) {
			*r = nil
		}
	}
	f.state = st
}

func (f *follower) save() {
	b, _ := json.MarshalIndent(f.state, "", "  ")
	tmp := "state.json.tmp"
	if err := f.root.WriteFile(tmp, b, 0o644); err == nil {
		err = f.root.Rename(tmp, "state.json")
		if err != nil {
			f.warn("saving state.json", "err", err)
		}
	}
}

// readCmdline reads r's command line from its boot script in the cache.
func (f *follower) readCmdline(r *served) error {
	script, err := f.root.ReadFile(filepath.Join(r.hex(), "pxe", pxe.Script))
	if err != nil {
		return err
	}
	r.cmdline, err = pxe.ParseCmdline(script)
	return err
}

// run polls until ctx ends.
func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(f.o.Poll)
	defer t.Stop()
	for {
		f.poll(ctx)
		select {
		case <-ctx.Done():
			f.root.Close()
			return
		case <-t.C:
		}
	}
}

// poll reads the channel, takes a new document's release, and reads the
// farms' nodes again.
func (f *follower) poll(ctx context.Context) {
	if err := f.pollChannel(ctx); err != nil && ctx.Err() == nil {
		f.warn("following the channel", "channel", f.o.Channel, "err", err)
	}
	if err := f.pollNodes(ctx); err != nil && ctx.Err() == nil {
		f.warn("reading the farms' nodes", "err", err)
	}
}

func (f *follower) pollChannel(ctx context.Context) error {
	f.mu.Lock()
	etag := f.etag
	var last uint64
	if f.state.Current != nil {
		last = f.state.Current.Sequence
	}
	f.mu.Unlock()
	a, err := f.cl.Channel(ctx, f.o.Channel, etag)
	if client.IsNotFound(err) {
		return nil // nothing published yet
	}
	if err != nil {
		return err
	}
	if a.NotModified {
		return nil
	}
	c, err := doc.OpenChannel(a.State.Document, f.o.Keys)
	if err != nil {
		return err
	}
	if c.Channel != f.o.Channel {
		return fmt.Errorf("the registrar answered a document of channel %q", c.Channel)
	}
	if c.Sequence > last {
		if _, err := doc.Accept(a.State.Document, f.o.Keys, f.o.Channel, last, time.Now()); err != nil {
			return err
		}
		r, err := f.pull(ctx, c)
		if err != nil {
			return fmt.Errorf("sequence %d, release %s: %w", c.Sequence, c.Release, err)
		}
		f.mu.Lock()
		if cur := f.state.Current; cur != nil && cur.Digest != r.Digest {
			f.state.Previous = cur
		}
		f.state.Current = r
		f.save()
		f.doc, f.hold, f.etag = c, a.State.Hold, a.ETag
		f.mu.Unlock()
		f.log("serving release", "version", r.Version, "digest", r.Digest, "sequence", r.Sequence)
		return nil
	}
	if c.Sequence < last {
		return fmt.Errorf("the registrar serves sequence %d, below the %d already taken; ignored", c.Sequence, last)
	}
	f.mu.Lock()
	f.doc, f.hold, f.etag = c, a.State.Hold, a.ETag
	f.mu.Unlock()
	return nil
}

// pxeFiles are what the server takes of a release.
var pxeFiles = map[string]bool{"pxe/" + pxe.Kernel: true, "pxe/" + pxe.Initrd: true, "pxe/" + pxe.Script: true}

// pull fetches c's release into the cache (once per digest) and checks it.
func (f *follower) pull(ctx context.Context, c *doc.Channel) (*served, error) {
	_, dgst, _ := strings.Cut(c.Release, "@")
	r := &served{Version: c.Version, Digest: dgst, Sequence: c.Sequence}
	if f.readCmdline(r) == nil {
		return r, nil // pulled before
	}
	tmp := filepath.Join(f.o.Cache, ".pull-"+r.hex())
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	f.log("pulling release", "version", c.Version, "release", c.Release)
	got, err := release.PullFiles(ctx, c.Release, tmp, f.o.Keys, func(name string) bool { return pxeFiles[name] }, f.o.Remote...)
	if err != nil {
		return nil, err
	}
	if got != dgst {
		return nil, fmt.Errorf("pulled digest %s, the document names %s", got, dgst)
	}
	for name := range pxeFiles {
		if _, err := os.Stat(filepath.Join(tmp, name)); err != nil {
			return nil, fmt.Errorf("the release has no %s: it was not built with --format pxe", name)
		}
	}
	if err := os.Rename(tmp, filepath.Join(f.o.Cache, r.hex())); err != nil {
		return nil, err
	}
	return r, f.readCmdline(r)
}

// pollNodes reads the farms' node records (by MAC) and their twins' keys.
func (f *follower) pollNodes(ctx context.Context) error {
	machines := map[string]machine{}
	for _, farm := range f.farms {
		for page := 1; ; page++ {
			nodes, err := f.cl.Nodes(ctx, client.NodeFilter{FarmID: farm, Page: page, Size: 1000})
			if client.IsNotFound(err) {
				break
			}
			if err != nil {
				return err
			}
			for _, n := range nodes {
				key, err := f.key(ctx, n.TwinID)
				if err != nil {
					return err
				}
				for _, i := range n.Interfaces {
					if hw, err := net.ParseMAC(i.Mac); err == nil {
						machines[hw.String()] = machine{id: key, farm: n.FarmID, node: n}
					}
				}
			}
			if len(nodes) < 1000 {
				break
			}
		}
	}
	f.mu.Lock()
	changed := len(machines) != len(f.machines)
	f.machines = machines
	f.mu.Unlock()
	if changed {
		f.log("machines known", "count", len(machines), "farms", f.farms)
	}
	return nil
}

func (f *follower) key(ctx context.Context, twin uint64) (string, error) {
	f.mu.Lock()
	k, ok := f.keys[twin]
	f.mu.Unlock()
	if ok {
		return k, nil
	}
	a, err := f.cl.Account(ctx, twin)
	if err != nil {
		return "", fmt.Errorf("twin %d: %w", twin, err)
	}
	f.mu.Lock()
	f.keys[twin] = a.PublicKey
	f.mu.Unlock()
	return a.PublicKey, nil
}

// choice is the release a machine is sent, and why.
type choice struct {
	r   *served // nil: the --image folder
	why string
}

// releaseFor decides what machine mac boots.
func (f *follower) releaseFor(mac net.HardwareAddr, now time.Time) choice {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := choice{r: f.state.Previous, why: "the previous release, "}
	if prev.r == nil {
		prev.why = "the --image folder, "
	}
	cur := f.state.Current
	m, ok := f.machines[mac.String()]
	switch {
	case cur == nil:
		return choice{why: "the --image folder: no release taken from the channel yet"}
	case f.doc == nil || f.doc.Sequence != cur.Sequence:
		// After a restart, until the document is read again: the gate
		// cannot be asked, and the previous release is the safe one.
		prev.why += "the channel's document is not read yet"
	case !ok:
		prev.why += "a machine the registrar has no node for"
	case m.node.RolledBack && m.node.RolledBackFrom == cur.Version:
		prev.why += "its trial of " + cur.Version + " failed (rolled back)"
	default:
		d := gate.Allowed(f.doc, f.hold, gate.Node{ID: m.id, Farm: m.farm}, now)
		if d.In {
			why := fmt.Sprintf("node %d is in the rollout (point %d < share %d ppm)", m.node.NodeID, d.Point, d.Share)
			if d.Canary {
				why = fmt.Sprintf("node %d is in canary farm %d", m.node.NodeID, m.farm)
			}
			return choice{r: cur, why: why}
		}
		prev.why += fmt.Sprintf("node %d is not in the rollout yet (point %d, share %d ppm)", m.node.NodeID, d.Point, d.Share)
	}
	return prev
}
