package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/kexec"
)

const (
	// feedFor is the watchdog's timeout while the trial feeds it, every
	// quarter of it: a module that stops (or a machine that hangs) resets
	// within a minute or two.
	feedFor = time.Minute
	// watchdogWait is how long the trial waits for /dev/watchdog: its
	// driver loads at coldplug, or later by hotplug.
	watchdogWait = 30 * time.Second
	// lookEvery is how often the trial looks at the facts, besides when
	// one lands.
	lookEvery = 2 * time.Second
)

// trial runs this boot's trial of the release it runs. It returns true
// when the trial passed and the module goes on following the channel,
// false when it failed (it then waited for ctx, the machine rebooting).
func (m *module) trial(ctx context.Context) bool {
	deadline := m.cfg.UpgradeTrial.D()
	st, _ := m.store.Load()
	t := &fact.UpgradeTrial{Version: m.running, Deadline: time.Now().Add(deadline - fact.SinceBoot()).UTC().Truncate(time.Second)}
	if st.Trial != nil {
		t.From = st.Trial.From
	}
	m.fact.State, m.fact.Trial, m.fact.Message = fact.UpgTrial, t, "proving healthy"
	dog := m.openWatchdog(ctx)
	g := guard(dog, deadline)
	t.Watchdog = dog != nil
	m.publish()
	m.log.Info(fmt.Sprintf("this boot is a trial of %s: proving healthy by %s", m.running, t.Deadline.Format(time.RFC3339)), "from", t.From, "watchdog", t.Watchdog)

	ran := m.loadRan()
	landed, stop := fact.Watch()
	defer stop()
	tick := time.NewTicker(lookEvery)
	defer tick.Stop()
	for {
		ok, hopeless, waiting := healthy(m.view(ran, deadline))
		if ok {
			break
		}
		if hopeless || fact.SinceBoot() >= deadline {
			g.end(false)
			why := fmt.Sprintf("not healthy within %s", deadline)
			if hopeless {
				why = "it cannot become healthy in this boot"
			}
			msg := fmt.Sprintf("the trial of %s failed: %s; waiting for %s; going back to the release it came from", m.running, why, strings.Join(waiting, ", "))
			m.fact.State, m.fact.Message, m.fact.Trial.Waiting = fact.UpgError, msg, waiting
			m.publish()
			m.log.Error(msg)
			// An ordered reboot; the watchdog, no longer fed, resets the
			// machine should that hang.
			if err := kexec.SignalInit(syscall.SIGINT); err != nil {
				m.log.Error("asking PID 1 to reboot; the watchdog will reset the machine", "err", err)
			}
			<-ctx.Done()
			return false
		}
		if strings.Join(waiting, "|") != strings.Join(m.fact.Trial.Waiting, "|") {
			m.fact.Trial.Waiting = waiting
			m.publish()
		}
		select {
		case <-ctx.Done():
			g.end(false)
			return false
		case <-landed:
		case <-tick.C:
		}
	}

	m.fact.State, m.fact.Message, m.fact.Trial.Waiting = fact.UpgInstalling, "healthy", nil
	m.publish()
	m.log.Info(fmt.Sprintf("%s is healthy, %s after its kernel started", m.running, fact.SinceBoot().Round(time.Second)))
	m.fact.Medium = m.install()
	m.log.Info("boot medium: " + m.fact.Medium)
	g.end(true)
	if err := m.store.Pass(); err != nil {
		m.log.Error("recording the trial as passed", "err", err)
	}
	os.RemoveAll(m.releaseDir())
	m.fact.Trial = nil
	m.fact.State, m.fact.Message = fact.UpgIdle, fmt.Sprintf("%s passed its trial", m.running)
	m.publish()
	m.log.Info(fmt.Sprintf("%s passed its trial; the watchdog is disarmed", m.running))
	return true
}

// view reads the facts the trial's health is judged on.
func (m *module) view(ran []string, deadline time.Duration) view {
	v := view{self: Name, ran: ran, elapsed: fact.SinceBoot(), deadline: deadline}
	var mods fact.Modules
	if fact.Read(fact.NameModules, &mods) == nil {
		v.modules = mods
	}
	var r fact.Registrar
	if fact.Read(fact.NameRegistrar, &r) == nil {
		v.registrar = &r
	}
	var w fact.Workloads
	if fact.Read(fact.NameWorkloads, &w) == nil {
		v.workloads = &w
	}
	return v
}

// loadRan reads the workloads that ran before the jump; nil when unknown.
func (m *module) loadRan() []string {
	b, err := os.ReadFile(filepath.Join(m.releaseDir(), ranFile))
	if err != nil {
		return nil
	}
	var l []string
	if json.Unmarshal(b, &l) != nil {
		return nil
	}
	return l
}

// openWatchdog re-arms the hardware watchdog for the trial, waiting a while
// for its device; nil when there is none.
func (m *module) openWatchdog(ctx context.Context) *kexec.Dog {
	until := time.Now().Add(watchdogWait)
	for {
		d, err := kexec.Open(kexec.Watchdog, feedFor)
		if err == nil {
			return d
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(until) || ctx.Err() != nil {
			m.log.Warn("the trial runs without a hardware watchdog: a hang is not reset (a panic is, and a trial not healthy in time reboots)", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// guarding feeds the watchdog while the trial can still succeed: until
// end, and never past the deadline.
type guarding struct {
	dog  *kexec.Dog
	stop chan struct{}
	done chan struct{}
}

func guard(dog *kexec.Dog, deadline time.Duration) *guarding {
	g := &guarding{dog: dog, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		if dog == nil {
			<-g.stop
			return
		}
		t := time.NewTicker(dog.Timeout / 4)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
				if fact.SinceBoot() < deadline {
					dog.Keepalive()
				}
			}
		}
	}()
	return g
}

// end stops feeding; disarm stops the watchdog too (the trial passed),
// otherwise it stays running unfed and resets the machine.
func (g *guarding) end(disarm bool) {
	select {
	case <-g.stop:
		return // ended already
	default:
	}
	close(g.stop)
	<-g.done
	if g.dog == nil {
		return
	}
	if disarm {
		g.dog.Disarm()
	} else {
		g.dog.Leave()
	}
}
