package workloads

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/runtime/runtimetest"
)

// startModule runs the module on a fact folder holding the storage and
// hardware facts, and returns the fact folder and an HTTP client of its
// socket.
func startModule(t *testing.T, cache *fact.Cache) (fact.Folder, *http.Client, *runtimetest.Fake) {
	t.Helper()
	facts := fact.Folder(t.TempDir())
	if err := facts.Write(fact.NameStorage, fact.Storage{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if err := facts.Write(fact.NameHardware, fact.Hardware{CRU: 2, MRU: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	rt := runtimetest.New()
	cfg := config.Default()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), facts, func(string, *slog.Logger) (runtime.Runtime, error) { return rt, nil })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := facts.Wait(wctx, fact.NameWorkloads, nil); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(string(facts), SocketName)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return facts, hc, rt
}

// TestModule: the module becomes ready with its fact (capacity from the
// hardware fact and the cache file system, minus the reserve), prepares the
// runtime with what workloads may use, and serves the API on its socket,
// signed requests only.
func TestModule(t *testing.T) {
	facts, hc, rt := startModule(t, &fact.Cache{Mount: t.TempDir()})
	var f fact.Workloads
	if err := facts.Read(fact.NameWorkloads, &f); err != nil {
		t.Fatal(err)
	}
	c := f.Capacity
	if c.Total.MilliCPU != 2000 || c.Total.Memory != 1<<30 || c.Total.Disk == 0 || c.Free.MilliCPU != 1500 || c.Free.Memory != 768<<20 || f.Error != "" {
		t.Fatalf("fact %+v", f)
	}
	if tot := rt.Total(); tot == nil || tot.MilliCPU != 1500 || tot.Memory != 768<<20 {
		t.Fatalf("runtime set up with %+v; want what is free", tot)
	}
	resp, err := hc.Get("http://node" + deployment.Path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("an unsigned request on the socket: %d %s", resp.StatusCode, b)
	}
}

// TestModuleWithoutCache: a node without a cache disk is ready, says why
// it takes no deployments, and answers 503.
func TestModuleWithoutCache(t *testing.T) {
	facts, hc, _ := startModule(t, nil)
	var f fact.Workloads
	facts.Read(fact.NameWorkloads, &f)
	if !strings.Contains(f.Error, "no cache disk") {
		t.Fatalf("fact error %q", f.Error)
	}
	resp, err := hc.Post("http://node"+deployment.Path, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("deploy without a cache disk: %d", resp.StatusCode)
	}
}
