package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/round"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/kexec"
	"github.com/gridnode/gridnode/upgrade/trial"
)

const (
	// armFor is the watchdog's timeout across the jump, and the new
	// kernel's watchdog.open_timeout: PID 1's ordered stop, the kexec and
	// the new kernel's boot up to its watchdog driver, whose probe may
	// stop the timer (i6300esb does) until the trial's module re-arms it.
	armFor = 3 * time.Minute
	// jumpWait bounds the wait for PID 1 to stop the module on its way to
	// the jump; past it the jump is called off.
	jumpWait = 5 * time.Minute
	// ranFile lists, in the release folder, the workloads that ran before
	// the jump: the trial waits for each to run again.
	ranFile = "workloads.json"
)

// upgrade pulls the release v offers and jumps into it. It returns nil once
// PID 1 takes the jump (ctx ends), or an error with the node still on its
// release.
func (m *module) upgrade(ctx context.Context, v verdict) error {
	c := v.ch
	m.log.Info(fmt.Sprintf("downloading release %s", c.Version), "release", c.Release, "sequence", c.Sequence, "wave", pct(v.gate.Share), "canary", v.gate.Canary)
	var lastShown time.Time
	p := puller{mirror: m.cfg.RegistryMirror, keys: m.keys, progress: func(file string, done, total int64) {
		if done < total && time.Since(lastShown) < time.Second {
			return
		}
		lastShown = time.Now()
		m.fact.Download = &fact.UpgradeDownload{Version: c.Version, File: file, Bytes: done, Total: total}
		m.publish()
	}}
	t0 := time.Now()
	r, err := p.pull(ctx, c.Release, c.Version, m.releaseDir())
	if err != nil {
		return err
	}
	m.log.Info(fmt.Sprintf("downloaded release %s: %s, %s in %s, sha256 as signed", c.Version, r.uki.Name, round.Bytes(uint64(r.uki.Size)), time.Since(t0).Round(100*time.Millisecond)),
		"bytes", r.uki.Size)
	return m.jump(ctx, c.Version, c.Sequence, r)
}

// jump writes the trial record, arms the watchdog, loads the release's
// kernel and asks PID 1 for the kexec ending.
func (m *module) jump(ctx context.Context, version string, seq uint64, r *pulled) error {
	f, err := os.Open(r.ukiPath())
	if err != nil {
		return err
	}
	im, err := kexec.FromUKI(f, r.uki.Size)
	f.Close()
	if err != nil {
		return err
	}
	if im.Version != version {
		return fmt.Errorf("release %s: its UKI says version %q", version, im.Version)
	}
	var w fact.Workloads
	if fact.Read(fact.NameWorkloads, &w) == nil {
		b, _ := json.Marshal(running(&w))
		if err := fact.WriteFile(filepath.Join(r.dir, ranFile), b, 0o600); err != nil {
			return err
		}
	}
	cmdline := kexec.Trial{Version: version, Medium: mediumTag(m.cfg.Boot), OpenTimeout: armFor}.Cmdline(im.Cmdline, procCmdline())
	if err := m.store.Begin(trial.Record{Version: version, Sequence: seq, Started: time.Now(), From: m.running}); err != nil {
		return err
	}
	armed := false
	undo := func(err error) error {
		kexec.Unload()
		if armed {
			kexec.Disarm(kexec.Watchdog)
		}
		if cerr := m.store.Cancel(); cerr != nil {
			m.log.Error("calling the trial off", "err", cerr)
		}
		return fmt.Errorf("%w; the jump is called off, the node stays on %s", err, m.running)
	}
	if t, err := kexec.Arm(kexec.Watchdog, armFor); err != nil {
		m.log.Warn("no hardware watchdog to guard the trial: a trial that hangs stays so until the machine is power-cycled (a panic still resets it)", "err", err)
	} else {
		armed = true
		m.log.Info("hardware watchdog armed for the jump", "timeout", t)
	}
	if err := kexec.Load(im, cmdline); err != nil {
		return undo(err)
	}
	m.fact.Download = nil
	m.fact.State = fact.UpgJumping
	m.fact.Message = fmt.Sprintf("jumping into %s (kexec); it has %s to prove healthy, else the machine goes back to %s", version, m.cfg.UpgradeTrial.D(), m.running)
	m.publish()
	m.log.Info(m.fact.Message, "cmdline", cmdline)
	if err := kexec.SignalInit(kexec.Request); err != nil {
		return undo(err)
	}
	t := time.NewTimer(jumpWait)
	defer t.Stop()
	select {
	case <-ctx.Done(): // PID 1 stops the modules on its way to the jump
		return nil
	case <-t.C:
		return undo(fmt.Errorf("PID 1 did not jump within %s", jumpWait))
	}
}

// mediumTag is the trial's gridnode.boot: the medium the node booted from,
// which the trial reads its gridnode.conf from and writes the release to.
func mediumTag(boot string) string {
	switch boot {
	case "usb", "iso", "pxe":
		return boot
	}
	return ""
}

// procCmdline is the running kernel's command line.
func procCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(b))
}

// trialOf is the version gridnode.trial names on cmdline, "" for none.
func trialOf(cmdline string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "gridnode.trial="); ok {
			return v
		}
	}
	return ""
}
