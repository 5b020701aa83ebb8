package runner

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/container"
	"github.com/gridnode/gridnode/workload/container/containertest"
	"github.com/gridnode/gridnode/workload/netplumb"
	wlruntime "github.com/gridnode/gridnode/workload/runtime"
)

func TestMain(m *testing.M) {
	code := m.Run()
	containertest.Cleanup()
	os.Exit(code)
}

// A workload through the whole contract, in a node namespace of the test's
// own: its network, a published port answered by a real container, its
// output, its DNS, its exit, and nothing left after Delete and Detach.
func TestRuntimeContract(t *testing.T) {
	need.Root(t, "containers and network namespaces")
	layer := containertest.Layer(t)
	helper := containertest.Helper(t)
	nodeCh := make(chan netns.NsHandle)
	go func() {
		runtime.LockOSThread() // this thread ends in the new namespace
		ns, err := netns.New()
		if err != nil {
			t.Error(err)
		}
		nodeCh <- ns
	}()
	node := <-nodeCh
	defer node.Close()

	dir := containertest.Dir(t)
	cg := containertest.RunnerCgroup
	r, err := New(Options{Dir: dir, Helper: helper, NoModules: true, Cgroup: cg, Node: node, Facts: fact.Folder(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	defer r.net.Teardown()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.Setup(ctx, wlruntime.Limits{MilliCPU: 1000, Memory: 512 << 20, PIDs: 1000}); err != nil {
		t.Fatal(err)
	}
	info, err := r.AttachNetwork(ctx, wlruntime.Network{Deployment: "t1-web", Owner: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Whatever fails below, nothing stays mounted (both are idempotent).
	defer r.DetachNetwork(ctx, "t1-web")
	defer r.Delete(ctx, "t1-web.web.g1")
	if err := r.Publish(ctx, "t1-web", []wlruntime.Port{{Node: 8080, Container: 80, Protocol: "tcp"}}); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	os.Mkdir(vol, 0o755)
	var out testutil.SyncBuffer
	spec := wlruntime.Spec{
		ID: "t1-web.web.g1", Deployment: "t1-web", Owner: 1, Workload: "web", Generation: 1,
		RootFS: []string{layer}, Hostname: "web", Env: []string{"PATH=/bin"},
		Args: []string{"sh", "-c", `cat /etc/resolv.conf; ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; ` +
			`echo kept > /data/file && echo "volume written"; echo "hello from $(hostname)" | nc -l -p 80; echo served`},
		IDs:     wlruntime.IDRange{Base: container.FirstHostID + 9*container.RangeSize, Size: container.RangeSize},
		Limits:  wlruntime.Limits{MilliCPU: 500, Memory: 64 << 20, PIDs: 32, Disk: 32 << 20},
		Volumes: []wlruntime.Volume{{Name: "data", Source: vol, Target: "/data"}},
		Output:  &out,
	}
	if _, err := r.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	// Until a connection to its port, the instance runs.
	uid := strconv.Itoa(int(spec.IDs.Base))
	for what, n := range found(t, r, spec.ID, uid) {
		if n == 0 {
			t.Errorf("Find shows no %s of the running instance", what)
		}
	}
	// The published port, from the node itself: the container answers
	// once its nc listens.
	var page string
	deadline := time.Now().Add(30 * time.Second)
	for page == "" && time.Now().Before(deadline) {
		page, _ = fetch(node, r.net.Gateway().String()+":8080")
		if page == "" {
			time.Sleep(100 * time.Millisecond) // polling a port that opens once nc runs
		}
	}
	if page != "hello from web\n" {
		t.Errorf("published port answered %q", page)
	}
	ex, err := r.Wait(ctx, spec.ID)
	if err != nil || ex.Code != 0 {
		t.Errorf("exit %+v, %v", ex, err)
	}
	o := out.String()
	for _, want := range []string{"nameserver " + r.net.Gateway().String(), "inet " + info.Address, "volume written", "served"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	if b, err := os.ReadFile(filepath.Join(vol, "file")); err != nil || string(b) != "kept\n" {
		t.Errorf("volume file: %q %v", b, err)
	}
	inv, err := r.List(ctx)
	if err != nil || len(inv.Instances) != 1 || len(inv.Networks) != 1 {
		t.Errorf("inventory %+v, %v", inv, err)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if again, err := r.Wait(ctx, spec.ID); err != nil || again != ex {
		t.Errorf("Wait after Delete: %+v %v, want %+v", again, err, ex)
	}
	if err := r.Delete(ctx, spec.ID); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	if err := r.DetachNetwork(ctx, "t1-web"); err != nil {
		t.Fatal(err)
	}
	if inv, _ := r.List(ctx); len(inv.Instances)+len(inv.Networks) != 0 {
		t.Errorf("left after delete and detach: %+v", inv)
	}
	for what, n := range found(t, r, spec.ID, uid) {
		if n != 0 {
			t.Errorf("Find shows %d %s left after delete and detach", n, what)
		}
	}
}

// found counts what Find shows of instance id (whose processes run as
// uid on the node) and of its deployment t1-web: other tests on the machine
// may run containers of their own at the same time.
func found(t *testing.T, r *Runtime, id, uid string) map[string]int {
	t.Helper()
	f, err := r.Find(context.Background())
	if err != nil {
		t.Errorf("Find: %v", err)
	}
	n := map[string]int{"processes": 0}
	for _, p := range f.Processes {
		if strings.Fields(p)[1] == uid {
			n["processes"]++
		}
	}
	count := func(what string, l []string, sub string) {
		n[what] = 0
		for _, e := range l {
			if strings.Contains(e, sub) {
				n[what]++
			}
		}
	}
	count("cgroups", f.Cgroups, id)
	count("namespaces", f.Namespaces, "t1-web")
	count("links", f.Links, "")
	count("rules", f.Rules, "dnat to 10.249.0.")
	count("mounts", f.Mounts, id)
	count("root file systems", f.RootFS, id)
	return n
}

func fetch(ns netns.NsHandle, addr string) (string, error) {
	var b []byte
	err := netplumb.InNamespace(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err = io.ReadAll(c)
		return err
	})
	return string(b), err
}
