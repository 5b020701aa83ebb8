// Package process is the runner that starts a service's program as a child
// process, one per Run, after Talos's runner/process: in its own process
// group, with standard input on /dev/null and its output read line by
// line, or on a terminal as its controlling terminal; reaped through
// package reap; told to stop with SIGTERM, killed after a grace period.
//
// A process whose readiness is notified gets a readiness pipe of its own:
// the write end as file descriptor 3, named in $GRIDNODE_NOTIFY_FD
// (fact.NotifyEnv); the process writes a line on it once ready. The pipe
// is made for one start, so a notification always belongs to the process
// that sent it.
package process

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/condition"
	"github.com/gridnode/gridnode/init/supervisor/logs"
	"github.com/gridnode/gridnode/init/supervisor/reap"
	"github.com/gridnode/gridnode/init/supervisor/runner"
	"github.com/gridnode/gridnode/node/fact"
)

// notifyFD is the readiness pipe's descriptor in the child.
const notifyFD = 3

// killWait is how long a process has to die after SIGKILL before we stop
// waiting (it may be stuck in the kernel, on a dead disk).
const killWait = 5 * time.Second

// Runner runs one program.
type Runner struct {
	Name string   // for messages
	Argv []string // Argv[0] is a path
	Env  []string // nil: this process's environment
	// TTY, when set, is a terminal (/dev/tty2) that the program gets as its
	// controlling terminal and standard streams, in a new session; its
	// output is then not read.
	TTY string
	// Output receives each line of the program's output (standard output
	// and error together); nil drops them.
	Output func(line string)
	// Notify gives the program a readiness pipe; the process is ready when
	// it writes on it (and Ready, if set, holds too).
	Notify bool
	// Ready is a condition for the process to be ready, besides Notify.
	// Without either, Run never reports readiness (a oneshot's success is
	// its exit).
	Ready condition.Condition
	// Grace is how long the program has between SIGTERM and SIGKILL.
	Grace time.Duration
	// StopsChildren sends SIGTERM to the program alone rather than to its
	// process group, so that it can stop what it started in its own order
	// (the workloads module and its containers); SIGKILL, after Grace,
	// still goes to the whole group.
	StopsChildren bool
}

// Run implements runner.Runner.
func (r *Runner) Run(ctx context.Context, ev runner.Events) error {
	p, notified, err := r.start()
	if err != nil {
		return &runner.StartError{Err: err}
	}
	ev.Started(p)

	var conds []condition.Condition
	if r.Notify {
		conds = append(conds, condition.Closed(notified, "readiness notification"))
	}
	if r.Ready != nil {
		conds = append(conds, r.Ready)
	}
	readyCtx, cancel := context.WithCancel(context.Background())
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		if len(conds) > 0 && condition.All(conds...).Wait(readyCtx) == nil {
			ev.Ready()
		}
	}()

	select {
	case <-p.Done():
	case <-ctx.Done():
		r.stop(p, ev)
	}
	cancel()
	<-readyDone
	select {
	case <-p.Done():
	default:
		return fmt.Errorf("%s (pid %d) did not die after SIGKILL", r.Name, p.PID())
	}
	ws := p.Status()
	ev.Exited(runner.Describe(ws))
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	return &runner.ExitError{Status: ws}
}

// stop ends the process: SIGTERM, then SIGKILL after the grace period.
func (r *Runner) stop(p *reap.Child, ev runner.Events) {
	ev.Logf("stopping %s (pid %d)", r.Name, p.PID())
	if r.TTY != "" {
		// Interactive shells ignore SIGTERM; a hangup ends them.
		p.Signal(syscall.SIGHUP, true)
	}
	p.Signal(syscall.SIGTERM, !r.StopsChildren)
	select {
	case <-p.Done():
		return
	case <-time.After(r.Grace):
	}
	ev.Logf("%s did not stop within %s: killing it", r.Name, r.Grace)
	p.Signal(syscall.SIGKILL, true)
	select {
	case <-p.Done():
	case <-time.After(killWait):
		ev.Logf("%s (pid %d) did not die after SIGKILL", r.Name, p.PID())
	}
}

// start starts the process, and the readers of its output and of its
// readiness pipe. notified is closed when the process says it is ready.
func (r *Runner) start() (p *reap.Child, notified chan struct{}, err error) {
	env := r.Env
	if env == nil {
		env = os.Environ()
	}
	// The child's ends are closed here once it has them (or failed to
	// start); ours only if it failed to start.
	var theirs, ours []*os.File
	defer closeAll(&theirs)
	defer func() {
		if err != nil {
			closeAll(&ours)
		}
	}()
	attr := &os.ProcAttr{Dir: "/"}
	var output, notify *os.File
	if r.TTY != "" {
		tty, err := os.OpenFile(r.TTY, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return nil, nil, err
		}
		theirs = append(theirs, tty)
		attr.Files = []*os.File{tty, tty, tty}
		attr.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil, err
		}
		theirs = append(theirs, null)
		or, ow, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		theirs, ours, output = append(theirs, ow), append(ours, or), or
		attr.Files = []*os.File{null, ow, ow}
		// Its own process group, so that stopping a module also stops
		// what it started.
		attr.Sys = &syscall.SysProcAttr{Setpgid: true}
	}
	if r.Notify {
		nr, nw, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		theirs, ours, notify = append(theirs, nw), append(ours, nr), nr
		for len(attr.Files) < notifyFD {
			attr.Files = append(attr.Files, nil)
		}
		attr.Files = append(attr.Files, nw)
		env = append(env[:len(env):len(env)], fact.NotifyEnv+"="+strconv.Itoa(notifyFD))
	}
	attr.Env = LastWins(env)
	p, err = reap.StartProcess(r.Argv[0], r.Argv, attr)
	if err != nil {
		return nil, nil, err
	}
	if output != nil {
		go r.copyLines(output)
	}
	if notify != nil {
		notified = make(chan struct{})
		go waitNotify(notify, notified)
	}
	return p, notified, nil
}

func closeAll(files *[]*os.File) {
	for _, f := range *files {
		f.Close()
	}
	*files = nil
}

// waitNotify closes notified when anything comes on the readiness pipe;
// the pipe's end (the process exited without a word) closes nothing.
func waitNotify(r *os.File, notified chan struct{}) {
	defer r.Close()
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		close(notified)
	}
}

func (r *Runner) copyLines(pr *os.File) {
	defer pr.Close()
	out := r.Output
	if out == nil {
		out = func(string) {}
	}
	logs.Lines(pr, out)
}

// LastWins drops the earlier of duplicate variables in env, as os/exec does:
// os.StartProcess passes duplicates on, and a program's getenv then sees
// the first, so `append(os.Environ(), "X=y")` would not set X when X was
// set already.
func LastWins(env []string) []string {
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
