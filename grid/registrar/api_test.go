package registrar

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// TestAPI is the conformance of every route and error case of
// shared/registrar-api.md, over each store.
func TestAPI(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			t.Run("accounts", func(t *testing.T) { testAccounts(t, newEnv(t, st, Config{})) })
			t.Run("auth", func(t *testing.T) { testAuth(t, newEnv(t, st, Config{})) })
			t.Run("farms", func(t *testing.T) { testFarms(t, newEnv(t, st, Config{})) })
			t.Run("nodes", func(t *testing.T) { testNodes(t, newEnv(t, st, Config{})) })
			t.Run("version", func(t *testing.T) { testVersion(t, st) })
			t.Run("robustness", func(t *testing.T) { testRobustness(t, newEnv(t, st, Config{MaxBody: 1024})) })
		})
	}
}

func testAccounts(t *testing.T, e *env) {
	k := newKey()
	req := api.NewAccount(k, time.Now())
	req.Relays = []string{"relay.example"}
	req.RMBEncKey = "enc"
	var a api.Account
	e.expect(201, "POST", "/api/v1/accounts", req, nil, &a)
	if a.TwinID == 0 || a.PublicKey != req.PublicKey || a.RMBEncKey != "enc" || len(a.Relays) != 1 || a.CreatedAt.IsZero() {
		t.Fatalf("created account = %+v", a)
	}
	e.expect(409, "POST", "/v1/accounts", api.NewAccount(k, time.Now()), nil, nil)

	// Outside the ±2 s window: 400 with the server's time.
	old := api.NewAccount(newKey(), time.Now().Add(-10*time.Second))
	b := e.expect(400, "POST", "/api/v1/accounts", old, nil, nil)
	var ae api.Error
	json.Unmarshal(b, &ae)
	if ae.Error != "timestamp outside acceptable window" || ae.ServerTime < time.Now().Unix()-5 {
		t.Fatalf("window error = %s", b)
	}
	bad := api.NewAccount(newKey(), time.Now())
	bad.Signature = api.NewAccount(newKey(), time.Now()).Signature
	e.expect(401, "POST", "/api/v1/accounts", bad, nil, nil)
	bad.PublicKey = "not base64!"
	e.expect(400, "POST", "/api/v1/accounts", bad, nil, nil)
	e.expect(400, "POST", "/api/v1/accounts", []byte(`{"timestamp": "x"`), nil, nil)

	var got api.Account
	e.expect(200, "GET", fmt.Sprintf("/api/v1/accounts?twin_id=%d", a.TwinID), nil, nil, &got)
	if got.PublicKey != a.PublicKey {
		t.Fatalf("by twin = %+v", got)
	}
	e.expect(200, "GET", "/v1/accounts?public_key="+strings.ReplaceAll(a.PublicKey, "+", "%2B"), nil, nil, &got)
	if got.TwinID != a.TwinID {
		t.Fatalf("by key = %+v", got)
	}
	e.expect(200, "GET", "/v1/accounts?public_key="+a.PublicKey, nil, nil, &got) // "+" unescaped
	if got.TwinID != a.TwinID {
		t.Fatalf("by unescaped key = %+v", got)
	}
	e.expect(404, "GET", "/api/v1/accounts?twin_id=99999", nil, nil, nil)
	e.expect(400, "GET", "/api/v1/accounts", nil, nil, nil)
	e.expect(400, "GET", fmt.Sprintf("/api/v1/accounts?twin_id=%d&public_key=x", a.TwinID), nil, nil, nil)
	e.expect(400, "GET", "/api/v1/accounts?twin_id=abc", nil, nil, nil)

	owner := &twin{key: k, id: a.TwinID}
	e.expect(200, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", a.TwinID), api.UpdateAccount{Relays: []string{"a", "b"}, RMBEncKey: "new"}, owner, nil)
	e.expect(200, "GET", fmt.Sprintf("/api/v1/accounts?twin_id=%d", a.TwinID), nil, nil, &got)
	if len(got.Relays) != 2 || got.RMBEncKey != "new" {
		t.Fatalf("after PATCH: %+v", got)
	}
	other := e.account()
	e.expect(403, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", a.TwinID), api.UpdateAccount{}, other, nil)
}

func testAuth(t *testing.T, e *env) {
	tw := e.account()
	body := api.CreateFarm{FarmName: "authfarm", TwinID: tw.id, StellarAddress: stellar}
	try := func(want int, h string, wantMsg string) {
		t.Helper()
		got, b := e.callH("POST", "/api/v1/farms", body, nil, http.Header{"X-Auth": {h}}, nil)
		if got != want || !strings.Contains(string(b), wantMsg) {
			t.Fatalf("X-Auth %q: %d %s, want %d %q", h, got, b, want, wantMsg)
		}
	}
	got, _ := e.call("POST", "/api/v1/farms", body, nil, nil)
	if got != 401 {
		t.Fatalf("no X-Auth: %d, want 401", got)
	}
	try(400, "garbage", "malformed")
	try(400, "Zm9v:YmFy", "malformed")
	try(401, api.AuthHeader(tw.key, tw.id, time.Now().Add(-61*time.Second)), "Expired challenge")
	try(401, api.AuthHeader(tw.key, 99999, time.Now()), "unknown twin")
	try(401, api.AuthHeader(newKey(), tw.id, time.Now()), "signature")
	// Signed by another twin than twin_id: 403.
	other := e.account()
	if got, b := e.call("POST", "/api/v1/farms", body, other, nil); got != 403 {
		t.Fatalf("farm for another twin: %d %s, want 403", got, b)
	}
	try(201, api.AuthHeader(tw.key, tw.id, time.Now()), "farm_id")

	// A header verified once may come again within its window (a node
	// signs once a second); the same challenge with another signature is
	// refused all the same, and so is it signed by another key.
	now := time.Now()
	h := api.AuthHeader(tw.key, tw.id, now)
	body.FarmName = "authfarm2"
	try(201, h, "farm_id")
	body.FarmName = "authfarm3"
	try(201, h, "farm_id")
	c64, s64, _ := strings.Cut(h, ":")
	sig, _ := base64.StdEncoding.DecodeString(s64)
	sig[0] ^= 1
	body.FarmName = "authfarm4"
	try(401, c64+":"+base64.StdEncoding.EncodeToString(sig), "signature")
	try(401, api.AuthHeader(other.key, tw.id, now), "signature")
	// A challenge in another spelling ("0<ts>:<twin>") is verified as sent.
	ch := []byte(fmt.Sprintf("0%d:%d", now.Unix(), tw.id))
	good := base64.StdEncoding.EncodeToString(ch) + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(tw.key, ch))
	badSig := base64.StdEncoding.EncodeToString(ch) + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(other.key, ch))
	try(401, badSig, "signature")
	try(201, good, "farm_id")
	body.FarmName = "authfarm5"
	try(401, badSig, "signature")

	// Uptime: the node's owner and key come in one read; a bad signature
	// claiming the owner is 401, another twin's valid one 403.
	farm := e.farm(tw, "authfarm6")
	node := e.node(tw, farm)
	up := api.Uptime{Uptime: 1, Timestamp: now.Unix()}
	path := fmt.Sprintf("/api/v1/nodes/%d/uptime", node)
	if got, b := e.callH("POST", path, up, nil, http.Header{"X-Auth": {api.AuthHeader(other.key, tw.id, time.Now())}}, nil); got != 401 {
		t.Fatalf("uptime signed by another key for the owner: %d %s, want 401", got, b)
	}
	if got, b := e.call("POST", path, up, other, nil); got != 403 {
		t.Fatalf("uptime by another twin: %d %s, want 403", got, b)
	}
	if got, b := e.call("POST", path, up, tw, nil); got != 201 {
		t.Fatalf("uptime by the owner: %d %s, want 201", got, b)
	}
}

func testFarms(t *testing.T, e *env) {
	tw := e.account()
	id := e.farm(tw, "Farm1")
	e.expect(409, "POST", "/api/v1/farms", api.CreateFarm{FarmName: "Farm1", TwinID: tw.id, StellarAddress: stellar}, tw, nil)
	for _, bad := range []api.CreateFarm{
		{FarmName: "has space", StellarAddress: stellar},
		{FarmName: "", StellarAddress: stellar},
		{FarmName: strings.Repeat("a", 41), StellarAddress: stellar},
		{FarmName: "ok1", StellarAddress: "GABC"},
		{FarmName: "ok2", StellarAddress: "X" + stellar[1:]},
		{FarmName: "ok3", StellarAddress: strings.ToLower(stellar)},
	} {
		bad.TwinID = tw.id
		e.expect(400, "POST", "/api/v1/farms", bad, tw, nil)
	}
	e.farm(tw, strings.Repeat("b", 40))
	var f api.Farm
	e.expect(200, "GET", fmt.Sprintf("/api/v1/farms/%d", id), nil, nil, &f)
	if f.FarmName != "Farm1" || f.TwinID != tw.id || f.StellarAddress != stellar {
		t.Fatalf("farm = %+v", f)
	}
	e.expect(404, "GET", "/api/v1/farms/99999", nil, nil, nil)
	e.expect(400, "GET", "/api/v1/farms/abc", nil, nil, nil)

	var fs []api.Farm
	e.expect(200, "GET", "/api/v1/farms?farm_name=Farm1", nil, nil, &fs)
	if len(fs) != 1 || fs[0].FarmID != id {
		t.Fatalf("by name: %+v", fs)
	}
	e.expect(200, "GET", fmt.Sprintf("/api/v1/farms?twin_id=%d", tw.id), nil, nil, &fs)
	if len(fs) != 2 {
		t.Fatalf("by twin: %d farms, want 2", len(fs))
	}
	e.expect(200, "GET", fmt.Sprintf("/api/v1/farms?twin_id=%d&page=2&size=1", tw.id), nil, nil, &fs)
	if len(fs) != 1 || fs[0].FarmID == id {
		t.Fatalf("page 2 size 1: %+v", fs)
	}
	e.expect(400, "GET", "/api/v1/farms?page=0", nil, nil, nil)
	e.expect(400, "GET", "/api/v1/farms?size=x", nil, nil, nil)

	e.expect(200, "PATCH", fmt.Sprintf("/api/v1/farms/%d", id), api.UpdateFarm{FarmName: "Farm1renamed"}, tw, nil)
	e.expect(200, "GET", fmt.Sprintf("/v1/farms/%d", id), nil, nil, &f)
	if f.FarmName != "Farm1renamed" || f.StellarAddress != stellar {
		t.Fatalf("after PATCH: %+v", f)
	}
	e.expect(400, "PATCH", fmt.Sprintf("/api/v1/farms/%d", id), api.UpdateFarm{FarmName: "bad name"}, tw, nil)
	e.expect(409, "PATCH", fmt.Sprintf("/api/v1/farms/%d", id), api.UpdateFarm{FarmName: strings.Repeat("b", 40)}, tw, nil)
	e.expect(403, "PATCH", fmt.Sprintf("/api/v1/farms/%d", id), api.UpdateFarm{FarmName: "x"}, e.account(), nil)
	e.expect(404, "PATCH", "/api/v1/farms/99999", api.UpdateFarm{FarmName: "x"}, tw, nil)
}

func testNodes(t *testing.T, e *env) {
	farmer := e.account()
	farm := e.farm(farmer, "NodeFarm")
	farm2 := e.farm(farmer, "NodeFarm2")
	tw := e.account()

	b := nodeBody(tw, farm)
	b.Interfaces = nil
	e.expect(400, "POST", "/api/v1/nodes", b, tw, nil)
	b = nodeBody(tw, farm)
	b.SerialNumber = ""
	e.expect(400, "POST", "/api/v1/nodes", b, tw, nil)
	e.expect(404, "POST", "/api/v1/nodes", nodeBody(tw, 99999), tw, nil)
	e.expect(403, "POST", "/api/v1/nodes", nodeBody(tw, farm), farmer, nil)
	id := e.node(tw, farm)
	e.expect(409, "POST", "/api/v1/nodes", nodeBody(tw, farm), tw, nil)

	// Responses use the reference's capitalised "Interfaces".
	raw := e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil, nil)
	if !strings.Contains(string(raw), `"Interfaces":[{"name":"eth0"`) {
		t.Fatalf("node JSON lacks Interfaces: %s", raw)
	}
	var n api.Node
	json.Unmarshal(raw, &n)
	if n.TwinID != tw.id || n.FarmID != farm || n.Approved || n.Online || n.LastSeen != nil || n.Resources.CRU != 4 || n.SerialNumber != "SN-1" || n.Location.City != "Gent" {
		t.Fatalf("new node = %+v", n)
	}
	e.expect(404, "GET", "/api/v1/nodes/99999", nil, nil, nil)

	// Approve (extension): the farm's owner only.
	e.expect(403, "POST", fmt.Sprintf("/api/v1/nodes/%d/approve", id), nil, tw, nil)
	e.expect(200, "POST", fmt.Sprintf("/api/v1/nodes/%d/approve", id), nil, farmer, nil)
	e.expect(404, "POST", "/api/v1/nodes/99999/approve", nil, farmer, nil)
	e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil, &n)
	if !n.Approved {
		t.Fatal("approve did not approve")
	}

	// PATCH: owner only; same farm keeps approved, a new farm resets it.
	upd := api.UpdateNode{FarmID: farm, Resources: api.Resources{CRU: 8}, Location: n.Location, Interfaces: n.Interfaces, SerialNumber: "SN-1"}
	e.expect(403, "PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), upd, farmer, nil)
	e.expect(200, "PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), upd, tw, nil)
	e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil, &n)
	if !n.Approved || n.Resources.CRU != 8 {
		t.Fatalf("after PATCH on the same farm: %+v", n)
	}
	upd.FarmID = farm2
	e.expect(200, "PATCH", fmt.Sprintf("/v1/nodes/%d", id), upd, tw, nil)
	e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil, &n)
	if n.Approved || n.FarmID != farm2 {
		t.Fatalf("after PATCH to another farm: %+v", n)
	}
	upd.Interfaces = nil
	e.expect(400, "PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), upd, tw, nil)

	// Uptime: owner only, timestamp within ±60 s, sets last_seen → online.
	e.expect(400, "POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", id), api.Uptime{Uptime: 5, Timestamp: time.Now().Unix() - 120}, tw, nil)
	e.expect(403, "POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", id), api.Uptime{Uptime: 5, Timestamp: time.Now().Unix()}, farmer, nil)
	e.expect(404, "POST", "/api/v1/nodes/99999/uptime", api.Uptime{Uptime: 5, Timestamp: time.Now().Unix()}, tw, nil)
	e.expect(201, "POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", id), api.Uptime{Uptime: 5, Timestamp: time.Now().Unix()}, tw, nil)
	e.expect(200, "GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil, &n)
	if !n.Online || n.LastSeen == nil || time.Since(*n.LastSeen) > time.Minute {
		t.Fatalf("after uptime: online %v last_seen %v", n.Online, n.LastSeen)
	}

	// A second node that never reports; list filters.
	tw2 := e.account()
	id2 := e.node(tw2, farm)
	var ns []api.Node
	list := func(q string) []uint64 {
		t.Helper()
		e.expect(200, "GET", "/api/v1/nodes?"+q, nil, nil, &ns)
		var ids []uint64
		for _, n := range ns {
			ids = append(ids, n.NodeID)
		}
		return ids
	}
	check := func(q string, want ...uint64) {
		t.Helper()
		if got := list(q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("GET /nodes?%s = %v, want %v", q, got, want)
		}
	}
	check(fmt.Sprintf("twin_id=%d", tw.id), id)
	check(fmt.Sprintf("node_id=%d", id2), id2)
	check(fmt.Sprintf("farm_id=%d", farm), id2)
	check(fmt.Sprintf("farm_id=%d&online=true", farm2), id)
	check(fmt.Sprintf("farm_id=%d&online=false", farm), id2)
	check(fmt.Sprintf("farm_id=%d&online=true", farm))
	check(fmt.Sprintf("twin_id=%d&online=false", tw2.id), id2)
	check(fmt.Sprintf("twin_id=%d&last_seen=5", tw.id), id)
	check(fmt.Sprintf("twin_id=%d&last_seen=5", tw2.id))
	check("twin_id=99999")
	e.expect(400, "GET", "/api/v1/nodes?online=maybe", nil, nil, nil)
	e.expect(400, "GET", "/api/v1/nodes?last_seen=-1", nil, nil, nil)
	all := list("size=1000")
	if len(all) < 2 {
		t.Fatalf("all nodes: %v", all)
	}
	p1, p2 := list("size=1&page=1"), list("size=1&page=2")
	if len(p1) != 1 || len(p2) != 1 || p1[0] != all[0] || p2[0] != all[1] {
		t.Fatalf("pages %v %v of %v", p1, p2, all)
	}
}

func testVersion(t *testing.T, st store.Store) {
	admin := newEnv(t, st, Config{}).account()
	e := newEnv(t, st, Config{AdminTwin: admin.id})
	var s string
	e.expect(200, "GET", "/api/v1/zos/version", nil, nil, &s)
	raw, err := base64.StdEncoding.DecodeString(s)
	var v api.ZOSVersion
	if err != nil || json.Unmarshal(raw, &v) != nil {
		t.Fatalf("GET /zos/version = %q: not base64 of JSON", s)
	}
	nv := base64.StdEncoding.EncodeToString([]byte(`{"version":"v1.2.3","safe_to_upgrade":true}`))
	e.expect(403, "PUT", "/api/v1/zos/version", api.SetZOSVersion{Version: nv}, e.account(), nil)
	e.expect(401, "PUT", "/api/v1/zos/version", api.SetZOSVersion{Version: nv}, nil, nil)
	e.expect(400, "PUT", "/api/v1/zos/version", api.SetZOSVersion{Version: "!!"}, admin, nil)
	e.expect(200, "PUT", "/api/v1/zos/version", api.SetZOSVersion{Version: nv}, admin, nil)
	e.expect(200, "GET", "/v1/zos/version", nil, nil, &s)
	raw, _ = base64.StdEncoding.DecodeString(s)
	json.Unmarshal(raw, &v)
	if v.Version != "v1.2.3" || !v.SafeToUpgrade {
		t.Fatalf("version after PUT = %+v", v)
	}
}

func testRobustness(t *testing.T, e *env) {
	tw := e.account()
	got, b := e.call("POST", "/api/v1/farms", []byte(`{"farm_name":"`+strings.Repeat("a", 2000)+`"}`), tw, nil)
	if got != 413 {
		t.Fatalf("oversized body: %d %s, want 413", got, b)
	}
	e.expect(400, "POST", "/api/v1/farms", []byte(`{not json`), tw, nil)
	e.expect(400, "POST", "/api/v1/nodes", []byte(`[1,2,3]`), tw, nil)
	b = e.expect(404, "GET", "/api/v1/nowhere", nil, nil, nil)
	if !strings.Contains(string(b), `"error"`) {
		t.Fatalf("unknown route body %s is not a JSON error", b)
	}
	e.expect(404, "DELETE", "/api/v1/farms/1", nil, nil, nil)
}
