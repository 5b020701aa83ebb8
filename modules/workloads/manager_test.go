package workloads

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/image/imagetest"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/runtime/runtimetest"
	"github.com/gridnode/gridnode/workload/state"
)

const gib = 1 << 30

// env is a Manager on temporary folders with the in-memory runtime, a
// registry on loopback, and the restart waits recorded instead of waited.
type env struct {
	t      *testing.T
	dir    string
	reg    *imagetest.Registry
	rt     *runtimetest.Fake
	m      *Manager
	cancel context.CancelFunc

	mu    sync.Mutex
	waits []time.Duration
}

func newEnv(t *testing.T, reg *imagetest.Registry, dir string, tune ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: dir, reg: reg, rt: runtimetest.New()}
	images, err := image.Open(filepath.Join(dir, "images"), image.Options{Backoff: backoff.Policy{Base: time.Millisecond, Max: time.Millisecond}, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Dir:       dir,
		Total:     fact.Resources{MilliCPU: 4000, Memory: 4 * gib, Disk: 64 * gib, GPUs: 1},
		GPUs:      []fact.GPU{{Address: "0000:01:00.0", Vendor: "ATI", Model: "Rage 128"}},
		NodePorts: []string{"9100/tcp"},
		Grace:     20 * time.Millisecond,
		Restart:   backoff.Policy{Base: time.Second, Max: 8 * time.Second},
		Facts:     fact.Folder(filepath.Join(dir, "facts")),
		wait: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.waits = append(e.waits, d)
			e.mu.Unlock()
			return ctx.Err()
		},
	}
	for _, f := range tune {
		f(&cfg)
	}
	e.m = NewManager(cfg, e.rt, images, st)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	t.Cleanup(func() { cancel(); e.m.Wait() })
	if err := e.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// stop ends the module (a shutdown) and waits until every workload is
// stopped.
func (e *env) stop() {
	e.cancel()
	e.m.Wait()
}

func (e *env) recordedWaits() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.waits)
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// status waits until owner's deployment satisfies cond and returns it.
func (e *env) status(owner uint64, name, what string, cond func(deployment.Status) bool) deployment.Status {
	e.t.Helper()
	var st deployment.Status
	waitFor(e.t, what, func() bool {
		var ok bool
		st, ok = e.m.Status(owner, name)
		return ok && cond(st)
	})
	return st
}

func running(st deployment.Status) bool { return st.State == deployment.StateRunning }

// appImage pushes a small image with entrypoint /bin/app and returns its
// tag reference.
func appImage(t *testing.T, reg *imagetest.Registry, repo string) (tag, pinned string) {
	img := imagetest.Image(t, v1.Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"PATH=/bin", "MODE=image"}},
		imagetest.Layer(t, map[string]string{"bin/": "", "bin/app": "#!app " + repo}))
	return reg.Push(t, repo+":1", img)
}

func web(image string, tune ...func(*deployment.Workload)) deployment.Deployment {
	w := deployment.Workload{
		Name: "web", Image: image, Env: map[string]string{"MODE": "deployed", "GREETING": "hello"},
		CPU: 500, Memory: 64 << 20, Ports: []deployment.Port{{Node: 8080, Container: 80, Protocol: "tcp"}},
		Volumes: []deployment.Volume{{Name: "data", Path: "/data", Size: 1 << 20}},
	}
	for _, f := range tune {
		f(&w)
	}
	d := deployment.Deployment{Name: "web", Workloads: []deployment.Workload{w}}
	d.Normalize()
	return d
}

// TestDeployAndRestart: a deployment with a tag is pinned by the node,
// pulled, and run with the image's entrypoint, the environments merged,
// its limits, volume and ports; a crash restarts it with a growing
// backoff, counted in the status and the fact; an OOM kill says so.
func TestDeployAndRestart(t *testing.T) {
	reg := imagetest.Start(t)
	tag, pinned := appImage(t, reg, "web")
	e := newEnv(t, reg, t.TempDir())
	if _, err := e.m.Deploy(7, web(tag)); err != nil {
		t.Fatal(err)
	}
	st := e.status(7, "web", "running", running)
	w := st.Workloads[0]
	if st.Generation != 1 || w.Digest != pinned[strings.Index(pinned, "@")+1:] || st.Address == "" {
		t.Fatalf("status %+v; want generation 1, the pinned digest, an address", st)
	}
	const id = "t7-web.web.g1"
	spec, ok := e.rt.Spec(id)
	if !ok {
		t.Fatalf("no instance %s; running %v", id, e.rt.Running())
	}
	if !slices.Equal(spec.Args, []string{"/bin/app", "--serve"}) || !slices.Equal(spec.Env, []string{"PATH=/bin", "MODE=deployed", "GREETING=hello"}) {
		t.Fatalf("args %q env %q", spec.Args, spec.Env)
	}
	if spec.Limits.MilliCPU != 500 || spec.Limits.Memory != 64<<20 || spec.IDs != (runtime.IDRange{Base: state.IDBase, Size: state.IDSize}) {
		t.Fatalf("limits %+v ids %+v", spec.Limits, spec.IDs)
	}
	if b, err := os.ReadFile(filepath.Join(spec.RootFS[0], "bin/app")); err != nil || string(b) != "#!app web" {
		t.Fatalf("root file system: %q, %v", b, err)
	}
	if fi, err := os.Stat(spec.Volumes[0].Source); err != nil || !fi.IsDir() || spec.Volumes[0].Target != "/data" {
		t.Fatalf("volume %+v: %v", spec.Volumes, err)
	}
	if p := e.rt.Ports("t7-web"); len(p) != 1 || p[0] != (runtime.Port{Node: 8080, Container: 80, Protocol: "tcp"}) {
		t.Fatalf("published %v", p)
	}

	for i := 1; i <= 3; i++ {
		if !e.rt.Exit(id, runtime.Exit{Code: 1}) {
			t.Fatalf("crash %d: the instance was not running", i)
		}
		st = e.status(7, "web", "restart", func(s deployment.Status) bool { return s.Workloads[0].Restarts == i && running(s) })
	}
	if got, want := e.recordedWaits(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("restart waits %v; want the backoff %v", got, want)
	}
	if st.Workloads[0].LastExit != "exit 1" {
		t.Fatalf("last exit %q", st.Workloads[0].LastExit)
	}
	e.rt.Exit(id, runtime.Exit{Code: 137, Signal: syscall.SIGKILL, OOMKilled: true})
	st = e.status(7, "web", "restart after OOM", func(s deployment.Status) bool { return s.Workloads[0].Restarts == 4 && running(s) })
	if st.Workloads[0].LastExit != "out of memory (limit 64Mi)" {
		t.Fatalf("last exit after an OOM kill: %q", st.Workloads[0].LastExit)
	}
	waitFor(t, "the fact", func() bool {
		var f fact.Workloads
		err := e.m.cfg.Facts.Read(fact.NameWorkloads, &f)
		return err == nil && len(f.Workloads) == 1 && f.Workloads[0].Restarts == 4 && f.Workloads[0].LastExit == "out of memory (limit 64Mi)" &&
			f.Capacity.Used.Memory == 64<<20 && f.Capacity.Free.Memory == 4*gib-4*gib/10-64<<20
	})
	log, err := e.m.Log(7, "web", "web")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := log.Tail(0)
	if !strings.Contains(string(b), "gridnode: t7-web.web.g1: exit 1") || !strings.Contains(string(b), "started t7-web.web.g1") {
		t.Fatalf("log:\n%s", b)
	}
}

// TestRestartPolicies: never and on-failure keep an ended workload ended
// where they say so.
func TestRestartPolicies(t *testing.T) {
	reg := imagetest.Start(t)
	tag, _ := appImage(t, reg, "job")
	e := newEnv(t, reg, t.TempDir())
	for _, c := range []struct {
		policy   string
		exit     runtime.Exit
		restarts bool
	}{
		{deployment.RestartNever, runtime.Exit{Code: 1}, false},
		{deployment.RestartOnFailure, runtime.Exit{Code: 0}, false},
		{deployment.RestartOnFailure, runtime.Exit{Code: 2}, true},
		{deployment.RestartOnFailure, runtime.Exit{Code: 143, Signal: syscall.SIGTERM}, true},
		{deployment.RestartAlways, runtime.Exit{Code: 0}, true},
	} {
		d := web(tag, func(w *deployment.Workload) { w.Restart, w.Ports, w.Volumes = c.policy, nil, nil })
		st, err := e.m.Deploy(8, d)
		if err != nil {
			t.Fatal(err)
		}
		e.status(8, "web", "running", func(s deployment.Status) bool { return s.Generation == st.Generation && running(s) })
		id := "t8-web.web.g" + string(rune('0'+st.Generation))
		e.rt.Exit(id, c.exit)
		got := e.status(8, "web", "ended", func(s deployment.Status) bool {
			w := s.Workloads[0]
			return w.LastExit != "" && (w.State == fact.WorkloadExited || w.Restarts == 1)
		})
		if restarted := got.Workloads[0].Restarts == 1; restarted != c.restarts {
			t.Errorf("%s after %+v: restarted %t; want %t", c.policy, c.exit, restarted, c.restarts)
		}
	}
}

// TestRedeploy: deploying a name that runs is a new generation: the old
// instance stops, the new one starts with the new file, the volume and id
// range stay.
func TestRedeploy(t *testing.T) {
	reg := imagetest.Start(t)
	tag, _ := appImage(t, reg, "web")
	e := newEnv(t, reg, t.TempDir())
	e.m.Deploy(7, web(tag))
	e.status(7, "web", "running", running)
	g1, _ := e.rt.Spec("t7-web.web.g1")
	if err := os.WriteFile(filepath.Join(g1.Volumes[0].Source, "kept"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := web(tag, func(w *deployment.Workload) { w.Env["GREETING"] = "again"; w.Ports[0].Node = 8081 })
	if _, err := e.m.Deploy(7, d2); err != nil {
		t.Fatal(err)
	}
	st := e.status(7, "web", "generation 2 running", func(s deployment.Status) bool { return s.Generation == 2 && running(s) })
	if run := e.rt.Running(); !slices.Equal(run, []string{"t7-web.web.g2"}) {
		t.Fatalf("running %v; want only generation 2", run)
	}
	g2, _ := e.rt.Spec("t7-web.web.g2")
	if !slices.Contains(g2.Env, "GREETING=again") || g2.IDs != g1.IDs || g2.Volumes[0].Source != g1.Volumes[0].Source {
		t.Fatalf("generation 2 spec %+v; want the new env, the same ids and volume", g2)
	}
	if b, err := os.ReadFile(filepath.Join(g2.Volumes[0].Source, "kept")); err != nil || string(b) != "data" {
		t.Fatalf("the volume after a redeploy: %q, %v", b, err)
	}
	if p := e.rt.Ports("t7-web"); len(p) != 1 || p[0].Node != 8081 {
		t.Fatalf("published after the redeploy: %v", p)
	}
	ev := strings.Join(e.rt.Events(), "\n")
	if i, j := strings.Index(ev, "delete t7-web.web.g1"), strings.Index(ev, "start t7-web.web.g2"); i < 0 || j < i {
		t.Fatalf("generation 1 was not stopped before generation 2 started:\n%s", ev)
	}
	if st.Workloads[0].Restarts != 0 {
		t.Fatalf("a new generation starts with no restarts: %+v", st.Workloads[0])
	}
}

// TestBootWithoutNetwork: after a shutdown (the module stops every
// workload) and with the registry gone, a new module on the same disk runs
// the stored deployment again from the stored state and cached image, and
// removes what a previous run left in the runtime.
func TestBootWithoutNetwork(t *testing.T) {
	reg := imagetest.Start(t)
	tag, _ := appImage(t, reg, "web")
	dir := t.TempDir()
	e := newEnv(t, reg, dir)
	e.m.Deploy(7, web(tag))
	e.status(7, "web", "running", running)
	e.stop()
	if r := e.rt.Running(); len(r) != 0 {
		t.Fatalf("after the module stopped, running %v", r)
	}
	if !slices.Contains(e.rt.Events(), "signal t7-web.web.g1 15") {
		t.Fatalf("the workload was not asked to stop with SIGTERM: %v", e.rt.Events())
	}
	reg.Close()

	rt := runtimetest.New()
	rt.Add(runtime.Spec{ID: "t7-web.web.g1", Deployment: "t7-web"}) // left by a crashed module
	e2 := &env{t: t}
	images, _ := image.Open(filepath.Join(dir, "images"), image.Options{})
	st, _ := state.Open(filepath.Join(dir, "state"))
	e2.rt = rt
	e2.m = NewManager(Config{Dir: dir, Total: e.m.cfg.Total}, rt, images, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); e2.m.Wait() }()
	if err := e2.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e2.status(7, "web", "running after the reboot", running)
	ev := rt.Events()
	if ev[0] != "delete t7-web.web.g1" || ev[1] != "detach t7-web" {
		t.Fatalf("leftovers not removed first: %v", ev)
	}
}

// TestAdmission: over capacity, a port taken by another deployment or by
// the node, and GPUs the node lacks are refused with 409 and why.
func TestAdmission(t *testing.T) {
	reg := imagetest.Start(t)
	tag, _ := appImage(t, reg, "web")
	e := newEnv(t, reg, t.TempDir())
	status := func(err error) int {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae.status
		}
		return 0
	}
	_, err := e.m.Deploy(7, web(tag, func(w *deployment.Workload) { w.Memory = 4 * gib }))
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusConflict || ae.need.Memory != 4*gib || ae.free.Memory != 4*gib-4*gib/10 {
		t.Fatalf("4 GiB on a 4 GiB node: %v; want 409 with the numbers", err)
	}
	if _, err := e.m.Deploy(7, web(tag)); err != nil {
		t.Fatal(err)
	}
	other := web(tag)
	other.Name = "other"
	if err := func() error { _, err := e.m.Deploy(8, other); return err }(); status(err) != 409 || !strings.Contains(err.Error(), "port 8080/tcp: deployment t7-web publishes it already") {
		t.Fatalf("a taken port: %v", err)
	}
	other.Workloads[0].Ports[0].Node = 9100
	if err := func() error { _, err := e.m.Deploy(8, other); return err }(); status(err) != 409 {
		t.Fatalf("the node's port: %v", err)
	}
	other.Workloads[0].Ports, other.Workloads[0].GPUs = nil, 2
	if err := func() error { _, err := e.m.Deploy(8, other); return err }(); status(err) != 409 || !strings.Contains(err.Error(), "gpus: needs 2, 1 free") {
		t.Fatalf("2 GPUs on a node with 1: %v", err)
	}
	other.Workloads[0].GPUs = 1
	if _, err := e.m.Deploy(8, other); err != nil {
		t.Fatalf("1 GPU: %v", err)
	}
	// Redeploying a name counts its old generation out.
	if _, err := e.m.Deploy(7, web(tag, func(w *deployment.Workload) { w.Memory = 3 * gib })); err != nil {
		t.Fatalf("a redeploy that fits once the old generation is out: %v", err)
	}
}

// TestUndeploy: undeploy stops the instance, removes the network, the
// stored deployment and its logs, keeps the volume unless purged, and
// collects the image nothing uses.
func TestUndeploy(t *testing.T) {
	reg := imagetest.Start(t)
	tag, pinned := appImage(t, reg, "web")
	dir := t.TempDir()
	e := newEnv(t, reg, dir)
	e.m.Deploy(7, web(tag))
	e.status(7, "web", "running", running)
	vol := filepath.Join(dir, "volumes", "t7-web", "data")
	if _, err := e.m.Undeploy(7, "web", false); err != nil {
		t.Fatal(err)
	}
	if r := e.rt.Running(); len(r) != 0 {
		t.Fatalf("running after undeploy: %v", r)
	}
	if inv, _ := e.rt.List(context.Background()); len(inv.Instances)+len(inv.Networks) != 0 {
		t.Fatalf("left in the runtime: %+v", inv)
	}
	if _, ok := e.m.Status(7, "web"); ok {
		t.Fatal("status after undeploy")
	}
	if _, err := e.m.state.Get("t7-web"); err == nil {
		t.Fatal("the stored deployment is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "t7-web")); !os.IsNotExist(err) {
		t.Fatalf("logs after undeploy: %v", err)
	}
	if _, err := os.Stat(vol); err != nil {
		t.Fatalf("the volume after undeploy without purge: %v", err)
	}
	if _, err := e.m.images.Get(pinned); err == nil {
		t.Fatal("the image nothing uses was not collected")
	}
	if _, err := e.m.Undeploy(7, "web", false); err == nil {
		t.Fatal("undeploy of what is gone: no error")
	}

	e.m.Deploy(7, web(tag))
	e.status(7, "web", "running again", running)
	if _, err := e.m.Undeploy(7, "web", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("the volume after --purge: %v", err)
	}
}

// TestPullFailure: an image that does not exist fails the deployment with
// the registry's reason, without retrying for ever.
func TestPullFailure(t *testing.T) {
	reg := imagetest.Start(t)
	e := newEnv(t, reg, t.TempDir())
	e.m.Deploy(7, web(reg.Host+"/nothing:1"))
	st := e.status(7, "web", "failed", func(s deployment.Status) bool { return s.State == deployment.StateFailed })
	reason, failed := st.Failed()
	if !failed || !strings.Contains(reason, "not found") {
		t.Fatalf("reason %q; want it to say not found", reason)
	}
}

// TestStopIgnoringTerm: a workload that ignores SIGTERM is killed after
// the grace period.
func TestStopIgnoringTerm(t *testing.T) {
	reg := imagetest.Start(t)
	tag, _ := appImage(t, reg, "web")
	e := newEnv(t, reg, t.TempDir())
	e.rt.IgnoreTerm = true
	e.m.Deploy(7, web(tag))
	e.status(7, "web", "running", running)
	if _, err := e.m.Undeploy(7, "web", false); err != nil {
		t.Fatal(err)
	}
	ev := e.rt.Events()
	if !slices.Contains(ev, "signal t7-web.web.g1 15") || !slices.Contains(ev, "signal t7-web.web.g1 9") {
		t.Fatalf("want SIGTERM then SIGKILL: %v", ev)
	}
}
