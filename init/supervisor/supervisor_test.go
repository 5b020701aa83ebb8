package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"

	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the supervised programs: with SUPERVISOR_HELPER
// set it runs one of the helpers below instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SUPERVISOR_HELPER"); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func record(what string) {
	if p := os.Getenv("RECORD"); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			fmt.Fprintln(f, what)
			f.Close()
		}
	}
}

func helper(mode string) {
	name := os.Getenv("NAME")
	switch mode {
	case "daemon", "stubborn":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		if mode == "stubborn" {
			signal.Ignore(syscall.SIGTERM)
		}
		record("start " + name)
		fmt.Println("hello from", name)
		// What the module runner does for every module.
		if err := fact.ReadyOnPublish(name); err != nil {
			fmt.Println("readiness:", err)
			os.Exit(3)
		}
		if err := fact.Write(name, map[string]int{"pid": os.Getpid()}); err != nil {
			fmt.Println("fact:", err)
			os.Exit(3)
		}
		<-term
		record("stop " + name)
		os.Exit(0)
	case "backdated":
		// Publishes its fact stamped a day in the past, as it is when the
		// clock was stepped back a day between the process's start and the
		// publication (the network module does that on a node whose
		// hardware clock is ahead), and says it is ready, as every module
		// does when it publishes.
		path := fact.Path(name)
		past := time.Now().Add(-24 * time.Hour)
		if err := os.WriteFile(path+".tmp", []byte("{}\n"), 0o644); err != nil {
			os.Exit(3)
		}
		if os.Chtimes(path+".tmp", past, past) != nil || os.Rename(path+".tmp", path) != nil {
			os.Exit(3)
		}
		if err := fact.Ready(); err != nil {
			fmt.Println("readiness:", err)
			os.Exit(3)
		}
		select {}
	case "twice":
		// The first process is ready and exits; the next publishes its
		// fact without saying it is ready, until the file GO exists.
		marker := os.Getenv("RECORD") + ".first"
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o644)
			fact.ReadyOnPublish(name)
			fact.Write(name, 1)
			os.Exit(1)
		}
		fact.Write(name, 2)
		fmt.Println("republished")
		for {
			if _, err := os.Stat(os.Getenv("RECORD") + ".go"); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fact.Ready()
		select {}
	case "fail":
		fmt.Println("failing")
		os.Exit(1)
	case "orphan":
		// Start a grandchild and leave it behind: it is reparented to the
		// subreaper (the test process, standing in for PID 1).
		// os.StartProcess, unlike os/exec, passes duplicate variables
		// on, and the first one wins: appending SUPERVISOR_HELPER=sleep
		// to this environment would start another orphan, which starts
		// another, without end, long after the test (thousands of
		// processes a second under PID 1).
		env := []string{"SUPERVISOR_HELPER=sleep"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SUPERVISOR_HELPER=") {
				env = append(env, kv)
			}
		}
		p, err := os.StartProcess("/proc/self/exe", []string{"helper"}, &os.ProcAttr{
			Env:   env,
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			fmt.Println("start grandchild:", err)
			os.Exit(1)
		}
		fmt.Println("grandchild", p.Pid)
		os.Exit(0)
	case "sleep":
		time.Sleep(200 * time.Millisecond)
		os.Exit(0)
	}
	os.Exit(2)
}

// bench sets up a fact folder, a record file and helper services.
type bench struct {
	t       *testing.T
	run     string
	rec     string
	console *testutil.SyncBuffer
}

func newBench(t *testing.T) *bench {
	t.Parallel()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	return &bench{t: t, run: run, rec: filepath.Join(dir, "record"), console: &testutil.SyncBuffer{}}
}

func (b *bench) svc(name, mode string, deps ...string) Service {
	exe, err := os.Executable()
	if err != nil {
		b.t.Fatal(err)
	}
	return Service{
		Name: name,
		Deps: deps,
		Argv: []string{exe},
		Env:  append(os.Environ(), "SUPERVISOR_HELPER="+mode, "NAME="+name, "RECORD="+b.rec),
	}
}

func (b *bench) records() []string {
	data, _ := os.ReadFile(b.rec)
	return strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
}

// start runs the supervisor until the test ends or stop is called.
func (b *bench) start(svcs []Service, opts Options) (s *Supervisor, stop func()) {
	b.t.Helper()
	opts.Console = b.console
	opts.Facts = fact.Folder(b.run)
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Millisecond
	}
	s, err := New(svcs, opts)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				b.t.Fatal("supervisor did not return after shutdown")
			}
		})
	}
	b.t.Cleanup(stop)
	return s, stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, cond, "%s", what)
}

func TestNewRejectsBadGraphs(t *testing.T) {
	t.Parallel()
	_, err := New([]Service{{Name: "a", Deps: []string{"b"}, Argv: []string{"x"}}, {Name: "b", Deps: []string{"a"}, Argv: []string{"x"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: got %v", err)
	}
	_, err = New([]Service{{Name: "a", Deps: []string{"nope"}, Argv: []string{"x"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown dependency: got %v", err)
	}
}

func TestDependencyOrderAndShutdownOrder(t *testing.T) {
	b := newBench(t)
	var allReady atomic.Int32
	s, stop := b.start([]Service{
		b.svc("registrar", "daemon", "network", "identity"),
		b.svc("identity", "daemon", "storage"),
		b.svc("network", "daemon", "hardware"),
		b.svc("storage", "daemon", "hardware"),
		b.svc("hardware", "daemon"),
	}, Options{LogDir: filepath.Join(b.run, "log"), AllReady: func() { allReady.Add(1) }})
	waitFor(t, "all ready", func() bool { return allReady.Load() == 1 })

	st := s.Status()
	for n, v := range st {
		if v.State != fact.StateReady || v.PID == 0 {
			t.Errorf("%s: %+v, want ready with a pid", n, v)
		}
	}
	var published map[string]fact.Module
	if err := fact.Folder(b.run).Read("modules", &published); err != nil || published["registrar"].State != fact.StateReady {
		t.Errorf("fact modules: %v %+v", err, published)
	}
	starts := b.records()
	pos := map[string]int{}
	for i, r := range starts {
		pos[r] = i
	}
	before := func(x, y string) {
		if pos[x] >= pos[y] {
			t.Errorf("%s after %s in %v", x, y, starts)
		}
	}
	before("start_hardware", "start_network")
	before("start_hardware", "start_storage")
	before("start_storage", "start_identity")
	before("start_identity", "start_registrar")
	before("start_network", "start_registrar")

	waitFor(t, "hardware.log", func() bool {
		data, _ := os.ReadFile(filepath.Join(b.run, "log", "hardware.log"))
		return strings.Contains(string(data), "hello from hardware")
	})
	if !strings.Contains(b.console.String(), "hardware: hello from hardware\n") {
		t.Errorf("console lacks the tagged line:\n%s", b.console.String())
	}

	stop()
	all := b.records()
	pos = map[string]int{}
	for i, r := range all {
		pos[r] = i
	}
	for _, n := range []string{"hardware", "network", "storage", "identity", "registrar"} {
		if _, ok := pos["stop_"+n]; !ok {
			t.Fatalf("%s never got SIGTERM: %v", n, all)
		}
	}
	before("stop_registrar", "stop_network")
	before("stop_registrar", "stop_identity")
	before("stop_identity", "stop_storage")
	before("stop_storage", "stop_hardware")
	before("stop_network", "stop_hardware")
	for n, v := range s.Status() {
		if v.State != fact.StateStopped {
			t.Errorf("%s after shutdown: %+v", n, v)
		}
	}
	if allReady.Load() != 1 {
		t.Errorf("AllReady called %d times", allReady.Load())
	}
}

func TestReadinessGatesDependants(t *testing.T) {
	b := newBench(t)
	var open atomic.Bool
	var asked atomic.Int32
	gate := b.svc("gate", "daemon")
	gate.Ready = func() bool { asked.Add(1); return open.Load() }
	s, _ := b.start([]Service{gate, b.svc("after", "daemon", "gate")}, Options{})

	// The gate runs and is asked many times whether it is ready; meanwhile
	// its dependant must not start.
	waitFor(t, "gate asked 10 times", func() bool { return asked.Load() >= 10 })
	st := s.Status()
	if st["gate"].State != fact.StateStarting || st["after"].State != fact.StateWaiting {
		t.Fatalf("before the gate opens: %+v", st)
	}
	open.Store(true)
	waitFor(t, "after ready", func() bool { return s.Status()["after"].State == fact.StateReady })
}

func TestRestartWithBackoff(t *testing.T) {
	b := newBench(t)
	s, _ := b.start([]Service{b.svc("flaky", "fail")}, Options{
		BackoffMin: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond, StableAfter: time.Hour,
	})
	waitFor(t, "4 restarts", func() bool { return s.Status()["flaky"].Restarts >= 4 })
	out := b.console.String()
	for _, want := range []string{
		"supervisor: flaky exited (exit status 1) — restart 1 in 20ms\n",
		"restart 2 in 40ms\n",
		"restart 3 in 80ms\n",
		"restart 4 in 80ms\n",
		"flaky: failing\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if got := s.Status()["flaky"].LastExit; got != "exit status 1" {
		t.Errorf("last_exit %q", got)
	}
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	b := newBench(t)
	// Every run of "sleep" lasts 200ms, longer than StableAfter: the delay
	// must stay at BackoffMin instead of doubling.
	sv := b.svc("steady", "sleep")
	s, _ := b.start([]Service{sv}, Options{
		BackoffMin: 10 * time.Millisecond, BackoffMax: time.Second, StableAfter: 50 * time.Millisecond,
	})
	waitFor(t, "3 restarts", func() bool { return s.Status()["steady"].Restarts >= 3 })
	out := b.console.String()
	if !strings.Contains(out, "restart 3 in 10ms") || strings.Contains(out, "in 20ms") {
		t.Errorf("backoff not reset after stable runs:\n%s", out)
	}
}

func TestReapsOrphans(t *testing.T) {
	// Stand in for PID 1: orphans of our descendants come back to us.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	b := newBench(t)
	sv := b.svc("parent", "orphan")
	sv.Oneshot = true
	s, _ := b.start([]Service{sv}, Options{})
	var pid int
	waitFor(t, "grandchild pid", func() bool {
		for _, l := range s.Lines("parent") {
			if p, ok := strings.CutPrefix(l, "grandchild "); ok {
				pid, _ = strconv.Atoi(p)
				return true
			}
		}
		return false
	})
	waitFor(t, "parent stopped", func() bool { return s.Status()["parent"].State == fact.StateStopped })
	// The grandchild exits after 200ms; reaped, its /proc entry goes away.
	// Unreaped it would stay a zombie.
	waitFor(t, fmt.Sprintf("orphan %d reaped", pid), func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
}

func TestKillAfterGrace(t *testing.T) {
	b := newBench(t)
	s, stop := b.start([]Service{b.svc("stubborn", "stubborn")}, Options{Grace: 200 * time.Millisecond})
	waitFor(t, "ready", func() bool { return s.Status()["stubborn"].State == fact.StateReady })
	t0 := time.Now()
	stop()
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("shutdown took %s, less than the grace period", d)
	}
	st := s.Status()["stubborn"]
	if st.LastExit != "signal SIGKILL" || st.State != fact.StateStopped {
		t.Errorf("after shutdown: %+v", st)
	}
	if !strings.Contains(b.console.String(), "supervisor: stubborn did not stop within 200ms: killing it") {
		t.Errorf("console:\n%s", b.console.String())
	}
}

func TestOneshot(t *testing.T) {
	b := newBench(t)
	one := b.svc("once", "sleep")
	one.Oneshot = true
	s, _ := b.start([]Service{one, b.svc("next", "daemon", "once")}, Options{})
	waitFor(t, "next ready", func() bool { return s.Status()["next"].State == fact.StateReady })
	if st := s.Status()["once"]; st.State != fact.StateStopped || st.Restarts != 0 {
		t.Errorf("oneshot: %+v", st)
	}
}
