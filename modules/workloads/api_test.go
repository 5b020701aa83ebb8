package workloads

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/workload/auth"
	"github.com/gridnode/gridnode/workload/auth/authtest"
	"github.com/gridnode/gridnode/workload/image/imagetest"
	"github.com/gridnode/gridnode/workload/runtime"
)

// apiEnv is the API over a Manager, checked by the real authenticator
// against the project's registrar.
type apiEnv struct {
	*env
	g   *authtest.Grid
	url string
}

func newAPI(t *testing.T) *apiEnv {
	reg := imagetest.Start(t)
	g := authtest.Start(t)
	e := newEnv(t, reg, t.TempDir())
	c, _ := client.New(g.URL, nil, client.Options{})
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Farm: g.Farm, Deployers: []string{strconv.FormatUint(g.Alice.ID, 10)}, Registrar: c})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.m.Handler(a))
	t.Cleanup(srv.Close)
	return &apiEnv{env: e, g: g, url: srv.URL}
}

// signed is a request signed by tw (nil: unsigned).
func (a *apiEnv) signed(method, path string, body []byte, tw *authtest.Twin) *http.Request {
	req, err := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if tw != nil {
		authtest.Sign(req, *tw, body, time.Now())
	}
	return req
}

func (a *apiEnv) send(req *http.Request, body []byte) (int, []byte) {
	a.t.Helper()
	req.Body, req.ContentLength, req.GetBody = io.NopCloser(bytes.NewReader(body)), int64(len(body)), nil
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *apiEnv) do(method, path string, body []byte, tw *authtest.Twin) (int, []byte) {
	a.t.Helper()
	return a.send(a.signed(method, path, body, tw), body)
}

// TestAPI: unsigned, badly signed, replayed and not-allowed requests get
// 401 or 403 and change nothing; over capacity is 409 with the numbers; a
// good deployment is 202 and readable by its owner only; the farmer lists
// everything; undeploy removes it.
func TestAPI(t *testing.T) {
	a := newAPI(t)
	tag, _ := appImage(t, a.reg, "web")
	body, err := web(tag).Canonical()
	if err != nil {
		t.Fatal(err)
	}
	farmer, alice, bob := &a.g.Farmer, &a.g.Alice, &a.g.Bob
	p := deployment.Path

	if code, b := a.do("POST", p, body, nil); code != 401 || !strings.Contains(string(b), "missing X-Auth") {
		t.Fatalf("unsigned: %d %s", code, b)
	}
	bad := a.signed("POST", p, []byte(`{"name":"x"}`), farmer)
	if code, b := a.send(bad, body); code != 401 || !strings.Contains(string(b), "strict signature verification failed") {
		t.Fatalf("signed over another body: %d %s", code, b)
	}
	if code, b := a.do("POST", p, body, bob); code != 403 || !strings.Contains(string(b), "may not deploy") {
		t.Fatalf("a twin not allowed: %d %s", code, b)
	}
	if l := a.m.List(0, true); len(l) != 0 {
		t.Fatalf("refused requests deployed %v", l)
	}

	good := a.signed("POST", p, body, farmer)
	replay := good.Clone(context.Background())
	code, b := a.send(good, body)
	var st deployment.Status
	if code != 202 || json.Unmarshal(b, &st) != nil || st.Name != "web" || st.Generation != 1 || st.Owner != farmer.ID {
		t.Fatalf("deploy: %d %s", code, b)
	}
	if code, b := a.send(replay, body); code != 401 || !strings.Contains(string(b), "replayed") {
		t.Fatalf("replayed deploy: %d %s", code, b)
	}
	a.status(farmer.ID, "web", "running", running)
	if s, _ := a.m.Status(farmer.ID, "web"); s.Generation != 1 {
		t.Fatalf("the replay made generation %d", s.Generation)
	}

	huge, _ := web(tag, func(w *deployment.Workload) { w.Memory = 4 * gib; w.Ports = nil }).Canonical()
	code, b = a.do("POST", p, huge, alice)
	var refusal deployment.Error
	if code != 409 || json.Unmarshal(b, &refusal) != nil || refusal.Need == nil || refusal.Need.Memory != 4*gib || refusal.Free.Memory == 0 {
		t.Fatalf("over capacity: %d %s; want 409 with need and free", code, b)
	}
	if code, b := a.do("POST", p, []byte(`{"name":"x","workloads":[{"name":"w","image":"r/x:1","restart":"sometimes"}]}`), alice); code != 400 || !strings.Contains(string(b), "workloads[0].restart") {
		t.Fatalf("a bad deployment: %d %s", code, b)
	}

	own, _ := web(tag, func(w *deployment.Workload) { w.Ports = nil }).Canonical()
	if code, b := a.do("POST", p, own, alice); code != 202 {
		t.Fatalf("Alice, allowed by gridnode.deployers: %d %s", code, b)
	}
	if code, b := a.do("GET", deployment.PathOf("web"), nil, farmer); code != 200 || !strings.Contains(string(b), `"owner":`+strconv.FormatUint(farmer.ID, 10)) {
		t.Fatalf("the farmer reads his deployment: %d %s", code, b)
	}
	if code, _ := a.do("GET", deployment.PathOf("web"), nil, nil); code != 401 {
		t.Fatalf("an unsigned read: %d", code)
	}
	var list []deployment.Status
	code, b = a.do("GET", p, nil, alice)
	if json.Unmarshal(b, &list); code != 200 || len(list) != 1 || list[0].Owner != alice.ID {
		t.Fatalf("Alice's list: %d %s; want her deployment only", code, b)
	}
	code, b = a.do("GET", p, nil, farmer)
	if json.Unmarshal(b, &list); code != 200 || len(list) != 2 {
		t.Fatalf("the farmer's list: %d %s; want everything on the node", code, b)
	}
	if code, _ := a.do("DELETE", deployment.PathOf("nothing"), nil, alice); code != 404 {
		t.Fatalf("undeploy of nothing: %d", code)
	}
	if code, b := a.do("DELETE", deployment.PathOf("web")+"?purge=1", nil, farmer); code != 200 {
		t.Fatalf("undeploy: %d %s", code, b)
	}
	if code, _ := a.do("GET", deployment.PathOf("web"), nil, farmer); code != 404 {
		t.Fatalf("read after undeploy: %d", code)
	}
	if _, ok := a.m.Status(alice.ID, "web"); !ok {
		t.Fatal("the farmer's undeploy removed Alice's deployment of the same name")
	}
}

// TestLogsFollow: the log of a workload is there for its owner, and a
// follower sees what the workload writes next.
func TestLogsFollow(t *testing.T) {
	a := newAPI(t)
	tag, _ := appImage(t, a.reg, "web")
	body, _ := web(tag).Canonical()
	farmer := &a.g.Farmer
	if code, b := a.do("POST", deployment.Path, body, farmer); code != 202 {
		t.Fatalf("deploy: %d %s", code, b)
	}
	a.status(farmer.ID, "web", "running", running)
	code, b := a.do("GET", deployment.LogsPath("web", "web"), nil, farmer)
	if code != 200 || !strings.Contains(string(b), "started t"+strconv.FormatUint(farmer.ID, 10)+"-web.web.g1") {
		t.Fatalf("log: %d %q", code, b)
	}
	if code, _ := a.do("GET", deployment.LogsPath("web", "web"), nil, &a.g.Alice); code != 404 {
		t.Fatalf("someone else's log: %d; want 404", code)
	}

	req := a.signed("GET", deployment.LogsPath("web", "web")+"?follow=1&tail=1", nil, farmer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	id := "t" + strconv.FormatUint(farmer.ID, 10) + "-web.web.g1"
	a.rt.Exit(id, runtime.Exit{Code: 3})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the follow stream ended before the exit was logged")
			}
			if strings.Contains(l, id+": exit 3") {
				return
			}
		case <-deadline:
			t.Fatal("the follower did not see the workload's exit")
		}
	}
}
