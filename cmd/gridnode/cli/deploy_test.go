package cli

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/modules/workloads"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/auth"
	"github.com/gridnode/gridnode/workload/auth/authtest"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/image/imagetest"
	"github.com/gridnode/gridnode/workload/nodeclient"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/runtime/runtimetest"
	"github.com/gridnode/gridnode/workload/state"
)

// node is the workloads module's API over the in-memory runtime, with the
// real authenticator, image store and registrar.
type testNode struct {
	url string
	rt  *runtimetest.Fake
	g   *authtest.Grid
	reg *imagetest.Registry
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	nodeclient.Every = 10 * time.Millisecond
	n := &testNode{rt: runtimetest.New(), g: authtest.Start(t), reg: imagetest.Start(t)}
	dir := t.TempDir()
	images, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	m := workloads.NewManager(workloads.Config{Dir: dir, Total: fact.Resources{MilliCPU: 4000, Memory: 1 << 30, Disk: 8 << 30}}, n.rt, images, st)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); m.Wait() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rc, _ := client.New(n.g.URL, nil, client.Options{})
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Farm: n.g.Farm, Registrar: rc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(a))
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

// keyFile saves tw's key as gridnode farm keygen does.
func keyFile(t *testing.T, tw authtest.Twin) string {
	p := filepath.Join(t.TempDir(), "farmer.key")
	if err := farm.SaveKey(p, tw.Key, false); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeployCommands: the farmer deploys a file with a tag (pinned by the
// CLI), lists it, reads its log, and undeploys it; a deployment that
// cannot run and one over capacity exit non-zero with the node's reason.
func TestDeployCommands(t *testing.T) {
	n := startNode(t)
	img := imagetest.Image(t, v1.Config{Entrypoint: []string{"/bin/app"}}, imagetest.Layer(t, map[string]string{"bin/app": "app"}))
	tag, pinned := n.reg.Push(t, "web:1", img)
	file := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(file, []byte("name: web\nworkloads:\n  - name: web\n    image: "+tag+"\n    memory: 64Mi\n    ports: [\"8080:80\"]\n"), 0o644)
	flags := []string{"--node", n.url, "--key", keyFile(t, n.g.Farmer), "--registrar", n.g.URL}

	out, errOut, code := farmRun(t, "", append([]string{"deploy", file}, flags...)...)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "web: "+pinned) || !strings.Contains(out, "running") || !strings.Contains(out, "8080:80/tcp") {
		t.Fatalf("deploy printed\n%s%s\nwant the pinned digest and a running row", errOut, out)
	}
	spec, ok := n.rt.Spec("t" + strconv.FormatUint(n.g.Farmer.ID, 10) + "-web.web.g1")
	if !ok || spec.Args[0] != "/bin/app" {
		t.Fatalf("the node runs %+v", spec)
	}

	out, _, code = farmRun(t, "", append([]string{"deployments"}, flags...)...)
	if code != 0 || !strings.Contains(out, "DEPLOYMENT") || !strings.Contains(out, "web  ") {
		t.Fatalf("deployments: %d\n%s", code, out)
	}
	out, errOut, code = farmRun(t, "", append([]string{"logs", "web/web"}, flags...)...)
	if code != 0 || !strings.Contains(out, "started t") {
		t.Fatalf("logs: %d\n%s%s", code, out, errOut)
	}

	// A file whose image does not exist: the node's reason, exit 1.
	os.WriteFile(file, []byte("name: bad\nworkloads:\n  - name: w\n    image: "+n.reg.Host+"/nothing@sha256:"+strings.Repeat("0", 64)+"\n"), 0o644)
	_, errOut, code = farmRun(t, "", append([]string{"deploy", file}, flags...)...)
	if code == 0 || !strings.Contains(errOut, "deployment bad failed") || !strings.Contains(errOut, "not found") {
		t.Fatalf("deploy of a missing image: exit %d\n%s", code, errOut)
	}
	// Over capacity: 409 and the numbers.
	os.WriteFile(file, []byte("name: big\nworkloads:\n  - name: w\n    image: "+pinned+"\n    memory: 2Gi\n"), 0o644)
	_, errOut, code = farmRun(t, "", append([]string{"deploy", file}, flags...)...)
	if code == 0 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "asked:") || !strings.Contains(errOut, "2Gi memory") {
		t.Fatalf("deploy over capacity: exit %d\n%s", code, errOut)
	}
	// A workload that crashes as it starts: the command says so.
	os.WriteFile(file, []byte("name: crash\nworkloads:\n  - name: w\n    image: "+pinned+"\n    cpu: 0.1\n"), 0o644)
	crashID := "t" + strconv.FormatUint(n.g.Farmer.ID, 10) + "-crash.w.g1"
	go func() {
		for id := range n.rt.Started() {
			if id == crashID {
				n.rt.Exit(id, runtime.Exit{Code: 2})
				return
			}
		}
	}()
	_, errOut, code = farmRun(t, "", append([]string{"deploy", file}, flags...)...)
	if code == 0 || !strings.Contains(errOut, "workload crash/w does not stay up: exit 2; restarting in") || !strings.Contains(errOut, "gridnode logs crash/w") {
		t.Fatalf("deploy of a crashing workload: exit %d\n%s", code, errOut)
	}
	// Alice is not allowed on this node.
	alice := []string{"--node", n.url, "--key", keyFile(t, n.g.Alice), "--registrar", n.g.URL}
	_, errOut, code = farmRun(t, "", append([]string{"deploy", file}, alice...)...)
	if code == 0 || !strings.Contains(errOut, "403") {
		t.Fatalf("deploy by a twin not allowed: exit %d\n%s", code, errOut)
	}

	out, errOut, code = farmRun(t, "", append([]string{"undeploy", "web", "--purge"}, flags...)...)
	if code != 0 || !strings.Contains(out, "web: generation 1 undeployed, its volumes removed") {
		t.Fatalf("undeploy: %d\n%s%s", code, out, errOut)
	}
	if r := n.rt.Running(); len(r) != 0 {
		t.Fatalf("running after undeploy: %v", r)
	}
}

// TestNodeURL: a node is named as people type it; the port defaults to
// the status port.
func TestNodeURL(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.5": "http://10.0.0.5:9100", "http://node:8000/": "http://node:8000", "https://[::1]": "https://[::1]:9100"} {
		if got, err := nodeclient.NodeURL(in); err != nil || got != want {
			t.Errorf("NodeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://x/api"} {
		if _, err := nodeclient.NodeURL(bad); err == nil {
			t.Errorf("NodeURL(%q) accepted it", bad)
		}
	}
}
