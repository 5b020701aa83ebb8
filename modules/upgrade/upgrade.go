// Package upgrade is the node's upgrade module (issue 13): it follows a
// release channel on the registrar, moves the node into the release the
// channel offers by kexec, on trial, and keeps it only once it proved
// healthy; otherwise the machine goes back to the release it came from.
//
// Following (gridnode.channel, polled every gridnode.upgrade_poll with
// jitter): the channel's signed document must be signed by one of the
// image's release keys (/etc/gridnode/release-keys), for this channel,
// not older than the last one accepted (kept on the cache disk) and not
// expired; then its version must not be the running one nor one that
// failed its trial here under this sequence, and the node must be in the
// rollout (upgrade/gate: its farm is a canary farm, or a hash of its node
// key and the version falls under the wave's share, as the registrar's hold
// caps it). Only then does it download anything: the release's signed
// document, then its UKI, by digest from the registry (the registry mirror
// first), checked against the signed sha256 as it streams. Then it writes
// the trial record, arms the hardware watchdog, loads the UKI's kernel
// and initramfs with kexec_file_load under the trial command line, and
// asks PID 1 to stop every module in order and jump (upgrade/kexec.Request).
//
// The trial (gridnode.trial=VERSION on the command line): the module
// re-arms the watchdog and feeds it while the trial can still succeed. The
// release is healthy when every module is ready, the registrar accepted an
// uptime report (or is unreachable, for the second half of the deadline),
// and the workloads that ran before the jump run again. Then, on a USB
// stick with release slots, it writes the release into the slot that is
// not the default and makes it the default of both boot paths (the
// previous release stays in the other slot); on a CD, a stick without two
// slots, a netboot or a kernel boot it says the release runs until the
// next cold boot. Then it disarms the watchdog and records the trial as
// passed. Not healthy within gridnode.upgrade_trial (from the kernel's
// start): it stops feeding the watchdog and asks PID 1 to reboot; a panic
// (panic=10) or a hang resets the machine too. The firmware boots the
// medium's default, the release the node came from, where this module
// finds the trial record open, records the version as failed and says so
// (the fact's rolled_back, which the registrar module reports).
//
// State on the cache disk, in upgrade/ of the cache file system:
// upgrade.json (upgrade/trial: the trial in progress, failed versions, the
// last sequence) and release/ (the release being tried: release.json, its
// UKI, and the workloads that ran before the jump). Without a cache disk
// the node does not upgrade: it could not remember a trial.
//
// Fact published: upgrade (node/fact.Upgrade), at once and on every change.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
	"github.com/gridnode/gridnode/upgrade/layout"
	"github.com/gridnode/gridnode/upgrade/trial"
)

// Name is the module's and its fact's name.
const Name = fact.NameUpgrade

// module is one run of the upgrade module.
type module struct {
	cfg     config.Node
	log     *slog.Logger
	running string
	keys    []doc.PublicKey
	dir     string // upgrade/ on the cache disk
	store   trial.Store
	reg     *client.Client
	node    gate.Node

	fact    fact.Upgrade
	written *fact.Upgrade
	etag    string
	last    *doc.ChannelState // the channel as last served
	said    string            // the last decision logged, so each is logged once
}

// Run is the module's entry point (see the package comment).
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	roots.Fallback() // the public registrars and registries are HTTPS
	m := &module{cfg: cfg, log: log}
	m.fact = fact.Upgrade{Channel: cfg.Channel, State: fact.UpgIdle}
	var err error
	if m.running, err = layout.Running(); err != nil {
		m.off(ctx, err.Error())
		return nil
	}
	m.fact.Running = m.running
	onTrial, ok := m.setup(ctx)
	if !ok {
		return nil
	}
	if v := trialOf(procCmdline()); v != "" {
		switch {
		case v != m.running:
			m.log.Error("the command line says this boot is a trial of another release; treating it as no trial", "trial", v, "running", m.running)
		case !onTrial:
			// Closed already: this module passed it and was started
			// again; judging it twice could only reboot a good release.
			m.log.Info("the trial of " + v + " is closed already (no open trial record on the cache disk)")
		case !m.trial(ctx):
			return nil
		}
	}
	if m.cfg.Channel == config.ChannelNone || m.cfg.Channel == "" {
		m.off(ctx, "gridnode.channel=none: this node follows no release channel")
		return nil
	}
	if len(m.keys) == 0 {
		m.off(ctx, "this image has no release keys (release_keys in its spec): it accepts no upgrade")
		return nil
	}
	return m.follow(ctx)
}

// setup finds the cache disk, settles the last trial and the release keys,
// and publishes the first fact. onTrial says a trial of the running release
// is open; ok is false when the module has nothing more to do (it then
// waited for ctx).
func (m *module) setup(ctx context.Context) (onTrial, ok bool) {
	b, err := os.ReadFile(doc.KeysPath)
	if err == nil {
		m.keys, err = doc.ParseKeysFile(doc.KeysPath, b)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Error("release keys unreadable: no upgrade is accepted", "err", err)
	}
	var st fact.Storage
	if err := fact.Wait(ctx, fact.NameStorage, &st); err != nil {
		return false, false
	}
	if st.Cache == nil {
		m.off(ctx, "no cache disk: the node cannot keep a trial record, so it does not upgrade")
		return false, false
	}
	m.dir = filepath.Join(st.Cache.Mount, "upgrade")
	m.store = trial.Open(m.dir)
	out, rec, err := m.store.Settle(m.running, time.Now())
	if err != nil {
		m.off(ctx, err.Error())
		return false, false
	}
	switch out {
	case trial.RolledBack:
		m.fact.RolledBack, m.fact.RolledBackFrom = true, rec.Version
		m.log.Warn(fmt.Sprintf("the trial of %s failed: the machine came back to %s; %s is not tried again until a newer channel document offers it", rec.Version, m.running, rec.Version),
			"sequence", rec.Sequence, "started", rec.Started.Format(time.RFC3339))
		os.RemoveAll(m.releaseDir())
	case trial.OnTrial:
		onTrial = true
		if trialOf(procCmdline()) == "" {
			onTrial = false
			// A cold boot into the release on trial: the medium's
			// default names it, which it does only once the trial
			// passed; the power went before the record said so.
			m.log.Info("booted cold into " + m.running + ", whose trial passed: closing it")
			if err := m.store.Pass(); err != nil {
				m.log.Error("closing the trial", "err", err)
			}
			os.RemoveAll(m.releaseDir())
		}
	}
	m.refreshFailed()
	m.publish()
	return onTrial, true
}

// off publishes that the module does nothing, and why, and waits.
func (m *module) off(ctx context.Context, why string) {
	m.fact.State, m.fact.Message = fact.UpgOff, why
	m.publish()
	m.log.Info("upgrades off: " + why)
	<-ctx.Done()
}

func (m *module) releaseDir() string { return filepath.Join(m.dir, "release") }

func (m *module) refreshFailed() {
	st, err := m.store.Load()
	if err != nil {
		return
	}
	m.fact.Failed = nil
	for _, f := range st.Failed {
		m.fact.Failed = append(m.fact.Failed, f.Version)
	}
}

func (m *module) publish() {
	if m.written != nil && reflect.DeepEqual(*m.written, m.fact) {
		return
	}
	if err := fact.Write(Name, m.fact); err != nil {
		m.log.Error("cannot publish the upgrade fact", "err", err)
		return
	}
	w := m.fact
	m.written = &w
}

// follow polls the channel until ctx is done, and moves into the release
// it offers when the node may.
func (m *module) follow(ctx context.Context) error {
	var err error
	m.reg, err = client.New(m.cfg.RegistrarURL(), nil, client.Options{HTTPClient: &http.Client{Timeout: 30 * time.Second}, UserAgent: "gridnode-upgrade"})
	if err != nil {
		m.off(ctx, "no registrar to follow the channel on: "+err.Error())
		return nil
	}
	var id fact.Identity
	if err := fact.Wait(ctx, fact.NameIdentity, &id); err != nil {
		return nil
	}
	m.node = gate.Node{ID: id.PublicKey, Farm: m.cfg.Farm}
	m.log.Info("following the release channel", "channel", m.cfg.Channel, "running", m.running, "every", m.cfg.UpgradePoll.D())
	wait := jitter(m.cfg.UpgradePoll.D(), true)
	for {
		if backoff.Sleep(ctx, wait) != nil {
			return nil
		}
		m.check(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait = jitter(m.cfg.UpgradePoll.D(), false)
	}
}

// jitter spreads polls: the first of a boot anywhere in the interval (a
// region whose power comes back must not poll at once), the others within
// a quarter of it.
func jitter(every time.Duration, first bool) time.Duration {
	if first {
		return time.Duration(rand.Float64() * float64(every))
	}
	return time.Duration(float64(every) * (0.75 + 0.5*rand.Float64()))
}

// check polls the channel once and acts on it.
func (m *module) check(ctx context.Context) {
	ans, err := m.reg.Channel(ctx, m.cfg.Channel, m.etag)
	now := m.reg.Now().UTC().Truncate(time.Second)
	m.fact.LastCheck = &now
	switch {
	case client.IsNotFound(err):
		m.etag, m.last = "", nil
		m.settle(fact.UpgIdle, fmt.Sprintf("channel %s is not published on the registrar", m.cfg.Channel), "")
		return
	case err != nil:
		m.settle(fact.UpgError, "", fmt.Sprintf("reading channel %s: %v", m.cfg.Channel, err))
		return
	case !ans.NotModified:
		m.etag, m.last = ans.ETag, &ans.State
	case m.last == nil:
		m.etag = "" // a 304 for a state we do not hold: ask afresh next time
		return
	}
	st, err := m.store.Load()
	if err != nil {
		m.settle(fact.UpgError, "", err.Error())
		return
	}
	v := decide(offer{state: *m.last, keys: m.keys, channel: m.cfg.Channel, st: st, running: m.running, node: m.node, now: now})
	if v.act == refuse {
		m.fact.Offer = nil
		m.settle(fact.UpgError, "", "channel document refused, nothing downloaded: "+v.err.Error())
		return
	}
	if v.ch.Sequence > st.LastSequence {
		if err := m.store.Accepted(v.ch.Sequence); err != nil {
			m.settle(fact.UpgError, "", err.Error())
			return
		}
	}
	m.fact.Offer = &fact.UpgradeOffer{Version: v.ch.Version, Sequence: v.ch.Sequence, Release: v.ch.Release,
		SharePPM: v.gate.Share, PointPPM: v.gate.Point, In: v.gate.In, Canary: v.gate.Canary, Paused: m.last.Hold.Paused}
	switch v.act {
	case current:
		m.settle(fact.UpgIdle, v.why, "")
	case hold:
		m.settle(fact.UpgWaiting, v.why, "")
	case take:
		m.settle(fact.UpgDownloading, v.why, "")
		if err := m.upgrade(ctx, v); err != nil && ctx.Err() == nil {
			m.fact.Download = nil
			m.settle(fact.UpgError, v.why, err.Error())
		}
	}
}

// settle publishes a state, and logs it when it is news.
func (m *module) settle(state, msg, errMsg string) {
	m.fact.State, m.fact.Message, m.fact.LastError = state, msg, errMsg
	m.publish()
	said := state + "|" + msg + "|" + errMsg
	if said == m.said {
		return
	}
	m.said = said
	switch {
	case errMsg != "":
		m.log.Warn(errMsg)
	case msg != "":
		m.log.Info(msg)
	}
}
