package console

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// TestForwardDeployments: the status server hands /api/v1/deployments/...
// to the socket the workloads fact names exactly as it came — method,
// path, query, signature headers, body — and streams the answer; anything
// else under /api stays unserved, and without the module the answer is
// 503.
func TestForwardDeployments(t *testing.T) {
	dir := fixture(t)
	srv := httptest.NewServer(Handler(dir))
	defer srv.Close()

	if code, body := get(t, srv.URL+"/api/v1/deployments"); code != 503 || !strings.Contains(body, "workloads module") {
		t.Fatalf("before the module: %d %s", code, body)
	}

	sock := filepath.Join(dir, "workloads.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Auth")+" "+r.Header.Get("X-Auth-Strict")+" "+string(b)+"\n")
		w.(http.Flusher).Flush()
		if r.URL.Query().Get("follow") == "1" {
			<-release
			io.WriteString(w, "later\n")
		}
	})}
	go backend.Serve(ln)
	defer backend.Close()
	if err := fact.Folder(dir).Write(fact.NameWorkloads, fact.Workloads{Socket: sock}); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/deployments/web%2Fx?purge=1&a=b", strings.NewReader(`{"name":"web"}`))
	req.Header.Set("X-Auth", "challenge:sig")
	req.Header.Set("X-Auth-Strict", "nonce:sig2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "POST /api/v1/deployments/web%2Fx?purge=1&a=b challenge:sig nonce:sig2 {\"name\":\"web\"}\n"; string(b) != want {
		t.Fatalf("forwarded as\n%q\nwant\n%q", b, want)
	}

	resp, err = http.Get(srv.URL + "/api/v1/deployments/web/logs/web?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		first <- l
	}()
	select {
	case l := <-first:
		if !strings.HasPrefix(l, "GET /api/v1/deployments/web/logs/web?follow=1") {
			t.Fatalf("first streamed line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first line did not stream before the answer ended")
	}
	close(release)

	if code, _ := get(t, srv.URL+"/api/v1/other"); code != 404 {
		t.Fatalf("/api/v1/other: %d; want 404, not forwarded", code)
	}
	if code, _ := get(t, srv.URL+"/status"); code != 200 {
		t.Fatalf("/status: %d", code)
	}
}

// TestScreenShowsWorkloads: the screen and the serial block say what
// workloads do and what capacity is free.
func TestScreenShowsWorkloads(t *testing.T) {
	dir := fixture(t)
	f := fact.Workloads{
		Capacity: fact.Capacity{Free: fact.Resources{MilliCPU: 1500, Memory: 768 << 20, Disk: 6 << 30}},
		Workloads: []fact.WorkloadState{
			{Owner: 1, Deployment: "web", Workload: "web", State: fact.WorkloadRunning},
			{Owner: 1, Deployment: "web", Workload: "db", State: fact.WorkloadRestarting, Restarts: 2},
		},
	}
	if err := fact.Folder(dir).Write(fact.NameWorkloads, f); err != nil {
		t.Fatal(err)
	}
	s := load(dir)
	want := "1 running, 1 restarting; free 1.5 CPU, 768 MiB memory, 6.0 GiB disk"
	if screen := strings.Join(s.lines(), "\n"); !strings.Contains(screen, "Workloads  : "+want) {
		t.Fatalf("screen:\n%s\nwant a line with %q", screen, want)
	}
	if serial := strings.Join(s.serial(), "\n"); !strings.Contains(serial, "status: workloads "+want) {
		t.Fatalf("serial:\n%s", serial)
	}
}
