// Package reap is the one place where this process waits for its children.
//
// As PID 1 every orphan of the system becomes our child, and only
// wait4(-1) collects those: whoever calls it takes every child's exit,
// including the exits of processes another part of the program started.
// So there is one reaper per process, and the children it started tell
// their owners when they end through a Child; exits of processes nobody
// registered (orphans) are collected and dropped.
//
// A child is registered while the reaper's lock is held, from before the
// process exists until its pid is recorded, and reaping takes the same
// lock: an exit cannot be collected before its owner is known. Signals go
// through the same lock, so a pid is never signalled after it was reaped
// (when it may already name another process).
//
// A program that uses it must start its children through it, never with
// os/exec: the reaper would take the exit that exec.Cmd.Wait waits for.
package reap

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Child is a process started through Start.
type Child struct {
	pid    int
	done   chan struct{}
	status unix.WaitStatus // set before done is closed
}

// PID is the child's process id.
func (c *Child) PID() int { return c.pid }

// Done is closed once the child has been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Status is how the child ended; valid once Done is closed.
func (c *Child) Status() unix.WaitStatus { return c.status }

// Signal sends sig to the child and, with group, first to its process
// group. It does nothing (and returns nil) once the child was reaped.
func (c *Child) Signal(sig syscall.Signal, group bool) error {
	mu.Lock()
	defer mu.Unlock()
	select {
	case <-c.done:
		return nil
	default:
	}
	if group {
		unix.Kill(-c.pid, sig) // the child may not lead a group: no error
	}
	return unix.Kill(c.pid, sig)
}

var (
	mu       sync.Mutex
	children = map[int]*Child{}
	running  sync.Once
)

// Start runs start, which starts one child process and returns its pid,
// and returns the Child to follow it by. The reaper runs from the first
// call on.
func Start(start func() (int, error)) (*Child, error) {
	Run()
	mu.Lock()
	defer mu.Unlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	c := &Child{pid: pid, done: make(chan struct{})}
	children[pid] = c
	return c, nil
}

// StartProcess starts a program as os.StartProcess does, through Start:
// the reaper waits for it, so the os.Process is released at once (it must
// never wait itself).
func StartProcess(name string, argv []string, attr *os.ProcAttr) (*Child, error) {
	return Start(func() (int, error) {
		p, err := os.StartProcess(name, argv, attr)
		if err != nil {
			return 0, err
		}
		pid := p.Pid
		p.Release()
		return pid, nil
	})
}

// Run starts the reaper if it is not running: from then on it collects
// every child of the process on SIGCHLD, and once a second besides (so
// that a lost signal costs a second, not a zombie), for as long as the
// process lives. PID 1 calls it first thing.
func Run() {
	running.Do(func() {
		sigchld := make(chan os.Signal, 16)
		signal.Notify(sigchld, syscall.SIGCHLD)
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				Reap()
				select {
				case <-sigchld:
				case <-t.C:
				}
			}
		}()
	})
}

// Reap collects every child that has exited, without blocking, and tells
// the owners of those started through Start.
func Reap() {
	for reapOne() {
	}
}

func reapOne() bool {
	mu.Lock()
	defer mu.Unlock()
	var ws unix.WaitStatus
	pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
	if err == unix.EINTR {
		return true
	}
	if err != nil || pid <= 0 {
		return false
	}
	if c, ok := children[pid]; ok {
		delete(children, pid)
		c.status = ws
		close(c.done)
	}
	return true
}
