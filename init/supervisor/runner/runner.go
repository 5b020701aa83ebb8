// Package runner is the contract between the supervisor and what runs a
// service, after Talos's machined (pkg/system/runner): a Runner runs a
// program once per Run and reports what happens to Events; policies such
// as restarting wrap a Runner in another (runner/restart); the process
// runner (runner/process) is the one that starts processes.
package runner

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Runner runs a program to its end.
type Runner interface {
	// Run runs the program and returns when it has ended: nil when it
	// exited with status 0, an *ExitError when it ended otherwise, a
	// *StartError when it could not be started. When ctx ends, Run stops
	// the program and returns once it has ended.
	Run(ctx context.Context, ev Events) error
}

// Process is a running program as Events see it.
type Process interface {
	PID() int
	// Signal sends sig to the process, and with group to its process
	// group too; once the process has ended it does nothing.
	Signal(sig syscall.Signal, group bool) error
}

// Events receives what happens to a service. Calls for one service come
// one at a time, in order.
type Events interface {
	// Started: a process runs.
	Started(p Process)
	// Ready: the process that started last is ready (at most once per start).
	Ready()
	// Exited: that process ended (status as ExitError words it).
	Exited(status string)
	// Backoff: the run failed with err (nil: a daemon exited with status
	// 0) and the next start comes after delay.
	Backoff(err error, delay time.Duration)
	// Logf: a message about the service for the console.
	Logf(format string, args ...any)
}

// StartError is a program that could not be started.
type StartError struct{ Err error }

func (e *StartError) Error() string { return "start failed: " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ExitError is a process that ended other than with exit status 0.
type ExitError struct{ Status unix.WaitStatus }

func (e *ExitError) Error() string { return Describe(e.Status) }

// Describe words a wait status as the console shows it: "exit status 1",
// "signal SIGKILL".
func Describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
