// Package condition says when a service is ready, as conditions that can be
// combined, after Talos's pkg/conditions: a Condition's Wait returns once
// it holds. None holds at once (an interactive shell), Closed when a
// channel closes (a module's readiness pipe, per process start), Poll when
// a function says so (services that are not modules), All when all of
// theirs hold.
//
// None of them reads a clock's date: a condition that compared file times
// with a start time failed whenever the clock was stepped in between, as
// the network module does on every node whose hardware clock is off.
package condition

import (
	"context"
	"strings"
	"time"
)

// Condition is something to wait for.
type Condition interface {
	// Wait returns nil once the condition holds, or ctx's error when ctx
	// ends first.
	Wait(ctx context.Context) error
	// String says what is waited for.
	String() string
}

type none struct{}

func (none) Wait(context.Context) error { return nil }
func (none) String() string             { return "nothing" }

// None holds at once.
func None() Condition { return none{} }

type closed struct {
	ch   <-chan struct{}
	what string
}

func (c closed) Wait(ctx context.Context) error {
	select {
	case <-c.ch: // closed already: ready, whatever ctx says
		return nil
	default:
	}
	select {
	case <-c.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c closed) String() string { return c.what }

// Closed holds once ch is closed; what says what that means.
func Closed(ch <-chan struct{}, what string) Condition { return closed{ch, what} }

type poll struct {
	f     func() bool
	every time.Duration
	what  string
}

func (p poll) Wait(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for !safe(p.f) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (p poll) String() string { return p.what }

// Poll holds once f returns true, asking it at once and then every
// interval. A panic in f counts as false: a bug in a readiness check must
// not take PID 1 down.
func Poll(what string, f func() bool, every time.Duration) Condition {
	return poll{f, every, what}
}

func safe(f func() bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f()
}

type all []Condition

func (a all) Wait(ctx context.Context) error {
	errs := make(chan error, len(a))
	for _, c := range a {
		go func() { errs <- c.Wait(ctx) }()
	}
	var first error
	for range a {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (a all) String() string {
	l := make([]string, len(a))
	for i, c := range a {
		l[i] = c.String()
	}
	return strings.Join(l, " and ")
}

// All holds once every one of cs holds; nil conditions are left out.
func All(cs ...Condition) Condition {
	var a all
	for _, c := range cs {
		switch c := c.(type) {
		case nil:
		case all:
			a = append(a, c...)
		default:
			a = append(a, c)
		}
	}
	if len(a) == 0 {
		return None()
	}
	return a
}
