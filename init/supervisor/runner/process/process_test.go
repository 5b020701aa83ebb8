package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/runner"
	"github.com/gridnode/gridnode/node/fact"
)

// recorder keeps the events of a run, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	lines  []string
	ready  chan struct{}
	proc   runner.Process
}

func newRecorder() *recorder { return &recorder{ready: make(chan struct{})} }

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Started(p runner.Process) {
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	r.add("started")
}
func (r *recorder) Ready()                             { r.add("ready"); close(r.ready) }
func (r *recorder) Exited(status string)               { r.add("exited " + status) }
func (r *recorder) Backoff(err error, _ time.Duration) { r.add(fmt.Sprint("backoff ", err)) }
func (r *recorder) Logf(f string, a ...any)            { r.add("log " + fmt.Sprintf(f, a...)) }

func (r *recorder) output(l string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
}

// output is read apart from the process's end: wait for the lines, with
// a deadline.
func (r *recorder) waitLines(t *testing.T, want func(out string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		out := strings.Join(r.lines, "|")
		r.mu.Unlock()
		if want(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("output after 20 s: %q", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "; ")
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// TestRunReportsExitAndOutput: one Run is one process, its lines and its
// end, with the environment it was given (the last of duplicates).
func TestRunReportsExitAndOutput(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := &Runner{Name: "x", Argv: sh(`echo "one $V"; echo two >&2; printf 'three\r\n'; exit 3`),
		Env: []string{"V=first", "V=last"}, Output: rec.output, Grace: time.Second}
	err := r.Run(context.Background(), rec)
	var ee *runner.ExitError
	if !errors.As(err, &ee) || ee.Error() != "exit status 3" {
		t.Fatalf("Run = %v, want exit status 3", err)
	}
	if got := rec.String(); got != "started; exited exit status 3" {
		t.Errorf("events: %s", got)
	}
	rec.waitLines(t, func(out string) bool { return out == "one last|two|three" })
	if err := (&Runner{Name: "ok", Argv: sh("exit 0")}).Run(context.Background(), newRecorder()); err != nil {
		t.Errorf("exit 0: Run = %v, want nil", err)
	}
}

func TestRunStartError(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	err := (&Runner{Name: "ghost", Argv: []string{"/nonexistent/ghost"}}).Run(context.Background(), rec)
	var se *runner.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "start failed:") {
		t.Fatalf("Run = %v, want a StartError", err)
	}
	if got := rec.String(); got != "" {
		t.Errorf("events of a program that never started: %s", got)
	}
}

// TestNotifyIsPerStart: readiness comes through the pipe of the process
// that sends it: a process that never writes on it is never ready, one
// that does is, and the variable names descriptor 3.
func TestNotifyIsPerStart(t *testing.T) {
	t.Parallel()
	silent := newRecorder()
	r := &Runner{Name: "silent", Argv: sh(`[ "$` + fact.NotifyEnv + `" = 3 ] || exit 9`), Notify: true}
	if err := r.Run(context.Background(), silent); err != nil {
		t.Fatalf("$%s is not 3: %v", fact.NotifyEnv, err)
	}
	if got := silent.String(); got != "started; exited exit status 0" {
		t.Errorf("a process that never notified: %s", got)
	}

	rec := newRecorder()
	dir := t.TempDir()
	// Notifies, then waits to be told to go.
	r = &Runner{Name: "notifier", Notify: true, Grace: time.Second,
		Argv: sh(`echo >&3; exec 3>&-; while [ ! -e ` + dir + `/go ]; do sleep 0.01; done`)}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), rec) }()
	select {
	case <-rec.ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("no readiness in 20 s: %s", rec)
	}
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rec.String(); got != "started; ready; exited exit status 0" {
		t.Errorf("events: %s", got)
	}
}

// TestStopTermThenKill: a stop sends SIGTERM to the process group; one
// that ignores it is killed after the grace period, and says so.
func TestStopTermThenKill(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, script, exit string
	}{
		{"polite", `trap 'exit 0' TERM; echo up; while :; do sleep 0.01; done`, "exit status 0"},
		{"stubborn", `trap '' TERM; echo up; while :; do sleep 0.01; done`, "signal SIGKILL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			up := make(chan struct{})
			var once sync.Once
			r := &Runner{Name: c.name, Argv: sh(c.script), Grace: 200 * time.Millisecond,
				Output: func(string) { once.Do(func() { close(up) }) }}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx, rec) }()
			<-up
			t0 := time.Now()
			cancel()
			<-done
			took := time.Since(t0)
			events := rec.String()
			if !strings.Contains(events, "log stopping "+c.name+" (pid ") || !strings.HasSuffix(events, "exited "+c.exit) {
				t.Errorf("events: %s", events)
			}
			killed := strings.Contains(events, "did not stop within 200ms: killing it")
			if killed != (c.name == "stubborn") {
				t.Errorf("killed %t: %s", killed, events)
			}
			if c.name == "stubborn" && took < 200*time.Millisecond {
				t.Errorf("killed after %s, before the grace period", took)
			}
		})
	}
}

// TestStopsChildren: with StopsChildren, SIGTERM reaches the program alone,
// which stops its child itself (here with SIGUSR1); without it, the
// child gets SIGTERM from us as well.
func TestStopsChildren(t *testing.T) {
	t.Parallel()
	// The child notes every signal it gets and ends on SIGUSR1 (not in
	// the trap itself: the shell runs pending traps in signal order, and
	// USR1 comes before TERM). The parent, on SIGTERM, sends the child
	// SIGUSR1 and waits for it. Each sets its traps before it says it is up.
	dir := t.TempDir()
	child := filepath.Join(dir, "child")
	os.WriteFile(child, []byte(`trap 'echo child got TERM' TERM
trap 'echo child got USR1; done=1' USR1
echo child up
while [ -z "$done" ]; do sleep 0.01; done
`), 0o755)
	parent := `trap 'kill -USR1 $c; wait $c; exit 0' TERM; /bin/sh ` + child + ` & c=$!; echo parent up; while :; do sleep 0.01; done`
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprint("StopsChildren=", own), func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			r := &Runner{Name: "parent", Argv: sh(parent), Grace: 10 * time.Second, StopsChildren: own, Output: rec.output}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx, rec) }()
			rec.waitLines(t, func(out string) bool {
				return strings.Contains(out, "child up") && strings.Contains(out, "parent up")
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run = %v; events %s; output %q", err, rec, rec.lines)
			}
			// The child's last words come before its end, which the
			// parent waited for.
			out := rec.waitLines(t, func(out string) bool { return strings.Contains(out, "child got USR1") })
			if got := strings.Contains(out, "child got TERM"); got == own {
				t.Errorf("child got SIGTERM from the supervisor: %t, want %t; output %q", got, !own, out)
			}
		})
	}
}

func TestLastWins(t *testing.T) {
	got := LastWins([]string{"A=1", "B=2", "A=3", "C", "B=4"})
	want := []string{"A=3", "C", "B=4"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("LastWins = %q, want %q", got, want)
	}
}
