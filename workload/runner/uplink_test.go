package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// The workload network learns the management network when its fact
// appears after the runtime started (an offline boot), and again when a new
// lease changes it; a lost lease keeps the last LAN blocked.
func TestFollowUplink(t *testing.T) {
	facts := fact.Folder(t.TempDir())
	type uplinkSet struct {
		lan []netip.Prefix
		dns []netip.Addr
	}
	got := make(chan uplinkSet, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		followUplink(ctx, facts, func(lan []netip.Prefix, dns []netip.Addr) error {
			got <- uplinkSet{lan, dns}
			return nil
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	next := func(what string) uplinkSet {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the workload network was not told", what)
			return uplinkSet{}
		}
	}
	write := func(n fact.Network) {
		t.Helper()
		if err := facts.Write(fact.NameNetwork, n); err != nil {
			t.Fatal(err)
		}
	}

	write(fact.Network{Addresses: []string{"192.168.7.20/24"}, DNS: []string{"192.168.7.1"}})
	if s := next("first lease"); fmt.Sprint(s.lan, s.dns) != "[192.168.7.0/24] [192.168.7.1]" {
		t.Errorf("first lease: set %v %v", s.lan, s.dns)
	}
	// A lost lease, then a new one on another network: only the new one
	// is set (the lost lease would have unblocked the LAN).
	write(fact.Network{Error: "lease lost"})
	write(fact.Network{Addresses: []string{"10.1.2.3/16"}, DNS: []string{"10.1.0.1", "9.9.9.9"}})
	if s := next("new lease"); fmt.Sprint(s.lan, s.dns) != "[10.1.0.0/16] [10.1.0.1 9.9.9.9]" {
		t.Errorf("new lease: set %v %v", s.lan, s.dns)
	}
	// The same again (a renewal) sets nothing.
	write(fact.Network{Addresses: []string{"10.1.2.3/16"}, DNS: []string{"10.1.0.1", "9.9.9.9"}, Lease: &fact.Lease{Renewals: 1}})
	cancel()
	<-done
	select {
	case s := <-got:
		t.Errorf("a renewal with the same addresses set %v %v again", s.lan, s.dns)
	default:
	}
}
