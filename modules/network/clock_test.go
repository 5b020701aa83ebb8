package network

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
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

// httpsRegistrar serves any path over TLS with cert, stamping answers with
// date (the registrar's claimed time).
func httpsRegistrar(t *testing.T, cert tls.Certificate, date time.Time) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", date.UTC().Format(http.TimeFormat))
		http.NotFound(w, r)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// A node whose clock is in 2001 takes the time from an HTTPS registrar
// whose certificate verifies at the time the registrar claims; a
// registrar it cannot verify, one that claims a time before the image was
// built (an expired certificate's key would let an attacker claim its
// validity) or decades after, and a certificate for another name do not
// set the clock.
func TestClockFromHTTPSRegistrar(t *testing.T) {
	ca := testutil.NewCA(t)
	now := time.Now()
	built := now.AddDate(-1, 0, 0)
	oldNow, oldRoots, oldBuilt := localNow, trustedRoots, imageBuilt
	localNow = func() time.Time { return time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC).Add(time.Since(now)) }
	trustedRoots = ca.Pool
	imageBuilt = func() time.Time { return built }
	t.Cleanup(func() { localNow, trustedRoots, imageBuilt = oldNow, oldRoots, oldBuilt })

	valid := ca.Leaf(t, now.Add(-time.Hour), now.AddDate(0, 3, 0), "127.0.0.1")
	for _, c := range []struct {
		name  string
		cert  tls.Certificate
		date  time.Time
		roots func() *x509.CertPool
		err   string
	}{
		{name: "valid", cert: valid, date: now},
		{name: "unknown CA", cert: testutil.NewCA(t).Leaf(t, now.Add(-time.Hour), now.AddDate(0, 3, 0), "127.0.0.1"), date: now, err: "certificate signed by unknown authority"},
		{name: "other name", cert: ca.Leaf(t, now.Add(-time.Hour), now.AddDate(0, 3, 0), "registrar.example"), date: now, err: "doesn't contain any IP SANs"},
		{name: "expired key, old time", cert: ca.Leaf(t, built.AddDate(-2, 0, 0), built.AddDate(-1, 0, 0), "127.0.0.1"), date: built.AddDate(-1, -6, 0), err: "before this image was built"},
		{name: "far future", cert: ca.Leaf(t, built.AddDate(40, 0, 0), built.AddDate(41, 0, 0), "127.0.0.1"), date: built.AddDate(40, 6, 0), err: "more than 30 years after"},
		{name: "claims a time its certificate is not valid at", cert: ca.Leaf(t, now.Add(-time.Hour), now.AddDate(0, 3, 0), "127.0.0.1"), date: now.AddDate(1, 0, 0), err: "nor at the time it claims"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := httpsRegistrar(t, c.cert, c.date)
			var set []time.Time
			got := syncClock(context.Background(), []string{"127.0.0.1"}, s.URL, func(t time.Time) error { set = append(set, t); return nil })
			if c.err == "" {
				if got.Source != "registrar" || got.Error != "" || len(set) != 1 || time.Until(set[0]).Abs() > 3*time.Second {
					t.Fatalf("clock %+v, set to %v; want the registrar's time, about now", got, set)
				}
				return
			}
			if got.Source != "none" || !strings.Contains(got.Error, c.err) || len(set) != 0 {
				t.Fatalf("clock %+v, set to %v; want no time taken, with %q", got, set, c.err)
			}
		})
	}
}
