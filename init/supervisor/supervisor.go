// Package supervisor starts the node's modules as child processes in
// dependency order, restarts them with exponential backoff, reaps every
// zombie (as PID 1 every orphan of the system becomes our child), tags their
// output on the console and keeps the last lines of each, and stops them in
// reverse dependency order.
//
// It is made of small parts, after Talos's machined (pkg/system): a runner
// per process start (runner/process), restart as a policy wrapped around it
// (runner/restart), readiness as conditions (condition), one reaper per
// process (reap), output rings and tagging (logs); this package holds the
// services' states, their order, and the ordered shutdown (shutdown.go).
//
// It runs without root: tests make the test process a child subreaper so that
// orphans come back to it as they would to PID 1.
//
// Readiness. A module is ready when its process says so: the supervisor
// gives each module process a pipe of its own, made for that start (fd 3,
// named in $GRIDNODE_NOTIFY_FD, as s6's notification-fd), and the module
// writes on it when it first publishes its fact (fact.ReadyOnPublish, set
// up once by the module runner). A restarted module is ready again only once
// its new process says so, because a notification can only come through the
// pipe of the start it belongs to. No clock is read: readiness used to be
// "the fact's mtime is not before the process's start", and a node whose
// clock the network module stepped backwards between the two (a hardware
// clock ahead, set to local time east of UTC) never became ready. A
// per-start token written into the fact would have worked too, but would
// have made every fact carry supervisor data and every reader ignore it;
// the pipe needs nothing from the fact and tells at once, without polling.
// Services that are not modules say when they are ready with a Ready
// function, polled; an interactive shell is ready when it runs; a oneshot
// when it has exited with status 0. Dependants start when every dependency
// has been ready once in this boot.
//
// The fact "modules" it publishes on every change:
//
//	{"hardware": {"state": "ready", "pid": 81, "restarts": 0,
//	              "last_exit": "exit status 1", "since": "2026-11-23T19:40:00.123Z"}, ...}
//
// with state one of waiting (for dependencies), starting, ready,
// restarting (in backoff), stopped (oneshot done, or shut down), failed
// (could not be executed; retried with backoff).
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/logs"
	"github.com/gridnode/gridnode/init/supervisor/reap"
	"github.com/gridnode/gridnode/node/fact"
)

// Service is one supervised program.
type Service struct {
	Name string
	// Deps are names of services that must have been ready before this one starts.
	Deps []string
	// Argv is the program and its arguments; Argv[0] is a path.
	Argv []string
	// Env is the environment; nil means the supervisor's own. The
	// supervisor adds the fact folder ($GRIDNODE_RUN) to it.
	Env []string
	// Ready says whether the service is ready, asked every Options.Poll.
	// Nil means: the process says so on its readiness pipe, which modules
	// do when they first publish their fact (see the package comment).
	Ready func() bool
	// Oneshot services run to completion: exit status 0 makes them ready and
	// stopped; any other exit restarts them like a daemon.
	Oneshot bool
	// TTY, when set, is a terminal (e.g. /dev/tty2) the program gets as its
	// controlling terminal and standard streams, in a new session; its output
	// is then not captured. Used for the debug flavour's shells.
	TTY string
	// Grace is how long the service has between SIGTERM and SIGKILL when
	// it is stopped [Options.Grace].
	Grace time.Duration
	// StopsChildren: at a stop, SIGTERM goes to the program alone and not
	// to its process group, so that it stops what it started in its own
	// order (the workloads module and its containers) within Grace.
	StopsChildren bool
}

// Options tune a Supervisor. Zero values take the defaults in brackets.
type Options struct {
	// Facts is the fact folder: the fact "modules" is published there, and
	// every process gets it as $GRIDNODE_RUN. Required.
	Facts fact.Folder
	// Console receives every output line as "NAME: line" and the
	// supervisor's own messages as "supervisor: ..." [io.Discard].
	Console io.Writer
	// LogDir receives the ring buffer of each service as NAME.log, rewritten
	// at most once a second; "" disables it.
	LogDir string
	// RingLines is how many lines of output are kept per service [200].
	RingLines int
	// Publish publishes the fact "modules" [Facts.Write]. Nil-able for tests
	// through NoPublish.
	Publish   func(name string, v any) error
	NoPublish bool
	// BackoffMin is the first restart delay, doubled on each further exit up
	// to BackoffMax [1s, 60s]. It is reset when a process ran for StableAfter [30s].
	BackoffMin, BackoffMax, StableAfter time.Duration
	// Grace is how long a service has between SIGTERM and SIGKILL, unless
	// it has its own [5s].
	Grace time.Duration
	// Poll is how often the Ready functions of services are asked [100ms].
	Poll time.Duration
	// AllReady is called once, the first time every service has been ready
	// (TTY services, interactive shells, do not count).
	AllReady func()
}

// Supervisor runs a set of services. Create it with New, then call Run.
type Supervisor struct {
	opts    Options
	order   []string // topological: dependencies first
	svcs    map[string]*service
	console *logs.Console

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when a service is first ready
	allReady bool          // AllReady was called
	halt     chan struct{} // closed when shutdown begins: no more starts
}

// New checks the services (unique names, known dependencies, no cycles) and
// returns a Supervisor for them.
func New(services []Service, opts Options) (*Supervisor, error) {
	s := &Supervisor{
		svcs:    map[string]*service{},
		changed: make(chan struct{}),
		halt:    make(chan struct{}),
	}
	deps := map[string][]string{}
	for _, sv := range services {
		if sv.Name == "" || strings.ContainsAny(sv.Name, "/ ") {
			return nil, fmt.Errorf("supervisor: bad service name %q", sv.Name)
		}
		if _, dup := s.svcs[sv.Name]; dup {
			return nil, fmt.Errorf("supervisor: service %q listed twice", sv.Name)
		}
		if len(sv.Argv) == 0 {
			return nil, fmt.Errorf("supervisor: service %q has no program", sv.Name)
		}
		s.svcs[sv.Name] = &service{Service: sv, sup: s, status: fact.Module{State: fact.StateWaiting}, done: make(chan struct{})}
		deps[sv.Name] = sv.Deps
	}
	for _, sv := range s.svcs {
		for _, d := range sv.Deps {
			dep, ok := s.svcs[d]
			if !ok {
				return nil, fmt.Errorf("supervisor: service %q depends on %q, which is not a service", sv.Name, d)
			}
			dep.dependants = append(dep.dependants, sv.Name)
		}
	}
	order, err := topo(deps)
	if err != nil {
		return nil, err
	}
	s.order = order
	if opts.Facts == "" {
		return nil, errors.New("supervisor: Options.Facts is empty; pass the fact folder (fact.DefaultDir on a node)")
	}
	s.opts = withDefaults(opts)
	s.console = logs.NewConsole(s.opts.Console)
	for _, sv := range s.svcs {
		sv.ring = logs.NewRing(s.opts.RingLines)
	}
	return s, nil
}

func withDefaults(o Options) Options {
	if o.RingLines <= 0 {
		o.RingLines = 200
	}
	if o.Publish == nil {
		o.Publish = o.Facts.Write
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 60 * time.Second
	}
	if o.StableAfter <= 0 {
		o.StableAfter = 30 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	return o
}

// Order returns the service names, dependencies before dependants.
func (s *Supervisor) Order() []string { return append([]string(nil), s.order...) }

// Logf writes a supervisor message on the console.
func (s *Supervisor) Logf(format string, args ...any) {
	s.console.Line("supervisor", fmt.Sprintf(format, args...))
}

// Status returns the state of every service.
func (s *Supervisor) Status() map[string]fact.Module {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Supervisor) statusLocked() map[string]fact.Module {
	m := make(map[string]fact.Module, len(s.svcs))
	for n, sv := range s.svcs {
		m[n] = sv.status
	}
	return m
}

func (s *Supervisor) publishLocked() {
	if s.opts.NoPublish {
		return
	}
	if err := s.opts.Publish(fact.NameModules, s.statusLocked()); err != nil {
		s.Logf("cannot publish fact modules: %v", err)
	}
}

// Lines returns the kept output lines of a service, oldest first.
func (s *Supervisor) Lines(name string) []string {
	sv := s.svcs[name]
	if sv == nil {
		return nil
	}
	return sv.ring.Lines()
}

// ErrNotRunning is returned by Signal for a service without a process.
var ErrNotRunning = errors.New("service not running")

// Signal sends sig to the current process of a service.
func (s *Supervisor) Signal(name string, sig syscall.Signal) error {
	sv := s.svcs[name]
	if sv == nil {
		return fmt.Errorf("supervisor: no service %q", name)
	}
	s.mu.Lock()
	p := sv.proc
	s.mu.Unlock()
	if p == nil {
		return ErrNotRunning
	}
	return p.Signal(sig, false)
}

// Run starts the services and supervises them until ctx is done, then stops
// them in reverse dependency order (SIGTERM, SIGKILL after the grace period)
// and returns. The reaper (package reap) collects every child of the
// process, including orphans reparented to it; exits of processes nobody
// started are discarded.
func (s *Supervisor) Run(ctx context.Context) {
	reap.Run()
	flushed := make(chan struct{})
	stopFlush := make(chan struct{})
	go func() {
		defer close(flushed)
		if s.opts.LogDir != "" {
			rings := map[string]*logs.Ring{}
			for n, sv := range s.svcs {
				rings[n] = sv.ring
			}
			logs.Dir(s.opts.LogDir).Keep(stopFlush, s.order, rings)
		}
	}()

	s.mu.Lock()
	s.publishLocked()
	s.mu.Unlock()
	stops := map[string]context.CancelFunc{}
	for _, n := range s.order {
		sv := s.svcs[n]
		sctx, cancel := context.WithCancel(context.Background())
		stops[n] = cancel
		go s.supervise(sctx, sv)
	}
	<-ctx.Done()
	s.shutdown(stops)
	close(stopFlush)
	<-flushed
}
