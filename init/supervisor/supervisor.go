// Package supervisor starts the node's modules as child processes in
// dependency order, restarts them with exponential backoff, reaps every
// zombie (as PID 1 every orphan of the system becomes our child), tags their
// output on the console and keeps the last lines of each, and stops them in
// reverse dependency order.
//
// It runs without root: tests make the test process a child subreaper so that
// orphans come back to it as they would to PID 1.
//
// A service is "ready" when its Ready function says so, by default when the
// fact NAME (/run/gridnode/NAME.json) was written after the service's current
// process started: a restarted module is ready again only once it republishes.
// Dependants start when every dependency has been ready once in this boot.
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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// Service is one supervised program.
type Service struct {
	Name string
	// Deps are names of services that must have been ready before this one starts.
	Deps []string
	// Argv is the program and its arguments; Argv[0] is a path.
	Argv []string
	// Env is the environment; nil means the supervisor's own.
	Env []string
	// Ready says whether the service is ready. Nil means: the fact Name was
	// written after the current process started.
	Ready func() bool
	// Oneshot services run to completion: exit status 0 makes them ready and
	// stopped; any other exit restarts them like a daemon.
	Oneshot bool
	// TTY, when set, is a terminal (e.g. /dev/tty2) the program gets as its
	// controlling terminal and standard streams, in a new session; its output
	// is then not captured. Used for the debug flavour's shells.
	TTY string
}

// Options tune a Supervisor. Zero values take the defaults in brackets.
type Options struct {
	// Console receives every output line as "NAME: line" and the
	// supervisor's own messages as "supervisor: ..." [io.Discard].
	Console io.Writer
	// LogDir receives the ring buffer of each service as NAME.log, rewritten
	// at most once a second; "" disables it.
	LogDir string
	// RingLines is how many lines of output are kept per service [200].
	RingLines int
	// Publish publishes the fact "modules" [fact.Write]. Nil-able for tests
	// through NoPublish.
	Publish   func(name string, v any) error
	NoPublish bool
	// BackoffMin is the first restart delay, doubled on each further exit up
	// to BackoffMax [1s, 60s]. It is reset when a process ran for StableAfter [30s].
	BackoffMin, BackoffMax, StableAfter time.Duration
	// Grace is how long a service has between SIGTERM and SIGKILL [5s].
	Grace time.Duration
	// Poll is how often readiness is checked [100ms].
	Poll time.Duration
	// AllReady is called once, the first time every service has been ready
	// (TTY services, interactive shells, do not count).
	AllReady func()
}

type service struct {
	Service
	status     fact.Module
	everReady  bool
	started    time.Time // when the current process started
	failures   int       // consecutive short runs, for the backoff
	restartAt  time.Time
	exited     chan struct{} // closed when the current process is reaped
	ring       *ring
	stopping   bool
	dependants []string
}

// Supervisor runs a set of services. Create it with New, then call Run.
type Supervisor struct {
	opts  Options
	order []string // topological: dependencies first
	mu    sync.Mutex
	svcs  map[string]*service
	pids  map[int]*service
	wake  chan struct{}
	ready bool // AllReady was called
	down  bool // shutting down: no more starts
	out   sync.Mutex
}

// New checks the services (unique names, known dependencies, no cycles) and
// returns a Supervisor for them.
func New(services []Service, opts Options) (*Supervisor, error) {
	if opts.Console == nil {
		opts.Console = io.Discard
	}
	if opts.RingLines <= 0 {
		opts.RingLines = 200
	}
	if opts.Publish == nil {
		opts.Publish = fact.Write
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 60 * time.Second
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 5 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	s := &Supervisor{
		opts: opts,
		svcs: map[string]*service{},
		pids: map[int]*service{},
		wake: make(chan struct{}, 1),
	}
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
		s.svcs[sv.Name] = &service{Service: sv, ring: newRing(opts.RingLines), status: fact.Module{State: fact.StateWaiting}}
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
	order, err := topo(s.svcs)
	if err != nil {
		return nil, err
	}
	s.order = order
	return s, nil
}

// Order returns the service names, dependencies before dependants.
func (s *Supervisor) Order() []string { return append([]string(nil), s.order...) }

// topo sorts services so that dependencies come first; ties by name so the
// order is the same on every boot.
func topo(svcs map[string]*service) ([]string, error) {
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		unseen = iota
		visiting
		done
	)
	mark := map[string]int{}
	var order []string
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch mark[n] {
		case visiting:
			return fmt.Errorf("supervisor: dependency cycle: %s", strings.Join(append(path, n), " → "))
		case done:
			return nil
		}
		mark[n] = visiting
		deps := append([]string(nil), svcs[n].Deps...)
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		mark[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Logf writes a supervisor message on the console.
func (s *Supervisor) Logf(format string, args ...any) {
	s.line("supervisor", fmt.Sprintf(format, args...))
}

// line writes one tagged line on the console; one Write per line so lines
// from different services do not interleave.
func (s *Supervisor) line(tag, text string) {
	s.out.Lock()
	defer s.out.Unlock()
	io.WriteString(s.opts.Console, tag+": "+text+"\n")
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

// Lines returns the kept output lines of a service, oldest first.
func (s *Supervisor) Lines(name string) []string {
	s.mu.Lock()
	sv := s.svcs[name]
	s.mu.Unlock()
	if sv == nil {
		return nil
	}
	return sv.ring.lines()
}

// setState changes a service's state and publishes the fact. Caller holds s.mu.
func (s *Supervisor) setState(sv *service, state string) {
	if sv.status.State == state {
		return
	}
	sv.status.State = state
	sv.status.Since = time.Now().UTC().Truncate(time.Millisecond)
	s.publishLocked()
}

func (s *Supervisor) publishLocked() {
	if s.opts.NoPublish {
		return
	}
	if err := s.opts.Publish(fact.NameModules, s.statusLocked()); err != nil {
		s.Logf("cannot publish fact modules: %v", err)
	}
}

func (s *Supervisor) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run starts the services and supervises them until ctx is done, then stops
// them in reverse dependency order (SIGTERM, SIGKILL after the grace period)
// and returns. It reaps every child of the process, including orphans
// reparented to it; exits of processes it did not start are discarded.
func (s *Supervisor) Run(ctx context.Context) {
	sigchld := make(chan os.Signal, 16)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)

	reaperDone := make(chan struct{})
	stopReaper := make(chan struct{})
	go func() {
		defer close(reaperDone)
		// A slow tick besides SIGCHLD: reaping must not depend on never
		// missing a signal.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			s.reap()
			select {
			case <-sigchld:
			case <-t.C:
			case <-stopReaper:
				return
			}
		}
	}()

	if s.opts.LogDir != "" {
		go s.flushLogs(ctx)
	}

	s.mu.Lock()
	s.publishLocked()
	s.mu.Unlock()

	// A fact landing wakes the loop, so that a module's dependents start
	// as soon as it is ready rather than at the next poll: on a boot's
	// chain (hardware, storage, identity, registrar) polls cost up to a
	// tenth of a second a link. The poll stays, for readiness functions.
	landed, stopWatch := fact.Watch()
	defer stopWatch()
	t := time.NewTicker(s.opts.Poll)
	for ctx.Err() == nil {
		s.step()
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-s.wake:
		case <-landed:
		}
	}
	t.Stop()
	s.shutdown()
	if s.opts.LogDir != "" {
		s.writeLogs(true)
	}
	close(stopReaper)
	<-reaperDone
}

// step starts what can start, restarts what is due and notes readiness.
func (s *Supervisor) step() {
	defer s.recoverf("starting services")
	if s.stepLocked() && s.opts.AllReady != nil {
		s.opts.AllReady()
	}
}

// stepLocked does step's work and says whether every service has just
// become ready for the first time.
func (s *Supervisor) stepLocked() (allReady bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return false
	}
	now := time.Now()
	for _, n := range s.order {
		sv := s.svcs[n]
		switch sv.status.State {
		case fact.StateWaiting:
			if s.depsReadyLocked(sv) {
				s.startLocked(sv)
			}
		case fact.StateRestarting, fact.StateFailed:
			if !now.Before(sv.restartAt) {
				s.startLocked(sv)
			}
		case fact.StateStarting:
			if s.readyLocked(sv) && !sv.Oneshot {
				sv.everReady = true
				s.setState(sv, fact.StateReady)
			}
		}
	}
	if s.ready {
		return false
	}
	for _, sv := range s.svcs {
		if !sv.everReady && sv.TTY == "" {
			return false
		}
	}
	s.ready = true
	return true
}

func (s *Supervisor) depsReadyLocked(sv *service) bool {
	for _, d := range sv.Deps {
		if !s.svcs[d].everReady {
			return false
		}
	}
	return true
}

func (s *Supervisor) readyLocked(sv *service) bool {
	if sv.TTY != "" && sv.Ready == nil {
		return true
	}
	if sv.Ready != nil {
		return safeBool(sv.Ready)
	}
	fi, err := os.Stat(fact.Path(sv.Name))
	// The kernel stamps files with a coarse clock: allow it a few
	// milliseconds behind ours.
	return err == nil && !fi.ModTime().Before(sv.started.Add(-20*time.Millisecond))
}

// safeBool calls a readiness function, treating a panic as "not ready".
func safeBool(f func() bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f()
}

// startLocked starts the service's process; on failure it schedules a retry.
func (s *Supervisor) startLocked(sv *service) {
	// Taken before the process exists: a quick module may publish its
	// fact before StartProcess returns to us.
	now := time.Now()
	pid, err := s.spawn(sv)
	if err != nil {
		sv.status.LastExit = "start failed: " + err.Error()
		sv.status.PID = 0
		delay := s.backoff(sv)
		sv.restartAt = now.Add(delay)
		s.Logf("%s could not start: %v — retry in %s", sv.Name, err, delay)
		s.setState(sv, fact.StateFailed)
		return
	}
	sv.started = now
	sv.exited = make(chan struct{})
	sv.status.PID = pid
	s.pids[pid] = sv
	s.setState(sv, fact.StateStarting)
}

// backoff returns the delay before the next start and counts the failure.
func (s *Supervisor) backoff(sv *service) time.Duration {
	d := s.opts.BackoffMin
	for i := 0; i < sv.failures && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	if d > s.opts.BackoffMax {
		d = s.opts.BackoffMax
	}
	sv.failures++
	return d
}

// spawn starts the process of sv and a reader for its output.
func (s *Supervisor) spawn(sv *service) (int, error) {
	env := sv.Env
	if env == nil {
		env = os.Environ()
	}
	attr := &os.ProcAttr{Env: lastWins(env), Dir: "/"}
	if sv.TTY != "" {
		tty, err := os.OpenFile(sv.TTY, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return 0, err
		}
		defer tty.Close()
		attr.Files = []*os.File{tty, tty, tty}
		attr.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		p, err := os.StartProcess(sv.Argv[0], sv.Argv, attr)
		if err != nil {
			return 0, err
		}
		pid := p.Pid
		p.Release()
		return pid, nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	attr.Files = []*os.File{null, pw, pw}
	// Its own process group, so that stopping a module also stops what it
	// started.
	attr.Sys = &syscall.SysProcAttr{Setpgid: true}
	p, err := os.StartProcess(sv.Argv[0], sv.Argv, attr)
	pw.Close()
	if err != nil {
		pr.Close()
		return 0, err
	}
	pid := p.Pid
	// We reap with wait4(-1) ourselves: the os.Process must never wait.
	p.Release()
	go s.copyLines(sv, pr)
	return pid, nil
}

// copyLines tags each output line of a service onto the console and keeps it.
func (s *Supervisor) copyLines(sv *service, r io.ReadCloser) {
	defer r.Close()
	defer func() {
		if v := recover(); v != nil {
			s.Logf("output of %s: internal error: %v", sv.Name, v)
		}
	}()
	// ReadLine hands an endless line over in pieces of the buffer's size.
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, _, err := br.ReadLine()
		if err != nil {
			return
		}
		s.emit(sv, string(line))
	}
}

func (s *Supervisor) emit(sv *service, text string) {
	text = strings.TrimRight(text, "\r")
	sv.ring.add(text)
	s.line(sv.Name, text)
}

// reap collects every exited child without blocking and hands exits of our
// services to exitedLocked.
func (s *Supervisor) reap() {
	defer s.recoverf("reaping")
	for s.reapOne() {
	}
}

// reapOne reaps one child, if any. Holding mu while waiting makes sure a
// pid we signal has not been reaped (and reused) under us.
func (s *Supervisor) reapOne() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ws unix.WaitStatus
	pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
	if err == unix.EINTR {
		return true
	}
	if err != nil || pid <= 0 {
		return false
	}
	if sv, ok := s.pids[pid]; ok {
		delete(s.pids, pid)
		s.exitedLocked(sv, ws)
	}
	return true
}

// recoverf keeps a bug in the supervisor from taking PID 1 (and with it
// the kernel) down: it logs the panic and lets the loop go on.
func (s *Supervisor) recoverf(what string) {
	if v := recover(); v != nil {
		s.Logf("internal error while %s: %v", what, v)
	}
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// exitedLocked handles the end of a service's process.
func (s *Supervisor) exitedLocked(sv *service, ws unix.WaitStatus) {
	status := describe(ws)
	sv.status.LastExit = status
	sv.status.PID = 0
	close(sv.exited)
	defer s.kick()
	ran := time.Since(sv.started)
	if s.down || sv.stopping {
		s.setState(sv, fact.StateStopped)
		return
	}
	if sv.Oneshot && ws.Exited() && ws.ExitStatus() == 0 {
		sv.everReady = true
		sv.failures = 0
		s.setState(sv, fact.StateStopped)
		return
	}
	if ran >= s.opts.StableAfter {
		sv.failures = 0
	}
	delay := s.backoff(sv)
	sv.status.Restarts++
	sv.restartAt = time.Now().Add(delay)
	s.Logf("%s exited (%s) — restart %d in %s", sv.Name, status, sv.status.Restarts, delay)
	s.setState(sv, fact.StateRestarting)
}

// shutdown stops every service, a service only once all its dependants
// have stopped; independent services stop in parallel.
func (s *Supervisor) shutdown() {
	s.mu.Lock()
	s.down = true
	for _, sv := range s.svcs {
		if sv.status.State == fact.StateRestarting || sv.status.State == fact.StateFailed || sv.status.State == fact.StateWaiting {
			s.setState(sv, fact.StateStopped)
		}
	}
	s.mu.Unlock()

	stopped := map[string]bool{}
	for len(stopped) < len(s.svcs) {
		var batch []*service
		// Reverse topological order; only services whose dependants are all stopped.
		for i := len(s.order) - 1; i >= 0; i-- {
			n := s.order[i]
			if stopped[n] {
				continue
			}
			sv := s.svcs[n]
			free := true
			for _, d := range sv.dependants {
				if !stopped[d] {
					free = false
				}
			}
			if free {
				batch = append(batch, sv)
			}
		}
		if len(batch) == 0 { // cannot happen without a cycle; never hang
			break
		}
		var wg sync.WaitGroup
		for _, sv := range batch {
			stopped[sv.Name] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.stop(sv)
			}()
		}
		wg.Wait()
	}
}

// stop ends one service's process: SIGTERM, then SIGKILL after the grace period.
func (s *Supervisor) stop(sv *service) {
	s.mu.Lock()
	pid := sv.status.PID
	if pid == 0 {
		s.mu.Unlock()
		return
	}
	exited := sv.exited
	sv.stopping = true
	s.Logf("stopping %s (pid %d)", sv.Name, pid)
	if sv.TTY != "" {
		// Interactive shells ignore SIGTERM; a hangup ends them.
		unix.Kill(-pid, unix.SIGHUP)
	}
	unix.Kill(-pid, unix.SIGTERM) // its process group (a TTY service leads its own)
	unix.Kill(pid, unix.SIGTERM)
	s.mu.Unlock()

	select {
	case <-exited:
		return
	case <-time.After(s.opts.Grace):
	}
	s.mu.Lock()
	if sv.status.PID == pid {
		s.Logf("%s did not stop within %s: killing it", sv.Name, s.opts.Grace)
		unix.Kill(-pid, unix.SIGKILL)
		unix.Kill(pid, unix.SIGKILL)
	}
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		s.Logf("%s (pid %d) did not die after SIGKILL", sv.Name, pid)
	}
}

// flushLogs rewrites the changed ring buffers at most once a second.
func (s *Supervisor) flushLogs(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.writeLogs(false)
		}
	}
}

func (s *Supervisor) writeLogs(all bool) {
	for _, n := range s.order {
		sv := s.svcs[n]
		if !sv.ring.takeDirty() && !all {
			continue
		}
		data := strings.Join(sv.ring.lines(), "\n")
		if data != "" {
			data += "\n"
		}
		if err := os.MkdirAll(s.opts.LogDir, 0o755); err != nil {
			continue
		}
		// Not fact.WriteFile: no fsync for logs on tmpfs, once a second.
		p := filepath.Join(s.opts.LogDir, n+".log")
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err == nil {
			os.Rename(tmp, p)
		}
	}
}

// ring keeps the last lines of a service's output.
type ring struct {
	mu    sync.Mutex
	buf   []string
	next  int
	full  bool
	dirty bool
}

func newRing(n int) *ring { return &ring{buf: make([]string, n)} }

func (r *ring) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.dirty = true
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.buf[:r.next]...)
	}
	return append(append([]string(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

func (r *ring) takeDirty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dirty
	r.dirty = false
	return d
}

// ErrNotRunning is returned by Signal for a service without a process.
var ErrNotRunning = errors.New("service not running")

// Signal sends sig to the current process of a service.
func (s *Supervisor) Signal(name string, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.svcs[name]
	if sv == nil {
		return fmt.Errorf("supervisor: no service %q", name)
	}
	if sv.status.PID == 0 {
		return ErrNotRunning
	}
	return unix.Kill(sv.status.PID, sig)
}

// lastWins drops the earlier of duplicate variables in env, as os/exec does:
// os.StartProcess passes duplicates on, and a program's getenv then sees
// the first, so `append(os.Environ(), "X=y")` would not set X when X was
// set already.
func lastWins(env []string) []string {
	last := make(map[string]int, len(env))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}
