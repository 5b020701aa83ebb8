package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// The extension fields travel flat beside the reference fields, and are
// left out when empty, so a reference node's report is unchanged.
func TestUptimeExtensionWire(t *testing.T) {
	b, _ := json.Marshal(Uptime{Uptime: 5, Timestamp: 7})
	if string(b) != `{"uptime":5,"timestamp":7}` {
		t.Fatalf("a report without the extension: %s", b)
	}
	b, _ = json.Marshal(Uptime{Uptime: 5, Timestamp: 7, OSState: OSState{OSVersion: "1.2.0", Channel: "stable", RolledBack: true, RolledBackFrom: "1.3.0"}})
	want := `{"uptime":5,"timestamp":7,"os_version":"1.2.0","channel":"stable","rolled_back":true,"rolled_back_from":"1.3.0"}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	var n Node
	if err := json.Unmarshal([]byte(`{"node_id":1,"gpus":[{"address":"0000:01:00.0","vendor_id":"10de"}],"os_version":"1.2.0","rolled_back":true,"rolled_back_from":"1.3.0"}`), &n); err != nil {
		t.Fatal(err)
	}
	if n.OSVersion != "1.2.0" || !n.RolledBack || n.RolledBackFrom != "1.3.0" || len(n.GPUs) != 1 || n.GPUs[0].VendorID != "10de" {
		t.Fatalf("decoded %+v", n)
	}
}

func TestOSStateCheck(t *testing.T) {
	good := []OSState{{}, {OSVersion: "1.2.0"}, {OSVersion: "1.2.0", Channel: "stable"}, {OSVersion: "1.2.0", RolledBack: true, RolledBackFrom: "1.3.0"}}
	for _, o := range good {
		if err := o.Check(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]OSState{
		"os_version":       {OSVersion: "1.2 beta"},
		"channel":          {OSVersion: "1", Channel: "Stable"},
		"channel without":  {Channel: "stable"},
		"go together":      {OSVersion: "1", RolledBack: true},
		"go together ":     {OSVersion: "1", RolledBackFrom: "2"},
		"without os_versi": {RolledBack: true, RolledBackFrom: "2"},
		"rolled_back_from": {OSVersion: "1", RolledBack: true, RolledBackFrom: "../2"},
		"rolls back to":    {OSVersion: "1", RolledBack: true, RolledBackFrom: "1"},
	}
	for want, o := range bad {
		err := o.Check()
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%+v: %v, want an error saying %q", o, err, want)
		}
	}
}

func TestCheckGPUs(t *testing.T) {
	g := GPU{Address: "0000:01:00.0", Vendor: "NVIDIA Corporation", Model: "TU104GL [Tesla T4]", VendorID: "10de", DeviceID: "1eb8", Class: "030200", IOMMUGroup: "14"}
	if err := CheckGPUs([]GPU{g, {Address: "10000:e1:00.1", VendorID: "1002", DeviceID: "0001", Class: "030000", Driver: "amdgpu"}}); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(*GPU){
		"gpus[0].address":     func(g *GPU) { g.Address = "01:00.0" },
		"gpus[0].vendor_id":   func(g *GPU) { g.VendorID = "10DE" },
		"gpus[0].device_id":   func(g *GPU) { g.DeviceID = "" },
		"gpus[0].class":       func(g *GPU) { g.Class = "0302" },
		"gpus[0].iommu_group": func(g *GPU) { g.IOMMUGroup = "x" },
		"gpus[0].driver":      func(g *GPU) { g.Driver = "../nvidia" },
		"gpus[0].vendor":      func(g *GPU) { g.Vendor = "a\x00b" },
		"gpus[0].model":       func(g *GPU) { g.Model = strings.Repeat("m", 257) },
	} {
		b := g
		mut(&b)
		if err := CheckGPUs([]GPU{b}); err == nil || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := CheckGPUs(make([]GPU, MaxGPUs+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("too many: %v", err)
	}
}
