package network

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// registrar serves any path with the given Date header, like a registrar
// whose clock is right while ours is off.
func registrar(t *testing.T, date time.Time) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", date.UTC().Format(http.TimeFormat))
		http.NotFound(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestClockFallsBackToRegistrarDate(t *testing.T) {
	ahead := time.Now().Add(time.Hour)
	s := registrar(t, ahead)
	var set []time.Time
	// Nothing listens on 127.0.0.1:123: NTP fails fast, the registrar answers.
	c := syncClock(context.Background(), []string{"127.0.0.1"}, s.URL, func(t time.Time) error {
		set = append(set, t)
		return nil
	})
	if c.Source != "registrar" || c.Server != strings.TrimPrefix(s.URL, "http://") || c.Error != "" {
		t.Fatalf("clock = %+v, want source registrar from %s", c, s.URL)
	}
	if len(set) != 1 || set[0].Sub(ahead).Abs() > 3*time.Second {
		t.Fatalf("clock set to %v, want about %v", set, ahead)
	}
	if d := time.Duration(c.OffsetMS) * time.Millisecond; (d - time.Hour).Abs() > 3*time.Second {
		t.Errorf("offset %s, want about 1h", d)
	}
	if c.SyncedAt.IsZero() {
		t.Error("synced_at not recorded")
	}
}

func TestClockLeftAloneWhenClose(t *testing.T) {
	s := registrar(t, time.Now())
	called := false
	c := syncClock(context.Background(), []string{"127.0.0.1"}, s.URL, func(time.Time) error { called = true; return nil })
	if c.Source != "registrar" || called {
		t.Errorf("clock = %+v, setter called = %v; want registrar and the clock left alone", c, called)
	}
}

func TestClockNoSource(t *testing.T) {
	c := syncClock(context.Background(), []string{"127.0.0.1"}, "", func(time.Time) error {
		t.Error("clock set without a source")
		return nil
	})
	if c.Source != "none" || !strings.Contains(c.Error, "NTP 127.0.0.1") {
		t.Errorf("clock = %+v, want source none naming the NTP failure", c)
	}
}

func TestPhysicalNICs(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"lo", "veth0", "br0", "eth1/device", "eth0/device", "enp3s0/device"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := sysClassNet
	sysClassNet = dir
	defer func() { sysClassNet = old }()
	got, err := physicalNICs()
	if want := []string{"enp3s0", "eth0", "eth1"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("physicalNICs() = %v, %v; want %v", got, err, want)
	}
}

func TestLeaseTimesDefaults(t *testing.T) {
	ack, err := dhcpv4.New(dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2, exp, ok := leaseTimes(&nclient4.Lease{ACK: ack, CreationTime: at})
	if !ok || t1 != at.Add(30*time.Minute) || t2 != at.Add(52*time.Minute+30*time.Second) || exp != at.Add(time.Hour) {
		t.Errorf("leaseTimes = %v %v %v %v; want T1 50%%, T2 87.5%%, expiry at 1h", t1, t2, exp, ok)
	}
	inf, _ := dhcpv4.New(dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(0xffffffff * time.Second)))
	if _, _, _, ok := leaseTimes(&nclient4.Lease{ACK: inf, CreationTime: at}); ok {
		t.Error("an infinite lease got an expiry")
	}
}

func TestParseStatic(t *testing.T) {
	iface, c, err := parseStatic("static:eth0,192.168.1.10/24,192.168.1.1,1.1.1.1,9.9.9.9")
	if err != nil || iface != "eth0" || c.addr.String() != "192.168.1.10/24" || c.gateway.String() != "192.168.1.1" || len(c.dns) != 2 {
		t.Errorf("parseStatic = %q %+v %v", iface, c, err)
	}
	for _, bad := range []string{"static:eth0,192.168.1.10,192.168.1.1", "static:eth0,300.1.1.1/24,1.1.1.1", "static:eth0,10.0.0.2/24,gw", "static:eth0,10.0.0.2/24,10.0.0.1,dns"} {
		if _, _, err := parseStatic(bad); err == nil {
			t.Errorf("parseStatic(%q) accepted", bad)
		}
	}
}
