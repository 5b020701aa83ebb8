package registrar

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// TestNodeExtensions: a node record's gpus and the OS state of uptime
// reports (grid/api report.go) are checked, stored and answered, over
// each store; a reference-shaped node is answered as before.
func TestNodeExtensions(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			e := newEnv(t, o.Open(t), Config{})
			farmer := e.account()
			farm := e.farm(farmer, "gpufarm")
			tw := e.account()
			body := nodeBody(tw, farm)
			gpu := api.GPU{Address: "0000:01:00.0", Vendor: "NVIDIA Corporation", Model: "TU104GL [Tesla T4]", VendorID: "10de", DeviceID: "1eb8", Class: "030200", IOMMUGroup: "14"}
			body.GPUs = []api.GPU{gpu, {Address: "0000:02:00.0"}}
			b := e.expect(400, "POST", "/api/v1/nodes", body, tw, nil)
			if !strings.Contains(string(b), "gpus[1].vendor_id") {
				t.Fatalf("a bad GPU: %s, want the entry and field named", b)
			}
			body.GPUs = []api.GPU{gpu}
			var id api.NodeID
			e.expect(201, "POST", "/api/v1/nodes", body, tw, &id)
			path := "/api/v1/nodes/" + strconv.FormatUint(id.NodeID, 10)
			var n api.Node
			e.expect(200, "GET", path, nil, nil, &n)
			if len(n.GPUs) != 1 || n.GPUs[0] != gpu || n.OSVersion != "" {
				t.Fatalf("GET %s = %+v", path, n)
			}
			up := api.UpdateNode{FarmID: farm, Resources: body.Resources, Location: body.Location, Interfaces: body.Interfaces, SerialNumber: "SN-1", GPUs: []api.GPU{gpu, gpu}}
			e.expect(200, "PATCH", path, up, tw, nil)
			var ns []api.Node
			e.expect(200, "GET", "/api/v1/nodes?farm_id="+strconv.FormatUint(farm, 10), nil, nil, &ns)
			if len(ns) != 1 || len(ns[0].GPUs) != 2 {
				t.Fatalf("GET /nodes after a PATCH with two GPUs = %+v", ns)
			}
			up.GPUs[1].Class = "03"
			e.expect(400, "PATCH", path, up, tw, nil)

			report := func(want int, o api.OSState) []byte {
				t.Helper()
				return e.expect(want, "POST", path+"/uptime", api.Uptime{Uptime: 60, Timestamp: time.Now().Unix(), OSState: o}, tw, nil)
			}
			report(201, api.OSState{}) // the reference shape
			report(201, api.OSState{OSVersion: "1.2.0", Channel: "stable"})
			e.expect(200, "GET", path, nil, nil, &n)
			if n.OSVersion != "1.2.0" || n.Channel != "stable" || n.RolledBack || n.OSVersionSince == nil {
				t.Fatalf("after reporting 1.2.0: %+v since %v", n.OSState, n.OSVersionSince)
			}
			report(201, api.OSState{OSVersion: "1.1.0", Channel: "stable", RolledBack: true, RolledBackFrom: "1.2.0"})
			e.expect(200, "GET", path, nil, nil, &n)
			if n.OSVersion != "1.1.0" || !n.RolledBack || n.RolledBackFrom != "1.2.0" {
				t.Fatalf("after a rollback: %+v", n.OSState)
			}
			for msg, o := range map[string]api.OSState{
				"os_version":       {OSVersion: "1.2.0;drop"},
				"go together":      {OSVersion: "1.1.0", RolledBack: true},
				"channel":          {OSVersion: "1.1.0", Channel: "Stable!"},
				"rolled_back_from": {OSVersion: "1.1.0", RolledBack: true, RolledBackFrom: strings.Repeat("9", 65)},
			} {
				if b := report(400, o); !strings.Contains(string(b), msg) {
					t.Errorf("report %+v: %s, want it to name %s", o, b, msg)
				}
			}
			e.expect(200, "GET", path, nil, nil, &n)
			if n.OSVersion != "1.1.0" || n.RolledBackFrom != "1.2.0" {
				t.Fatalf("refused reports changed the node: %+v", n.OSState)
			}
		})
	}
}
